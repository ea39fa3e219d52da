"""The seam between the render core and a stylisation method.

The render core (planner, level loop, out-of-memory retry, checkpoints, events, buffers)
drives a method through ``Method``; Gatys optimisation (``largestyle.gatys.method``) is
the first. A new method implements this protocol in its own package and is passed to
``Engine(method=...)``; nothing in the core or in other methods changes.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch

from ..network.weights import WeightsInfo
from .events import LevelPlan
from .memory import MemoryModel


class OptimiserState(Protocol):
    used: int  # loss evaluations so far

    def to_plain(self) -> dict: ...


class Objective(Protocol):
    def value_and_grad(self, image: torch.Tensor) -> tuple[object, torch.Tensor]: ...


class Method(Protocol):
    """What the render core needs from a stylisation method."""

    layers: tuple[str, ...]  # network layers it reads: the memory model and tile halos follow them
    content_layers: tuple[str, ...]  # layers whose per-window targets an exact level may cache
    weights_info: WeightsInfo | None  # the network's weights once prepared; None for a network given by the caller
    loss_weights: tuple[float, float, float]  # content, style, TV, as used once prepared

    def prepare(self, device: torch.device) -> None:
        """Load what the method needs (its network and weights) onto ``device``, once."""

    def level_targets(self, styles: tuple[torch.Tensor, ...], level: LevelPlan, memory: MemoryModel, budget: int):
        """What a level's loss compares against, from one or more style images, computed within ``budget`` bytes."""

    def objective(self, content: torch.Tensor, targets) -> Objective:
        """The loss of a whole level or of one blend tile, against ``content``'s targets."""

    def windowed_objective(self, content: torch.Tensor, targets, core: int, cache_content: bool) -> Objective:
        """The same loss and gradient for a whole level, computed window by window (exact tiling)."""

    def minimize(self, objective: Objective, start: torch.Tensor, evaluations: int, where: str,
                 on_evaluation: Callable, state: OptimiserState | None,
                 on_iteration: Callable | None, allocate: Callable | None) -> tuple[torch.Tensor, object, int]:
        """(result, its loss terms, evaluations used): at most ``evaluations``, resuming ``state``."""

    def restore(self, plain: dict, device: torch.device) -> OptimiserState:
        """An optimiser state from its plain form, on ``device``."""
