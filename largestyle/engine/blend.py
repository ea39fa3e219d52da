"""The blend level runner: tiles optimised apart in passes over a shifting grid, feathered together."""

from __future__ import annotations

import functools

import torch

from ..core.transfer import to_device
from . import events as ev
from ..geometry.tiling import BlendAccumulator, BlendGrid, shifts_for_passes
from .records import BlendProgress, load_progress, save_progress
from .runners import LevelContext, optimise


def run_blend(ctx: LevelContext, image: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Jacobi-style passes: every tile of a pass starts from the previous pass's canvas.

    Progress is saved after every tile (the pass's starting image, the accumulated
    tiles) and, within a tile, as for a whole level.
    """
    level = ctx.level
    progress = load_progress(ctx.checkpoints, level, BlendProgress)
    used = progress.used if progress else 0  # evaluations of the finished tiles
    if progress:
        image = to_device(progress.image, ctx.device)
        restored = used + (progress.optimiser["used"] if progress.optimiser else 0)
        ctx.resumed(restored, level.total_evaluations)
    for pass_index, shift in enumerate(shifts_for_passes(level.tile_size, level.passes)):
        if progress and pass_index < progress.pass_index:
            continue
        image, used = _blend_pass(ctx, image, pass_index, shift, used, progress)
    return image, used


def _blend_pass(ctx: LevelContext, image: torch.Tensor, pass_index: int, shift: int, used: int,
                progress: BlendProgress | None) -> tuple[torch.Tensor, int]:
    """One pass over the grid shifted by ``shift``; returns the blended image and the evaluations so far."""
    level = ctx.level
    grid = BlendGrid.plan(level.height, level.width, level.tile_size, shift)
    canvas, padded_content = grid.pad(image), grid.pad(ctx.content)
    if level.mapped:  # the pass's canvases to files; tiles are cut from them as needed
        ctx.buffers.release()
        canvas, padded_content = (ctx.buffers.copy_of(canvas, mapped=True),
                                  ctx.buffers.copy_of(padded_content, mapped=True))
    accumulator = BlendAccumulator(grid, channels=3, device=ctx.device, allocate=ctx.mapped if level.mapped else None)
    resuming = progress is not None and progress.pass_index == pass_index
    if resuming:
        accumulator.restore(to_device(progress.accumulator, ctx.device))

    def save_tile(tile_index, snapshot=None):
        save_progress(ctx.checkpoints, BlendProgress(level, used, image, pass_index, accumulator.state(), tile_index,
                                                     snapshot and snapshot.to_plain()))

    done = set(accumulator.state()["seen"])
    for tile in grid.tiles:
        if tile.index in done:
            continue
        ctx.emit(ev.TileStarted(level.index, pass_index, level.passes, tile.index, len(grid.tiles)))
        saved = progress.optimiser_of(pass_index, tile.index) if resuming else None
        state = saved and ctx.method.restore(saved, ctx.device)
        objective = ctx.method.objective(grid.cut(padded_content, tile), ctx.targets)
        result, n = optimise(ctx, objective, grid.cut(canvas, tile), pass_index, tile.index, state,
                             functools.partial(save_tile, tile.index))
        accumulator.add(tile, result)
        used += n  # a resumed tile's count includes its evaluations before the resume
        save_tile(None)
        ctx.stop_if_asked(f"at level {level.index + 1} pass {pass_index + 1} after tile {tile.index + 1}")
    return accumulator.result(), used

