"""Typed progress events that the engine emits; the CLI and API decide how to show them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Union

from ..core.messages import Info, Notice
from ..gatys.objective import LossTerms


@dataclass(frozen=True)
class LevelPlan:
    """How one pyramid level will be optimised."""

    index: int
    height: int
    width: int
    mode: str  # 'whole', 'blend' or 'exact'
    evaluations: int  # budget per optimisation (per tile and pass when tiled)
    estimated_bytes: int  # peak estimate of optimising the level whole
    work: int  # pixels processed by all of the level's evaluations, for progress and ETA
    tile_size: int | None = None  # blend: tile side; exact: core side
    grid: tuple[int, int] = (1, 1)  # tile rows x columns of the first pass
    tiles_per_pass: tuple[int, ...] = (1,)  # the grid shifts between passes, so counts may differ
    tiled_bytes: int | None = None  # peak estimate when tiled: the level's canvases plus one tile
    on_host: bool = False  # exact: the level's image, gradient and L-BFGS history kept in host memory
    cache_content: bool = True  # exact: content targets kept between evaluations, not recomputed
    mapped: bool = False  # the level's buffers (image, L-BFGS vectors, blend canvases) in memory-mapped files

    def to_plain(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, plain: dict) -> LevelPlan:
        return cls(**{**plain, "grid": tuple(plain["grid"]), "tiles_per_pass": tuple(plain["tiles_per_pass"])})

    @property
    def placement(self) -> str:
        """Where a level keeps what it keeps, when that departs from the default; else ''."""
        notes = (["level buffers in host memory"] if self.on_host else []) + (
            ["level buffers in memory-mapped files"] if self.mapped else []) + (
            [] if self.cache_content else ["content targets recomputed"])
        return ", ".join(notes)

    @property
    def passes(self) -> int:
        return len(self.tiles_per_pass)

    @property
    def total_evaluations(self) -> int:
        """Loss evaluations of the whole level: blend spends its budget on every tile of every pass."""
        return self.evaluations * sum(self.tiles_per_pass) if self.mode == "blend" else self.evaluations


@dataclass(frozen=True)
class RenderStarted:
    levels: tuple[LevelPlan, ...]
    device: str
    budget_bytes: int
    weights: str  # the weights flavour: 'torchvision', 'caffe', ..., or 'random'
    weights_path: str | None
    weights_sha256: str | None
    weights_chosen_by: str | None  # how the flavour was decided (known hash, --weights-format, heuristic)
    loss_weights: tuple[float, float, float]  # content, style, TV, as used

    @property
    def total_evaluations(self) -> int:
        return sum(level.total_evaluations for level in self.levels)

    @property
    def total_work(self) -> int:
        return sum(level.work for level in self.levels)


@dataclass(frozen=True)
class LevelStarted:
    level: LevelPlan
    count: int


@dataclass(frozen=True)
class TileStarted:
    level: int
    pass_index: int
    passes: int
    tile: int
    tiles: int


@dataclass(frozen=True)
class Evaluation:
    """One loss evaluation: ``evaluation`` of ``budget`` within the current level/tile."""

    level: int
    evaluation: int
    budget: int
    loss: LossTerms
    work: int  # this evaluation's share of LevelPlan.work, for progress and ETA
    pass_index: int = 0
    tile: int = 0


@dataclass(frozen=True)
class OptimisationFinished:
    """A whole level or one tile is done; ``skipped`` budgeted evaluations were not needed."""

    level: int
    evaluations: int
    skipped: int
    loss: LossTerms
    work: int  # per evaluation, as in Evaluation
    pass_index: int = 0
    tile: int = 0

    @property
    def converged(self) -> bool:
        """Ended before its budget: the loss stopped improving (--tolerance) or reached a stationary point."""
        return self.skipped > 0


@dataclass(frozen=True)
class LevelFinished:
    level: int
    seconds: float


@dataclass(frozen=True)
class Resumed:
    """Work restored from checkpoints: a finished level, or part of one."""

    level: int
    evaluations: int
    work: int  # in the units of LevelPlan.work, for progress and ETA


@dataclass(frozen=True)
class RenderFinished:
    seconds: float
    evaluations: int


Event = Union[RenderStarted, Notice, Info, LevelStarted, TileStarted, Evaluation, OptimisationFinished,
              LevelFinished, Resumed, RenderFinished]
Callback = Callable[[Event], None]
