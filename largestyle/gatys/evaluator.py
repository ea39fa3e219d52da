"""The bookkeeping of an optimiser's loss evaluations: budget, best point, checks and convergence.

Shared by L-BFGS and Adam, so both stop at the same budget, refuse a non-finite loss the
same way, return the best point they evaluated, and end a level the same way once it has
converged. Everything here that must survive a stop is in ``recent``, ``used`` and the best
point, which the optimisers' states carry.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from .objective import LossTerms

ValueAndGrad = Callable[[torch.Tensor], tuple[LossTerms, torch.Tensor]]
OnEvaluation = Callable[[int, LossTerms], None]
# Makes an empty vector like the given one; the engine passes file-backed ones for levels larger than RAM.
Allocate = Callable[[torch.Tensor], torch.Tensor]


class PlainState:
    """What the optimisers' states share: conversion to plain data (tensors, numbers, lists) and back.

    A subclass is a dataclass with a ``best_terms`` field; its plain form loads back with
    ``torch.load(weights_only=True)``.
    """

    def to_plain(self) -> dict:
        plain = dict(vars(self))
        plain["best_terms"] = dataclasses.astuple(self.best_terms)
        return plain

    @classmethod
    def from_plain(cls, plain: dict):
        return cls(**{**plain, "best_terms": LossTerms(*plain["best_terms"])})


class NonFiniteLoss(FloatingPointError):
    """The loss or its gradient became NaN or infinite; ``terms`` says which term, ``used`` when."""

    def __init__(self, terms: LossTerms, used: int, gradient: bool = False):
        what = "gradient" if gradient else "loss"
        super().__init__(f"{what} became non-finite after {used} evaluations ({terms})")
        self.terms, self.used, self.gradient = terms, used, gradient


class Finished(Exception):
    """Raised inside an evaluation to stop exactly at the budget, or once converged."""


class Evaluator:
    """Evaluates the loss at flat points, counting against ``evaluations`` and keeping the best point.

    With ``tolerance`` > 0 it raises ``Finished`` once the best loss has improved by less
    than that fraction over the last ``window`` evaluations.
    """

    def __init__(self, value_and_grad: ValueAndGrad, shape, evaluations: int, on_evaluation: OnEvaluation | None,
                 take: Callable[[], torch.Tensor], tolerance: float = 0.0, window: int = 10,
                 used: int = 0, best_x: torch.Tensor | None = None, best_terms: LossTerms | None = None,
                 recent: list[float] | None = None):
        self.value_and_grad, self.shape, self.evaluations = value_and_grad, shape, evaluations
        self.on_evaluation, self.take = on_evaluation, take
        self.tolerance, self.window = tolerance, window
        self.used, self.best_x, self.best_terms = used, best_x, best_terms
        self.recent = list(recent or [])  # the best loss after each of the last window + 1 evaluations
        self.converged = False

    def __call__(self, flat: torch.Tensor) -> tuple[float, torch.Tensor]:
        if self.used >= self.evaluations or self.converged:
            raise Finished
        with torch.enable_grad():  # optimisers iterate without autograd; the loss needs it
            terms, grad = self.value_and_grad(flat.view(self.shape))
        self.used += 1
        if not math.isfinite(terms.total):
            raise NonFiniteLoss(terms, self.used)
        if not torch.isfinite(grad).all():
            raise NonFiniteLoss(terms, self.used, gradient=True)
        if self.best_terms is None or terms.total < self.best_terms.total:
            self.best_x = (self.best_x if self.best_x is not None else self.take()).copy_(flat)
            self.best_terms = terms
        if self.on_evaluation is not None:
            self.on_evaluation(self.used, terms)
        self._note(self.best_terms.total)
        return terms.total, grad.reshape(-1)

    def _note(self, best: float) -> None:
        """Convergence: the best loss improved by less than ``tolerance`` (relative) over the window."""
        if self.tolerance <= 0:
            return
        self.recent = (self.recent + [best])[-(self.window + 1):]
        if len(self.recent) > self.window and self.recent[0] - best <= self.tolerance * abs(self.recent[0]):
            self.converged = True
