"""Paths that are not regular files, refused by what they are, and regular files opened without blocking.

A path is looked at (``stat``) before it is opened, and a directory, FIFO, device,
socket, broken or looping link, or ``/dev/stdin`` on a pipe or terminal is refused by
what it is. The file is then opened with O_NONBLOCK and its descriptor checked again,
so a swap between the two cannot make a read hang.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from .messages import cannot_read, shown
from ..core.errors import LargestyleError, brief

# What a path that is not a regular file is, in the user's terms.
_NOT_FILES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISCHR, "a character device (like /dev/null or a terminal)"),
              (stat.S_ISBLK, "a block device (a disk or partition)"), (stat.S_ISSOCK, "a UNIX socket"))
_ON_DESCRIPTOR = {stat.S_IFIFO: "a pipe", stat.S_IFCHR: "a terminal or character device", stat.S_IFSOCK: "a socket"}
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/(?:self|thread-self|\d+)|dev)/fd/(\d+)")
_STANDARD_STREAMS = {0: "standard input", 1: "standard output", 2: "standard error"}


@contextmanager
def open_regular(path: str, name: str, role: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; anything else refused by what it is.

    Never blocks: the path is looked at before it is opened, opened with O_NONBLOCK (a FIFO
    or device swapped in meanwhile opens at once) and the opened descriptor checked again.
    """
    fail = cannot_read(role, name)
    if "\0" in path:
        raise LargestyleError(f"{fail}: the path contains a NUL byte, which no file name can hold; "
                              "check how the path was written")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise LargestyleError(_os_problem(exc, path, name, role)) from None
    if not stat.S_ISREG(mode):
        raise LargestyleError(f"{fail}: {_not_a_file(mode, path)}")
    try:
        stream = open(path, "rb", opener=_open_nonblocking)
    except OSError as exc:
        raise LargestyleError(_os_problem(exc, path, name, role)) from None
    with stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not stat.S_ISREG(mode):  # replaced since it was looked at
            raise LargestyleError(f"{fail}: {_not_a_file(mode, path)}")
        yield stream


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))


def _not_a_file(mode: int, path: str) -> str:
    """Why a path whose ``mode`` is not a regular file's is refused."""
    what = next((kind for test, kind in _NOT_FILES if test(mode)), "a special file")
    stream = _descriptor(path)
    if stream:
        what = _ON_DESCRIPTOR.get(stat.S_IFMT(mode), what)
        return f"it is {stream} ({what}), not an image file; save the image to a file and give that file's path"
    return f"it is {what}, not an image file; give the path of an image file"


def _os_problem(exc: OSError, path: str, name: str, role: str) -> str:
    """The message for a path that cannot be looked at or opened."""
    fail = cannot_read(role, name)
    code = exc.errno
    if code == errno.ENOENT:
        stream = _descriptor(path)
        if stream:
            return f"{fail}: it is {stream}, which is closed; save the image to a file and give that file's path"
        target = _link_target(path)
        if target is not None:
            return (f"{fail}: it is a symbolic link to {shown(target)}, which does not exist; "
                    "fix the link or give the image's own path")
        return f"{role} image not found: {name}"
    if code == errno.ELOOP:
        return (f"{fail}: it is a symbolic link that leads back to itself (a loop of links, or too many); "
                "point it at an image file")
    if code == errno.ENOTDIR:
        return f"{fail}: {_file_in_path(path)}; check the path"
    if code == errno.ENAMETOOLONG:
        return f"{fail}: the path, or a name in it, is too long for the file system; give a shorter path"
    if code == errno.EISDIR:
        return f"{fail}: it is a directory, not an image file; give the path of an image file"
    if code in (errno.EACCES, errno.EPERM):
        return f"{fail}: permission denied; check the file's permissions"
    return f"{fail}: {brief(exc.strerror or '') or brief(exc)}; check the path"


def _descriptor(path: str) -> str | None:
    """'standard input' (or another open stream) when ``path`` leads to /dev/fd/N or /proc/*/fd/N."""
    for _ in range(8):
        match = _DESCRIPTOR_PATH.fullmatch(path)
        if match:
            number = int(match.group(1))
            return _STANDARD_STREAMS.get(number, f"open file descriptor {number}")
        try:
            path = os.path.join(os.path.dirname(path), os.readlink(path))
        except (OSError, ValueError):
            return None
    return None


def _link_target(path: str) -> str | None:
    """Where a symbolic link at ``path`` points, or None when ``path`` is not a link."""
    try:
        return os.readlink(path) if stat.S_ISLNK(os.lstat(path).st_mode) else None
    except (OSError, ValueError):
        return None


def _file_in_path(path: str) -> str:
    """Which part of ``path`` is a file where a folder must be."""
    for parent in (*reversed(Path(path).parents), Path(path)):  # Path drops a trailing "/"
        try:
            if not stat.S_ISDIR(os.stat(parent).st_mode):
                return f"{shown(parent)} is a file, not a folder, so nothing is inside it"
        except OSError:
            break
    return "a part of the path is a file, not a folder"
