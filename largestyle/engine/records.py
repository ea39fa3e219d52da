"""What a render saves to resume, as typed records with one key scheme.

Every record converts to plain data (tensors, numbers, strings, lists, dicts), which
a ``Checkpoints`` store keeps under the key named here and gives back on a resume;
``from_plain`` turns it back into the record. The keys are the checkpoint names that a
job directory turns into file names (see ``largestyle.jobs.layout``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .events import LevelPlan

PLAN_KEY = "plan"


def finished_key(index: int) -> str:
    """The finished image of level ``index`` (0-based)."""
    return f"level-{index + 1}"


def progress_key(index: int) -> str:
    """The in-level progress of level ``index`` (0-based)."""
    return f"level-{index + 1}-progress"


@dataclass(frozen=True)
class SavedPlan:
    """The levels as planned (a resume must tile exactly as before) and the budget they were planned for."""

    levels: tuple[LevelPlan, ...]
    budget: int

    def to_plain(self) -> dict:
        return {"levels": [level.to_plain() for level in self.levels], "budget": self.budget}

    @classmethod
    def from_plain(cls, plain: dict) -> SavedPlan:
        return cls(tuple(LevelPlan.from_plain(level) for level in plain["levels"]), plain["budget"])


@dataclass(frozen=True)
class LevelProgress:
    """A whole (or exact) level part-way: the optimiser's state at an iteration boundary."""

    plan: LevelPlan
    optimiser: dict  # the optimiser's own plain state

    def to_plain(self) -> dict:
        return {"plan": self.plan.to_plain(), "lbfgs": self.optimiser}

    @classmethod
    def from_plain(cls, plain: dict) -> LevelProgress:
        return cls(LevelPlan.from_plain(plain["plan"]), plain["lbfgs"])


@dataclass(frozen=True)
class BlendProgress:
    """A blend level part-way: the pass, its starting image, the tiles blended so far, the tile under way."""

    plan: LevelPlan
    used: int  # evaluations of the finished tiles
    image: torch.Tensor  # the pass's starting image
    pass_index: int
    accumulator: dict  # BlendAccumulator.state()
    tile: int | None  # the tile whose optimiser state is saved, or None between tiles
    optimiser: dict | None  # that tile's optimiser state

    def to_plain(self) -> dict:
        return {"plan": self.plan.to_plain(), "used": self.used, "image": self.image, "pass": self.pass_index,
                "accumulator": self.accumulator, "tile": self.tile, "lbfgs": self.optimiser}

    @classmethod
    def from_plain(cls, plain: dict) -> BlendProgress:
        return cls(LevelPlan.from_plain(plain["plan"]), plain["used"], plain["image"], plain["pass"],
                   plain["accumulator"], plain["tile"], plain["lbfgs"])

    def optimiser_of(self, pass_index: int, tile: int) -> dict | None:
        """The saved optimiser state if it belongs to this tile of this pass."""
        return self.optimiser if (self.pass_index, self.tile) == (pass_index, tile) else None


def load_progress(store, level: LevelPlan, kind: type):
    """Level ``level``'s saved progress as a ``kind`` record, if it was made with this same plan."""
    plain = store.load(progress_key(level.index))
    if plain is None or LevelPlan.from_plain(plain["plan"]) != level:
        return None
    return kind.from_plain(plain)


def save_progress(store, record) -> None:
    store.save(progress_key(record.plan.index), record.to_plain())
