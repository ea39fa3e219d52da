"""A job directory's files as the engine sees them: checkpoints, level images, job.json and status.json.

Each checkpoint is checked against the sha256 recorded in checkpoints/sums.json when it
was written (the current and previous one, so whichever file a crash leaves is listed),
together with the render it was made for.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from ..core.atomic import atomic_write, read_json, storage_problem, write_json
from ..core.hashing import sha256_of
from ..core.transfer import to_host
from ..core.errors import LargestyleError
from ..core.faults import kill_point
from ..engine.checkpoints import Checkpoints
from ..io.write import save_image
from . import layout

RESUME_ADVICE = "free some space (or give the render a --job-dir elsewhere) and run the same command again to resume"


class DamagedState(LargestyleError):
    """A job directory file that fails its check; it is never used."""


class JobDirectory(Checkpoints):
    """Checkpoints in files, each checked against the sha256 recorded when it was written.

    ``identity`` is the render the checkpoints belong to (``jobrecord.identity``); it is
    recorded beside them and a store made for another render refuses to load them.
    """

    def __init__(self, path: Path, identity: str | None = None):
        self.path = Path(path)
        self.identity = identity

    @property
    def _folder(self) -> Path:
        return self.path / layout.CHECKPOINT_DIR

    def _checkpoint(self, name: str) -> Path:
        return self._folder / f"{name}{layout.CHECKPOINT_SUFFIX}"

    def _damaged(self, what: str, why: str) -> DamagedState:
        return DamagedState(f"{what} in job directory {self.path} is damaged ({why}); it is not used: "
                            "run with --restart to start over")

    def sums(self) -> dict | None:
        """The checkpoints' record: {"identity": ..., "files": {name: [sha256, previous sha256]}}, or None."""
        path = self._folder / layout.SUMS_FILE
        if not path.exists():
            return None
        sums = read_json(path)
        if sums is None or not isinstance(sums.get("identity"), str) or not isinstance(sums.get("files"), dict):
            raise self._damaged(f"{layout.CHECKPOINT_DIR}/{layout.SUMS_FILE}", "not a valid record of the checkpoints")
        return sums

    def has_checkpoints(self) -> bool:
        folder = self._folder
        return folder.is_dir() and any(entry.suffix == layout.CHECKPOINT_SUFFIX for entry in folder.iterdir())

    def load(self, name: str):
        path = self._checkpoint(name)
        if not path.exists():
            return None
        shown = f"{layout.CHECKPOINT_DIR}/{path.name}"
        sums = self.sums()
        if sums is None:
            raise self._damaged(shown, f"{layout.CHECKPOINT_DIR}/{layout.SUMS_FILE}, which records its sha256, "
                                       "is missing")
        if self.identity is not None and sums["identity"] != self.identity:
            raise self._damaged(shown, f"it was made for another render than {layout.JOB_FILE} describes")
        try:
            actual = sha256_of(path)
        except OSError as exc:
            raise LargestyleError(f"cannot read {path}: {storage_problem(exc)}") from None
        if actual not in sums["files"].get(name, ()):
            raise self._damaged(shown, "its sha256 differs from the one recorded when it was written")
        try:
            # Mapped, not read: a large level's L-BFGS state is paged in as the optimiser copies it.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # its bytes are the ones written, so only a bug or a disk fault gets here
            raise self._damaged(shown, "it cannot be read back") from None

    def save(self, name: str, value) -> None:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        data = buffer.getvalue()
        path = self._checkpoint(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sums = self.sums() or {"identity": self.identity, "files": {}}
            current = sums["files"].get(name, [])[:1]
            with atomic_write(path) as stream:
                stream.write(data[:len(data) // 2])
                kill_point("checkpoint-write")  # a kill (or a full disk) here must leave the previous checkpoint intact
                stream.write(data[len(data) // 2:])
                # Recorded before the rename: whichever file a crash leaves, its sha256 is listed.
                sums["files"][name] = [hashlib.sha256(data).hexdigest()] + current
                write_json(self._folder / layout.SUMS_FILE, sums)
        except OSError as exc:
            raise LargestyleError(f"cannot save a checkpoint in {self._folder}: {storage_problem(exc)}; "
                                  f"the last checkpoint is kept: {RESUME_ADVICE}") from None

    def discard(self, name: str) -> None:
        self._checkpoint(name).unlink(missing_ok=True)

    def finished_level(self, number: int, image: torch.Tensor) -> None:
        super().finished_level(number, image)
        try:
            (self.path / layout.LEVELS_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise LargestyleError(f"cannot write in {self.path}: {storage_problem(exc)}; {RESUME_ADVICE}") from None
        save_image(to_host(image[0]), self.path / layout.LEVELS_DIR / layout.level_image(number))  # 8-bit previews

    def output(self, suffix: str) -> Path:
        return self.path / f"{layout.OUTPUT_STEM}{suffix}"

    @property
    def record(self) -> dict | None:
        return read_json(self.path / layout.JOB_FILE)

    @property
    def status(self) -> dict | None:
        return read_json(self.path / layout.STATUS_FILE)
