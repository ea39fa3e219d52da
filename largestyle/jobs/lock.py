"""The lock that keeps two processes out of one job directory."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ..core.atomic import storage_problem
from ..core.errors import LargestyleError
from . import layout


class JobLock:
    """An exclusive lock on a job directory, released by the kernel if its holder dies.

    ``flock`` on the lock file does the locking; the pid written in it names the holder
    for the message, and a pid left by a killed process marks a stale lock taken over.
    """

    def __init__(self, directory: Path):
        self.path = directory / layout.LOCK_FILE
        self.stale_pid: int | None = None
        self._file = None

    def __enter__(self) -> JobLock:
        try:
            self._file = open(self.path, "a+")
        except OSError as exc:
            raise LargestyleError(f"cannot use job directory {self.path.parent}: {storage_problem(exc)}") from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = self.path.read_text().strip() or "unknown"
            raise LargestyleError(
                f"job directory {self.path.parent} is in use by process {holder}; wait for it to finish "
                "or stop it, or give this render another --job-dir")
        self._file.seek(0)
        previous = self._file.read().strip()
        if previous.isdigit() and int(previous) != os.getpid():
            self.stale_pid = int(previous)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._file.seek(0)
            self._file.truncate()
        except OSError:
            pass  # a read-only or failing disk: the flock still goes with the file
        self._file.close()  # closing releases the flock
