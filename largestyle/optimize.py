"""L-BFGS over an image with a fixed budget of loss evaluations, resumable between iterations.

The iteration is PyTorch's ``torch.optim.LBFGS`` (strong-Wolfe line search, its own
line-search routine) unrolled, so that everything it carries from one iteration to the
next is an explicit ``LbfgsState``: a checkpoint of that state continues bit for bit as
if never interrupted. ``tests/test_optimize.py`` checks the iterates against PyTorch's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch.optim.lbfgs import _strong_wolfe

from .objective import LossTerms

ValueAndGrad = Callable[[torch.Tensor], tuple[LossTerms, torch.Tensor]]
OnEvaluation = Callable[[int, LossTerms], None]
# Called at every iteration boundary with a function returning the live state; it may
# save that state, or raise to stop (the saved state then resumes the run exactly).
OnIteration = Callable[[Callable[[], "LbfgsState"]], None]

# Line-search evaluations allowed beyond the budget; the budget check stops first.
LINE_SEARCH_SLACK = 25


class _BudgetSpent(Exception):
    """Raised inside an evaluation to stop exactly at the budget."""


@dataclass
class LbfgsState:
    """Everything L-BFGS carries between iterations, plus the evaluation count and best point.

    Vectors are flat; ``x`` is the current point, ``grad`` its gradient and ``loss`` its
    value; ``prev_grad``, ``d`` and ``t`` are the previous iteration's gradient, direction
    and step, from which the next curvature pair is formed.
    """

    x: torch.Tensor
    loss: float
    grad: torch.Tensor
    used: int  # loss evaluations so far
    best_x: torch.Tensor
    best_terms: LossTerms
    iteration: int = 0
    d: torch.Tensor | None = None
    t: float | torch.Tensor | None = None
    prev_grad: torch.Tensor | None = None
    old_dirs: list[torch.Tensor] = field(default_factory=list)
    old_stps: list[torch.Tensor] = field(default_factory=list)
    ro: list[torch.Tensor] = field(default_factory=list)
    h_diag: float | torch.Tensor = 1.0

    def _map(self, change) -> LbfgsState:
        """This state with ``change`` applied to every tensor, in lists too."""
        one = lambda value: change(value) if isinstance(value, torch.Tensor) else value  # noqa: E731
        return replace(self, **{name: [one(v) for v in value] if isinstance(value, list) else one(value)
                               for name, value in vars(self).items()})

    def to_plain(self) -> dict:
        """Tensors, numbers and lists only: loads back with ``torch.load(weights_only=True)``."""
        plain = dict(vars(self))
        plain["best_terms"] = dataclasses.astuple(self.best_terms)
        return plain

    @classmethod
    def from_plain(cls, plain: dict) -> LbfgsState:
        return cls(**{**plain, "best_terms": LossTerms(*plain["best_terms"])})

    def to(self, device: torch.device | str) -> LbfgsState:
        return self._map(lambda tensor: tensor.to(device))


def minimize(value_and_grad: ValueAndGrad, start: torch.Tensor, evaluations: int,
             history_size: int = 16, on_evaluation: OnEvaluation | None = None,
             state: LbfgsState | None = None, on_iteration: OnIteration | None = None,
             ) -> tuple[torch.Tensor, LossTerms, int]:
    """Minimise from ``start`` (or continue ``state``) with at most ``evaluations`` evaluations.

    Returns (best image, its loss terms, evaluations used). The best evaluated
    point is returned, never a rejected line-search trial. The image is not
    clamped here: clamping inside the evaluation would corrupt L-BFGS's curvature
    history, so callers clamp the result.
    """
    shape = start.shape
    counter = {"used": state.used if state else 0}
    best: dict = {"x": state.best_x if state else None, "terms": state.best_terms if state else None}

    def evaluate(flat: torch.Tensor) -> tuple[float, torch.Tensor]:
        if counter["used"] >= evaluations:
            raise _BudgetSpent
        with torch.enable_grad():  # the iteration runs without autograd; the loss needs it
            terms, grad = value_and_grad(flat.view(shape))
        counter["used"] += 1
        if not math.isfinite(terms.total):
            raise FloatingPointError(f"loss became {terms.total} after {counter['used']} evaluations")
        if best["terms"] is None or terms.total < best["terms"].total:
            best["x"], best["terms"] = flat.clone(), terms
        if on_evaluation is not None:
            on_evaluation(counter["used"], terms)
        return terms.total, grad.reshape(-1)

    try:
        if state is None:
            x = start.detach().reshape(-1).clone()
            loss, grad = evaluate(x)
            state = LbfgsState(x, loss, grad, counter["used"], best["x"], best["terms"])
        _iterate(state, evaluate, evaluations, history_size, counter, best, on_iteration)
    except _BudgetSpent:
        pass
    return best["x"].view(shape), best["terms"], counter["used"]


@torch.no_grad()
def _iterate(s: LbfgsState, evaluate, evaluations: int, history_size: int, counter: dict, best: dict,
             on_iteration: OnIteration | None) -> None:
    """PyTorch's L-BFGS loop with tolerances of zero, over ``s`` in place."""
    max_eval = evaluations + LINE_SEARCH_SLACK

    def snapshot() -> LbfgsState:
        """The live state, valid until the iteration goes on: save it at once."""
        s.used, s.best_x, s.best_terms = counter["used"], best["x"], best["terms"]
        return s

    while s.iteration < evaluations:
        if s.grad.abs().max() <= 0:  # a stationary point: PyTorch's optimality test at tolerance 0
            return
        if on_iteration is not None:
            on_iteration(snapshot)
        s.iteration += 1
        if s.iteration == 1:
            d = s.grad.neg()
            s.old_dirs, s.old_stps, s.ro, s.h_diag = [], [], [], 1
        else:
            y = s.grad.sub(s.prev_grad)
            step = s.d.mul(s.t)
            ys = y.dot(step)
            if ys > 1e-10:
                if len(s.old_dirs) == history_size:
                    s.old_dirs.pop(0), s.old_stps.pop(0), s.ro.pop(0)
                s.old_dirs.append(y)
                s.old_stps.append(step)
                s.ro.append(1.0 / ys)
                s.h_diag = ys / y.dot(y)
            # Two-loop recursion: d = -H grad.
            alphas = [None] * len(s.old_dirs)
            q = s.grad.neg()
            for i in range(len(s.old_dirs) - 1, -1, -1):
                alphas[i] = s.old_stps[i].dot(q) * s.ro[i]
                q.add_(s.old_dirs[i], alpha=-alphas[i])
            d = r = torch.mul(q, s.h_diag)
            for i in range(len(s.old_dirs)):
                beta = s.old_dirs[i].dot(r) * s.ro[i]
                r.add_(s.old_stps[i], alpha=alphas[i] - beta)
        s.prev_grad = s.grad.clone(memory_format=torch.contiguous_format)
        s.d = d
        t = min(1.0, 1.0 / s.grad.abs().sum()) if s.iteration == 1 else 1.0
        slope = s.grad.dot(d)
        if slope > 0:  # not a descent direction: nothing more to gain
            return
        used_before = counter["used"]

        def along(x, step, direction):
            return evaluate(torch.add(x, direction, alpha=step))

        s.loss, s.grad, s.t, _ = _strong_wolfe(along, s.x, t, d, s.loss, s.grad, slope,
                                               max_ls=max_eval - used_before)
        s.x = s.x.add(d, alpha=s.t)
        if counter["used"] >= max_eval or d.mul(s.t).abs().max() <= 0:
            return
