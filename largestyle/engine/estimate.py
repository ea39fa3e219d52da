"""Estimates for `largestyle plan`: time per evaluation from a short calibration run."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..config.settings import CONVERGENCE_WINDOW, EXPECTED_SHARE, RenderConfig
from ..core.transfer import to_device
from ..core.units import format_bytes, format_duration
from ..gatys.targets import style_targets
from . import events as ev
from .engine import Engine
from .memory import MemoryModel, calibration_path

CALIBRATION_SIDE = 256

# Measured seconds per pixel, by calibration_key: a batch's plans measure each device once.
_measured: dict[tuple, float] = {}


def calibration_key(engine: Engine, repeats: int = 2) -> tuple:
    """What the time of an evaluation depends on: device, dtype, precision, layers, pooling and weights."""
    config = engine.config
    weights = config.weights
    if weights not in (None, "random"):
        weights = str(Path(weights).expanduser().absolute())
    return (str(engine.device), str(torch.get_default_dtype()), config.precision, tuple(config.content_layers),
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
    image = to_device(torch.rand(1, 3, CALIBRATION_SIDE, CALIBRATION_SIDE, generator=generator), engine.device)
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


def expected_evaluations(config: RenderConfig, level: ev.LevelPlan) -> int:
    """Evaluations one optimisation of ``level`` (each tile and pass, when blended) is expected to use.

    The measured EXPECTED_SHARE of its budget where --tolerance is at least its default (a
    larger tolerance stops no later on the same path), never fewer than the convergence
    window needs; else the whole budget.
    """
    if config.tolerance < RenderConfig.tolerance:
        return level.evaluations
    share = EXPECTED_SHARE[0 if level.index == 0 else 1]
    return min(level.evaluations, max(CONVERGENCE_WINDOW + 1, round(share * level.evaluations)))


def describe(levels: tuple[ev.LevelPlan, ...], budget: int, per_pixel: float, context: int,
             memory: MemoryModel, config: RenderConfig) -> str:
    """A table of the plan: one row per level, with the evaluations expected at --tolerance, and a total."""
    rows = [("level", "size", "strategy", "tiles", "halo", "peak memory", "s/eval", "evals", "level time")]
    total = capped = 0.0
    for level in levels:
        expected = expected_evaluations(config, level) / level.evaluations
        seconds = level.work * per_pixel * expected
        total += seconds
        capped += level.work * per_pixel
        cap = level.total_evaluations
        evaluations = round(cap * expected)
        tiles = ", ".join(filter(None, ("-" if level.mode == "whole" else (
            f"{level.grid[0]}x{level.grid[1]} of {level.tile_size} px"
            + (f", {level.passes} passes" if level.mode == "blend" else "")), level.placement)))
        peak = level.estimated_bytes if level.mode == "whole" else level.tiled_bytes
        rows.append((str(level.index + 1), f"{level.width}x{level.height}", level.mode, tiles,
                     f"{context} px" if level.mode == "exact" else "-", format_bytes(peak),
                     f"{seconds / evaluations:.3g}", f"~{evaluations} of {cap}" if evaluations < cap else str(cap),
                     format_duration(seconds)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if total < capped:
        lines.append(f"evals: expected at --tolerance {config.tolerance:g} (measured: docs/benchmarks.md), of the "
                     f"--iterations cap; every level at its cap would take about {format_duration(capped)}")
    lines.append(f"total: about {format_duration(total)}; memory budget {format_bytes(budget)}; "
                 f"{per_pixel * 1e6:.3g} µs per pixel per evaluation, measured at {CALIBRATION_SIDE} px")
    lines.append(f"memory model: {memory.activation_per_pixel:.0f} bytes per pixel saved for the backward pass "
                 f"(measured on this device, kept in {calibration_path()}), {memory.per_pixel:.0f} in all")
    return "\n".join(lines)

