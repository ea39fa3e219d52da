"""Estimates for `largestyle plan`: time per evaluation from a short calibration run."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..core.units import format_bytes, format_duration
from ..gatys.targets import style_targets
from . import events as ev
from .engine import Engine
from .memory import MemoryModel, calibration_path

CALIBRATION_SIDE = 256

# Measured seconds per pixel, by calibration_key: a batch's plans measure each device once.
_measured: dict[tuple, float] = {}


def calibration_key(engine: Engine, repeats: int = 2) -> tuple:
    """What the time of an evaluation depends on: device, dtype, layers, pooling and weights."""
    config = engine.config
    weights = config.weights
    if weights not in (None, "random"):
        weights = str(Path(weights).expanduser().absolute())
    return (str(engine.device), str(torch.get_default_dtype()), tuple(config.content_layers),
            tuple(config.style_layers), config.pooling, weights, config.weights_format, repeats)


def seconds_per_pixel(engine: Engine, repeats: int = 2) -> float:
    """Seconds of one loss evaluation per pixel on the engine's device, measured once per process.

    Only the first engine of a given ``calibration_key`` loads its network and runs the
    calibration; later ones (the many jobs of a batch's plan) reuse its figure.
    """
    key = calibration_key(engine, repeats)
    if key not in _measured:
        _measured[key] = measure_seconds_per_pixel(engine, repeats)
    return _measured[key]


def measure_seconds_per_pixel(engine: Engine, repeats: int = 2) -> float:
    """Measured seconds of one loss evaluation per pixel, on the engine's device."""
    method, config = engine.prepare(), engine.config
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, CALIBRATION_SIDE, CALIBRATION_SIDE, generator=generator).to(engine.device)
    objective = method.objective(image, style_targets(method.network, image, config.style_layers))
    objective.value_and_grad(image)  # warm-up: allocations, kernel choice
    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)
    start = time.perf_counter()
    for _ in range(repeats):
        objective.value_and_grad(image)
    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)
    return (time.perf_counter() - start) / repeats / CALIBRATION_SIDE ** 2


def describe(levels: tuple[ev.LevelPlan, ...], budget: int, per_pixel: float, context: int,
             memory: MemoryModel) -> str:
    """A table of the plan: one row per level and a total."""
    rows = [("level", "size", "strategy", "tiles", "halo", "peak memory", "s/eval", "evals", "level time")]
    total = 0.0
    for level in levels:
        seconds = level.work * per_pixel
        total += seconds
        evaluations = level.total_evaluations
        tiles = ", ".join(filter(None, ("-" if level.mode == "whole" else (
            f"{level.grid[0]}x{level.grid[1]} of {level.tile_size} px"
            + (f", {level.passes} passes" if level.mode == "blend" else "")), level.placement)))
        peak = level.estimated_bytes if level.mode == "whole" else level.tiled_bytes
        rows.append((str(level.index + 1), f"{level.width}x{level.height}", level.mode, tiles,
                     f"{context} px" if level.mode == "exact" else "-", format_bytes(peak),
                     f"{seconds / evaluations:.3g}", str(evaluations), format_duration(seconds)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"total: about {format_duration(total)}; memory budget {format_bytes(budget)}; "
                 f"{per_pixel * 1e6:.3g} µs per pixel per evaluation, measured at {CALIBRATION_SIDE} px")
    lines.append(f"memory model: {memory.activation_per_pixel:.0f} bytes per pixel saved for the backward pass "
                 f"(measured on this device, kept in {calibration_path()}), {memory.per_pixel:.0f} in all")
    return "\n".join(lines)

