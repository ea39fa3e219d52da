"""What a render keeps so that it can resume, and when it keeps it.

The engine names what it saves and decides when; a ``Checkpoints`` store decides
where. ``MemoryCheckpoints`` keeps them in a dict; the job directory
(``largestyle.jobs``) keeps them in files. Values are plain (tensors, numbers,
strings, lists, dicts), so they load back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch

from ..config.settings import CHECKPOINT_EVALUATIONS, CHECKPOINT_SECONDS
from .records import finished_key


class RenderInterrupted(Exception):
    """A stop was requested; the render saved a checkpoint and stopped at a safe point."""


class Checkpoints:
    """A store of named checkpoints. This one keeps nothing; subclasses keep them somewhere."""

    def load(self, name: str):
        return None

    def save(self, name: str, value) -> None:
        pass

    def discard(self, name: str) -> None:
        pass

    def finished_level(self, number: int, image: torch.Tensor) -> None:
        """Level ``number`` (1-based) is done; ``image`` is (1, 3, H, W) in [0, 1]."""
        self.save(finished_key(number - 1), image)


class MemoryCheckpoints(Checkpoints):
    def __init__(self):
        self.saved: dict[str, object] = {}

    def load(self, name: str):
        return self.saved.get(name)

    def save(self, name: str, value) -> None:
        # A copy, as a file would hold: the optimiser goes on changing the tensors it saved.
        self.saved[name] = copy.deepcopy(value)

    def discard(self, name: str) -> None:
        self.saved.pop(name, None)


@dataclass
class CheckpointPolicy:
    """Save in-level progress every ``evaluations`` loss evaluations or ``seconds``, whichever is first."""

    evaluations: int = CHECKPOINT_EVALUATIONS
    seconds: float = CHECKPOINT_SECONDS
    _evaluations_at: int = field(default=0, repr=False)
    _time_at: float = field(default_factory=time.monotonic, repr=False)

    def due(self, evaluations: int) -> bool:
        """True when a checkpoint is due at this running evaluation count."""
        return (evaluations - self._evaluations_at >= self.evaluations
                or time.monotonic() - self._time_at >= self.seconds)

    def saved(self, evaluations: int) -> None:
        self._evaluations_at, self._time_at = evaluations, time.monotonic()
