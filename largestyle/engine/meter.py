"""How far a render has got: a level described in one line, and the share of work done with an ETA."""

from __future__ import annotations

import time

from . import events as ev
from ..core.units import format_bytes


def describe_level(level: ev.LevelPlan, count: int) -> str:
    size = f"level {level.index + 1}/{count}: {level.width}x{level.height}"
    placement = f" ({level.placement})" if level.placement else ""
    if level.mode == "whole":
        return (f"{size} whole, {level.evaluations} evaluations (needs ~{format_bytes(level.estimated_bytes)})"
                + placement)
    rows, cols = level.grid
    if level.mode == "exact":
        return (f"{size} tiled (whole would need ~{format_bytes(level.estimated_bytes)}, tiled "
                f"~{format_bytes(level.tiled_bytes)}): exact, {level.tile_size} px cores in a {rows}x{cols} grid, "
                f"{level.evaluations} evaluations of the whole level" + placement)
    return (f"{size} tiled (whole would need ~{format_bytes(level.estimated_bytes)}, tiled "
            f"~{format_bytes(level.tiled_bytes)}): blend, {level.tile_size} px tiles in a {rows}x{cols} grid, "
            f"{level.passes} passes, {level.evaluations} evaluations per tile" + placement)


class WorkMeter:
    """The share of a render's work done, and an ETA from this run's own measured rate.

    Work restored from checkpoints counts as done but not towards the rate, so a
    resumed render's ETA is not flattered by work it did not do.
    """

    def __init__(self):
        self.total, self.done, self.restored = 1, 0, 0
        self.started = time.monotonic()

    def restore(self, work: int) -> None:
        self.done += work
        self.restored += work

    def advance(self, work: int) -> None:
        self.done += work

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def eta(self) -> float | None:
        """Seconds left, or None before anything was measured."""
        measured = self.done - self.restored
        if measured <= 0:
            return None
        return max(0.0, (time.monotonic() - self.started) * (self.total - self.done) / measured)
