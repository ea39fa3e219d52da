"""L-BFGS over an image with a fixed budget of loss evaluations, resumable between iterations.

The iteration is PyTorch's ``torch.optim.LBFGS`` (strong-Wolfe line search, its own
line-search routine) unrolled, so that everything it carries from one iteration to the
next is an explicit ``LbfgsState``: a checkpoint of that state continues bit for bit as
if never interrupted. ``tests/gatys/test_lbfgs.py`` checks the iterates against PyTorch's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch.optim.lbfgs import _strong_wolfe

from .evaluator import Allocate, Evaluator, Finished, PlainState, OnEvaluation, ValueAndGrad
from .objective import LossTerms
# Called at every iteration boundary with a function returning the live state; it may
# save that state, or raise to stop (the saved state then resumes the run exactly).
OnIteration = Callable[[Callable[[], "LbfgsState"]], None]

# Line-search evaluations allowed beyond the budget; the budget check stops first.
LINE_SEARCH_SLACK = 25


class _Vectors:
    """The point, direction, history and scratch vectors, reused instead of reallocated.

    With a file-backed ``allocate`` these are what would not fit in RAM; in RAM,
    reuse saves the allocator's churn. The gradient and the line search's copies
    of it are made by the objective and by PyTorch, so they stay in RAM.
    """

    def __init__(self, allocate: Allocate, like: torch.Tensor):
        self._allocate, self._like, self._free = allocate, like, []

    def take(self) -> torch.Tensor:
        return self._free.pop() if self._free else self._allocate(self._like)

    def give(self, *vectors: torch.Tensor | None) -> None:
        self._free.extend(v for v in vectors if v is not None)

    def adopt(self, vector: torch.Tensor | None) -> torch.Tensor | None:
        """A vector restored from a checkpoint, copied into one of ours."""
        return None if vector is None else self.take().copy_(vector)


@dataclass
class LbfgsState(PlainState):
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
    recent: list[float] = field(default_factory=list)  # the best loss of the last evaluations, for --tolerance


def minimize(value_and_grad: ValueAndGrad, start: torch.Tensor, evaluations: int,
             history_size: int = 16, on_evaluation: OnEvaluation | None = None,
             state: LbfgsState | None = None, on_iteration: OnIteration | None = None,
             allocate: Allocate | None = None, tolerance: float = 0.0,
             window: int = 10) -> tuple[torch.Tensor, LossTerms, int]:
    """Minimise from ``start`` (or continue ``state``) with at most ``evaluations`` evaluations.

    Returns (best image, its loss terms, evaluations used). The best evaluated
    point is returned, never a rejected line-search trial. The image is not
    clamped here: clamping inside the evaluation would corrupt L-BFGS's curvature
    history, so callers clamp the result. ``allocate`` makes the image-sized vectors
    kept between evaluations (default: in RAM beside ``start``).
    """
    shape = start.shape
    vectors = _Vectors(allocate or (lambda like: torch.empty_like(like, memory_format=torch.contiguous_format)),
                       start.detach().reshape(-1))
    evaluate = Evaluator(value_and_grad, shape, evaluations, on_evaluation, vectors.take, tolerance, window,
                         *((state.used, vectors.adopt(state.best_x), state.best_terms, state.recent) if state else ()))
    try:
        if state is None:
            x = vectors.take().copy_(start.detach().reshape(-1))
            loss, grad = evaluate(x)
            state = LbfgsState(x, loss, grad, evaluate.used, evaluate.best_x, evaluate.best_terms)
        else:
            state = replace(state, **{name: vectors.adopt(getattr(state, name)) for name in ("x", "d", "prev_grad")},
                            old_dirs=[vectors.adopt(v) for v in state.old_dirs],
                            old_stps=[vectors.adopt(v) for v in state.old_stps])
        _iterate(state, evaluate, evaluations, history_size, on_iteration, vectors)
    except Finished:
        pass
    return evaluate.best_x.view(shape), evaluate.best_terms, evaluate.used


@torch.no_grad()
def _iterate(s: LbfgsState, evaluate: Evaluator, evaluations: int, history_size: int,
             on_iteration: OnIteration | None, vectors: _Vectors) -> None:
    """PyTorch's L-BFGS loop with tolerances of zero, over ``s`` in place.

    Every image-sized result is written into one of ``vectors`` (``out=``), which
    computes the same values as PyTorch's freshly allocated ones.
    """
    scratch = vectors.take()
    max_eval = evaluations + LINE_SEARCH_SLACK

    def snapshot() -> LbfgsState:
        """The live state, valid until the iteration goes on: save it at once."""
        s.used, s.best_x, s.best_terms, s.recent = evaluate.used, evaluate.best_x, evaluate.best_terms, evaluate.recent
        return s

    while s.iteration < evaluations:
        if torch.abs(s.grad, out=scratch).max() <= 0:  # a stationary point: PyTorch's test at tolerance 0
            return
        if on_iteration is not None:
            on_iteration(snapshot)
        s.iteration += 1
        if s.iteration == 1:
            d = torch.neg(s.grad, out=vectors.take())
            vectors.give(*s.old_dirs, *s.old_stps)
            s.old_dirs, s.old_stps, s.ro, s.h_diag = [], [], [], 1
        else:
            d = _quasi_newton_direction(s, vectors, history_size, scratch)
        s.prev_grad = (s.prev_grad if s.prev_grad is not None else vectors.take()).copy_(s.grad)
        s.d = d
        t = min(1.0, 1.0 / torch.abs(s.grad, out=scratch).sum()) if s.iteration == 1 else 1.0
        slope = s.grad.dot(d)
        if slope > 0:  # not a descent direction: nothing more to gain
            return
        used_before = evaluate.used
        trial = vectors.take()

        def along(x, step, direction):
            return evaluate(torch.add(x, direction, alpha=step, out=trial))

        s.loss, s.grad, s.t, _ = _strong_wolfe(along, s.x, t, d, s.loss, s.grad, slope,
                                               max_ls=max_eval - used_before)
        # The new point goes into the trial vector (free again) and the old point is given back.
        s.x, spent = torch.add(s.x, d, alpha=s.t, out=trial), s.x
        vectors.give(spent)
        if evaluate.used >= max_eval or torch.mul(d, s.t, out=scratch).abs_().max() <= 0:
            return


def _quasi_newton_direction(s: LbfgsState, vectors: _Vectors, history_size: int,
                            scratch: torch.Tensor) -> torch.Tensor:
    """The curvature pair of the last step joins the history; returns d = -H grad (two-loop recursion)."""
    y = torch.sub(s.grad, s.prev_grad, out=vectors.take())
    step = torch.mul(s.d, s.t, out=vectors.take())
    ys = y.dot(step)
    if ys > 1e-10:
        if len(s.old_dirs) == history_size:
            vectors.give(s.old_dirs.pop(0), s.old_stps.pop(0))
            s.ro.pop(0)
        s.old_dirs.append(y)
        s.old_stps.append(step)
        s.ro.append(1.0 / ys)
        s.h_diag = ys / y.dot(y)
    else:
        vectors.give(y, step)
    # Two-loop recursion: d = -H grad.
    alphas = [None] * len(s.old_dirs)
    q = torch.neg(s.grad, out=scratch)
    for i in range(len(s.old_dirs) - 1, -1, -1):
        alphas[i] = s.old_stps[i].dot(q) * s.ro[i]
        q.add_(s.old_dirs[i], alpha=-alphas[i])
    vectors.give(s.d)  # the previous direction is spent: its step is in the history
    d = r = torch.mul(q, s.h_diag, out=vectors.take())
    for i in range(len(s.old_dirs)):
        beta = s.old_dirs[i].dot(r) * s.ro[i]
        r.add_(s.old_stps[i], alpha=alphas[i] - beta)
    return d
