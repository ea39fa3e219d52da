"""Writing a file so that it is either complete or absent: temporary file, fsync, rename."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: Path, suffix: str = ".tmp"):
    """Yield a binary stream whose bytes replace ``path`` only if the block finishes.

    The stream is a temporary file beside ``path`` (same file system, so the final
    rename is atomic); it is fsynced before the rename, so a power cut leaves either
    the old file or the new one. On any exception the temporary file is removed and
    ``path`` is untouched. OSErrors propagate for the caller to word.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def write_json(path: Path, value) -> None:
    write_bytes(path, json.dumps(value, indent=1, default=str).encode())


def read_json(path: Path) -> dict | None:
    """A JSON object written by ``write_json``, or None if missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
