"""Writing largestyle's compact weights file: the convs only, float32, with the flavour and source hash."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.atomic import atomic_write
from ..core.errors import LargestyleError, one_line
from ..core.faults import kill_point
from .download import write_problem
from .formats import COMPACT_FORMAT, WeightsFile
from .layouts import checked

# How a write of a converted file may go elsewhere, in the words of `weights convert` and `normalize`.
ANOTHER_OUTPUT = "choose another output file"


def write_compact(weights: WeightsFile, out_path, elsewhere: str = ANOTHER_OUTPUT) -> Path:
    """Save only the convs, as float32, atomically: temporary file, fsync, rename.

    A write that fails (a full disk, a read-only file system, ...) leaves no temporary
    file and an existing ``out_path`` untouched, and is a one-line ``LargestyleError``
    that ends with ``elsewhere``, the way to write somewhere else.
    """
    path = Path(out_path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LargestyleError(one_line(f"cannot write {os.fspath(out_path)}: directory {parent} does not exist; "
                                       f"create it or {elsewhere}"))
    content = {
        "format": COMPACT_FORMAT,
        "flavour": weights.flavour,
        "source_sha256": weights.sha256,
        "state": {key: value.detach().to(torch.float32).contiguous().clone()
                  for key, value in checked(weights.state, {}, weights.path).items()},
    }
    try:
        with atomic_write(path) as stream:
            recording = _Recording(stream)
            try:
                torch.save(content, recording)
            except Exception:
                # torch's writer may swallow a failed write and fail later with its own complaint.
                if recording.error is not None:
                    raise recording.error from None
                raise
    except OSError as exc:
        raise LargestyleError(write_problem(out_path, exc, elsewhere)) from None
    return path


class _Recording:
    """A binary stream that keeps the first OSError its writes raised."""

    def __init__(self, stream):
        self.stream = stream
        self.error = None

    def write(self, data) -> int:
        try:
            kill_point("weights-write")
            return self.stream.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self.stream, name)
