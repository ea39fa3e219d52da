"""Writing a file so that it is either complete or absent: temporary file, fsync, rename.

A temporary file is named ``.NAME.XXXXXXXX.tmp`` beside its target and is locked
(``flock``) while it is written, so a later run can tell one left by a killed
process (unlocked) from one still being written, and remove only the former.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

# mkstemp's random part: 8 characters from this alphabet.
_RANDOM = r"[a-z0-9_]{8}"
TEMPORARY_SUFFIX = ".tmp"
# Errors that mean the storage, not the data, is at fault: the user frees space or picks another place.
STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the file system is read-only", errno.EIO: "an input/output error (a failing disk?)",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


def storage_problem(exc: OSError) -> str:
    """An OSError in the user's words: 'the disk is full', 'permission denied', ..."""
    return STORAGE_ERRNOS.get(exc.errno) or exc.strerror or str(exc)


@contextmanager
def atomic_write(path: Path, suffix: str = TEMPORARY_SUFFIX):
    """Yield a binary stream whose bytes replace ``path`` only if the block finishes.

    The stream is a temporary file beside ``path`` (same file system, so the final
    rename is atomic); it is fsynced before the rename, so a power cut leaves either
    the old file or the new one. On any exception the temporary file is removed and
    ``path`` is untouched. OSErrors propagate for the caller to word.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)  # marks it as in use until this process closes it or dies
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


def is_temporary_of(name: str, target: str, suffix: str = TEMPORARY_SUFFIX) -> bool:
    """Whether ``name`` is a temporary file that ``atomic_write`` makes for a file named ``target``."""
    return re.fullmatch(re.escape(f".{target}.") + _RANDOM + re.escape(suffix), name) is not None


def remove_stale_temporaries(path: Path, suffix: str = TEMPORARY_SUFFIX) -> list[Path]:
    """Remove temporary files of ``path`` left by a killed writer; return what was removed.

    Only names that ``atomic_write`` makes for this very target are considered, never
    through a symbolic link, and only those no live process holds locked.
    """
    path = Path(path)
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if is_temporary_of(name, path.name, suffix) and _remove_if_unlocked(path.parent / name):
            removed.append(path.parent / name)
    return removed


def _remove_if_unlocked(candidate: Path) -> bool:
    try:
        handle = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # gone, a symlink, or unreadable: not ours to touch
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        candidate.unlink(missing_ok=True)
        return True
    finally:
        os.close(handle)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def write_json(path: Path, value) -> None:
    write_bytes(path, json.dumps(value, indent=1, default=str).encode())


def read_json(path: Path) -> dict | None:
    """A JSON object written by ``write_json``, or None if missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
