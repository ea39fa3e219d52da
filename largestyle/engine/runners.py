"""Level runners: a level optimised whole, or exactly in windows; blend tiles are in ``blend``.

Each takes one ``LevelContext`` and the level's starting image, and returns the level's
image and the evaluations used. In-level progress is saved and restored through typed
records (``records``) so a stopped level resumes bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..core.transfer import to_device, to_host
from . import events as ev
from .buffers import LevelBuffers
from .checkpoints import CheckpointPolicy, Checkpoints, RenderInterrupted
from .method import Method
from .records import LevelProgress, load_progress, save_progress


@dataclass
class LevelContext:
    """Everything a runner needs for one level."""

    level: ev.LevelPlan
    method: Method
    content: torch.Tensor  # the content image at the level's size
    targets: object  # the method's targets for this level
    device: torch.device
    checkpoints: Checkpoints
    buffers: LevelBuffers
    policy: CheckpointPolicy
    should_stop: Callable[[], bool]
    emit: ev.Callback

    def stop_if_asked(self, where: str) -> None:
        if self.should_stop():
            raise RenderInterrupted(f"stopped {where}")

    def mapped_like(self, like: torch.Tensor) -> torch.Tensor:
        return self.mapped(like.shape, like.dtype)

    def mapped(self, shape, dtype: torch.dtype) -> torch.Tensor:
        return self.buffers.empty(shape, dtype, "cpu", mapped=True)

    def resumed(self, evaluations: int, per_evaluation_of: int) -> None:
        """Announce work restored from the level's progress (``per_evaluation_of``: the evaluations ``work`` spans)."""
        level = self.level
        self.emit(ev.Resumed(level.index, evaluations, evaluations * level.work // per_evaluation_of))


def run_whole(ctx: LevelContext, start: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The whole level in one piece."""
    objective = ctx.method.objective(ctx.content, ctx.targets)
    return _resumable(ctx, objective, start)


def run_exact(ctx: LevelContext, start: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The whole level as one optimisation, its loss and gradient computed window by window."""
    level, content = ctx.level, ctx.content
    if level.on_host or level.mapped:  # windows travel to the device; the level's buffers stay on the host
        start, content = to_host(start), to_host(content)
    objective = ctx.method.windowed_objective(content, ctx.targets, level.tile_size, level.cache_content)
    image, used = _resumable(ctx, objective, start)
    return to_device(image, ctx.device), used


def _resumable(ctx: LevelContext, objective, start: torch.Tensor) -> tuple[torch.Tensor, int]:
    """One optimisation over the level, resuming from and saving its in-level progress."""
    level = ctx.level
    progress = load_progress(ctx.checkpoints, level, LevelProgress)
    state = progress and ctx.method.restore(progress.optimiser, start.device)
    if state is not None:
        ctx.resumed(state.used, level.evaluations)

    def save(snapshot) -> None:
        save_progress(ctx.checkpoints, LevelProgress(level, snapshot.to_plain()))

    return optimise(ctx, objective, start, state=state, save=save,
                    allocate=ctx.mapped_like if level.mapped else None)


def optimise(ctx: LevelContext, objective, start: torch.Tensor, pass_index: int = 0, tile: int = 0,
             state=None, save=None, allocate=None) -> tuple[torch.Tensor, int]:
    """The method's optimiser with progress events; at iteration boundaries ``save`` gets the state when due, or on a stop."""
    level = ctx.level
    work = level.work // level.total_evaluations  # per evaluation, for progress and ETA
    where = f"level {level.index + 1}" + (f" pass {pass_index + 1} tile {tile + 1}" if level.mode == "blend" else "")

    def on_evaluation(count, terms):
        ctx.emit(ev.Evaluation(level.index, count, level.evaluations, terms, work, pass_index, tile))

    def on_iteration(snapshot):
        stopping = ctx.should_stop()
        if stopping or ctx.policy.due(snapshot().used):
            save(snapshot())
            ctx.policy.saved(snapshot().used)
        if stopping:
            raise RenderInterrupted(f"stopped at {where}, evaluation {snapshot().used}")

    result, terms, used = ctx.method.minimize(objective, start, level.evaluations, where, on_evaluation, state,
                                              on_iteration if save is not None else None, allocate)
    ctx.emit(ev.OptimisationFinished(level.index, used, level.evaluations - used, terms, work, pass_index, tile))
    return result.clamp(0, 1), used
