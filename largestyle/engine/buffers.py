"""Where a level's large buffers live: RAM, or memory-mapped files when RAM is short.

The engine asks a ``LevelBuffers`` store for the level-sized buffers it keeps (the image,
the L-BFGS point, direction, history and best point, blend canvases and accumulators).
``LevelBuffers`` allocates them in RAM; ``MappedBuffers`` backs each by a file in a folder
(the job directory), so the operating system pages them between disk and RAM and a
level larger than RAM still runs. The values computed are the same either way.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch

from ..core.units import format_bytes
from ..core.errors import LargestyleError


class LevelBuffers:
    """Level buffers in RAM (on ``device``)."""

    maps = False  # whether buffers can live in files

    def __init__(self):
        self.mapped_bytes = 0  # bytes currently in files

    def empty(self, shape, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
              mapped: bool = False) -> torch.Tensor:
        """An uninitialised buffer; ``mapped`` asks for a file-backed one where the store has files."""
        return torch.empty(shape, dtype=dtype, device=device)

    def copy_of(self, tensor: torch.Tensor, mapped: bool = False) -> torch.Tensor:
        buffer = self.empty(tensor.shape, tensor.dtype, tensor.device if not mapped else "cpu", mapped)
        return buffer.copy_(tensor)

    def release(self) -> None:
        """The level is over: drop its files (tensors still mapped stay valid until freed)."""


class MappedBuffers(LevelBuffers):
    """Buffers asked for as ``mapped`` are files in ``folder``, mapped shared into memory."""

    maps = True

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)
        self._files: list[Path] = []

    def empty(self, shape, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
              mapped: bool = False) -> torch.Tensor:
        if not mapped:
            return super().empty(shape, dtype, device)
        count = math.prod(shape)
        size = count * torch.finfo(dtype).bits // 8
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="canvas-", suffix=".f32", dir=self.folder)
        try:
            # Reserve the blocks now: a full disk under a mapping would kill the process
            # with SIGBUS at some later write instead of failing here with a message.
            os.posix_fallocate(handle, 0, max(size, 1))
        except OSError as exc:
            os.close(handle)
            os.unlink(name)
            raise LargestyleError(
                f"cannot keep a {format_bytes(size)} canvas in {self.folder}: {exc.strerror}; free disk space "
                "there or give the render a --job-dir on a larger disk") from None
        os.close(handle)
        self._files.append(Path(name))
        self.mapped_bytes += size
        return torch.from_file(name, shared=True, size=count, dtype=dtype).view(shape)

    def release(self) -> None:
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
        self.mapped_bytes = 0

    def clear(self) -> None:
        """Remove files left by a process that was killed."""
        if self.folder.is_dir() and not self.folder.is_symlink():  # never reaches outside the job directory
            for path in self.folder.glob("canvas-*.f32"):
                if path.is_file() and not path.is_symlink():
                    path.unlink(missing_ok=True)
