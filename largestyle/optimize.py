"""L-BFGS over an image with a fixed budget of loss evaluations."""

from __future__ import annotations

import math
from typing import Callable

import torch

from .objective import LossTerms

ValueAndGrad = Callable[[torch.Tensor], tuple[LossTerms, torch.Tensor]]
OnEvaluation = Callable[[int, LossTerms], None]


class _BudgetSpent(Exception):
    """Raised inside the closure to stop L-BFGS exactly at the budget."""


def minimize(value_and_grad: ValueAndGrad, start: torch.Tensor, evaluations: int,
             history_size: int = 16, on_evaluation: OnEvaluation | None = None
             ) -> tuple[torch.Tensor, LossTerms, int]:
    """Minimise from ``start`` with at most ``evaluations`` loss evaluations.

    Returns (best image, its loss terms, evaluations used). The best evaluated
    point is returned, never a rejected line-search trial. The image is not
    clamped here: clamping inside the closure would corrupt L-BFGS's curvature
    history, so callers clamp the result.
    """
    x = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=evaluations, max_eval=evaluations + 25, history_size=history_size,
        tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    best = {"x": None, "terms": None}
    used = 0

    def closure():
        nonlocal used
        if used >= evaluations:
            raise _BudgetSpent
        terms, grad = value_and_grad(x.detach())
        used += 1
        if not math.isfinite(terms.total):
            raise FloatingPointError(f"loss became {terms.total} after {used} evaluations")
        if best["terms"] is None or terms.total < best["terms"].total:
            best["x"], best["terms"] = x.detach().clone(), terms
        if on_evaluation is not None:
            on_evaluation(used, terms)
        x.grad = grad
        return terms.total

    try:
        # One long step keeps the curvature history; it returns early only on convergence.
        optimizer.step(closure)
    except _BudgetSpent:
        pass
    return best["x"], best["terms"], used
