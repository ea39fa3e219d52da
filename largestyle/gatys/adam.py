"""Adam over an image with a fixed budget of loss evaluations, resumable between steps.

One evaluation per step. The update is PyTorch's ``torch.optim.Adam`` with its default
betas and epsilon and no weight decay, written out so that its whole state (the point,
both moment estimates, the step count) is an explicit ``AdamState`` that a checkpoint
holds: a resumed run continues bit for bit. As with L-BFGS the best evaluated point is
returned and the image is not clamped here (callers clamp the result).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from .evaluator import Allocate, Evaluator, Finished, PlainState, OnEvaluation, ValueAndGrad
from .objective import LossTerms

BETAS = (0.9, 0.999)
EPSILON = 1e-8


@dataclass
class AdamState(PlainState):
    """The point, its moment estimates and the step count, plus the evaluation count and best point."""

    x: torch.Tensor
    m: torch.Tensor  # first moment (mean of gradients)
    v: torch.Tensor  # second moment (mean of squared gradients)
    step: int
    used: int
    best_x: torch.Tensor
    best_terms: LossTerms
    recent: list[float] = field(default_factory=list)


def minimize_adam(value_and_grad: ValueAndGrad, start: torch.Tensor, evaluations: int, learning_rate: float,
                  on_evaluation: OnEvaluation | None = None, state: AdamState | None = None,
                  on_iteration: Callable | None = None, allocate: Allocate | None = None, tolerance: float = 0.0,
                  window: int = 10) -> tuple[torch.Tensor, LossTerms, int]:
    """Minimise from ``start`` (or continue ``state``); returns (best image, its loss terms, evaluations used)."""
    shape, flat = start.shape, start.detach().reshape(-1)
    make = allocate or (lambda like: torch.empty_like(like, memory_format=torch.contiguous_format))

    def take() -> torch.Tensor:
        return make(flat)

    def adopt(vector: torch.Tensor) -> torch.Tensor:
        return take().copy_(vector)

    evaluate = Evaluator(value_and_grad, shape, evaluations, on_evaluation, take, tolerance, window,
                         *((state.used, adopt(state.best_x), state.best_terms, state.recent) if state else ()))
    if state is None:
        s = AdamState(take().copy_(flat), take().zero_(), take().zero_(), 0, 0, None, None)
    else:
        s = replace(state, x=adopt(state.x), m=adopt(state.m), v=adopt(state.v))

    def snapshot() -> AdamState:
        s.used, s.best_x, s.best_terms, s.recent = evaluate.used, evaluate.best_x, evaluate.best_terms, evaluate.recent
        return s

    try:
        with torch.no_grad():
            while evaluate.used < evaluations:
                if on_iteration is not None and evaluate.used:
                    on_iteration(snapshot)
                _, grad = evaluate(s.x)
                _step(s, grad, learning_rate)
    except Finished:
        pass
    return evaluate.best_x.view(shape), evaluate.best_terms, evaluate.used


def _step(s: AdamState, grad: torch.Tensor, learning_rate: float) -> None:
    """One Adam update of ``s`` in place, as torch.optim.Adam computes it."""
    beta1, beta2 = BETAS
    s.step += 1
    s.m.lerp_(grad, 1 - beta1)
    s.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias1, bias2 = 1 - beta1 ** s.step, 1 - beta2 ** s.step
    denominator = (s.v.sqrt() / bias2 ** 0.5).add_(EPSILON)
    s.x.addcdiv_(s.m, denominator, value=-learning_rate / bias1)
