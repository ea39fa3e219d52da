"""A batch file read with limits: its bytes, then a scan of its brackets and keys before TOML parses it.

A damaged or hostile file (huge, not UTF-8, a pipe, brackets nested thousands deep) is
refused in one line rather than exhausting memory or time, or blocking.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from ..core.errors import LargestyleError
from . import batchlimits
from .batchsource import Source

# What the nesting scan stops at: string and comment openers, brackets, and key punctuation.
_SCAN_TOKEN = re.compile(r'"""|\'\'\'|["\'#\[\]{}.=,\n]')
_BASIC_STRING_REST = re.compile(r'(?:[^"\\\n]|\\.)*"')


def read_text(file: Path, shown: str) -> str:
    """The batch file's text: a regular file of at most MAX_FILE_BYTES of UTF-8 without NUL bytes.

    The file is examined before it is opened, and opened without blocking, so that a FIFO
    or device named by mistake is refused rather than waited on.
    """
    limit = batchlimits.MAX_FILE_BYTES

    def refuse(problem: str) -> LargestyleError:
        return LargestyleError(f"{shown}: {problem}")

    def cannot(error: OSError) -> LargestyleError:
        if isinstance(error, FileNotFoundError):
            return refuse("batch file not found")
        if error.errno == errno.ELOOP:
            return refuse("cannot read batch file: a loop of symbolic links")
        return refuse(f"cannot read batch file: {error.strerror or error}")

    def check(info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode):
            raise refuse("cannot read batch file: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("cannot read batch file: not a regular file (a pipe, socket or device)")
        if info.st_size > limit:
            raise refuse(f"batch file is {info.st_size:,} bytes; at most {limit:,} "
                         f"({limit // 2**20} MiB) are read: split it into several files")

    try:
        check(os.stat(file))
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise cannot(error) from None
    except ValueError:  # a NUL character in the name
        raise refuse("cannot read batch file: the name holds a NUL character") from None
    with os.fdopen(descriptor, "rb") as stream:
        try:
            check(os.fstat(descriptor))  # the same file as examined: it may have been swapped since
            data = stream.read(limit + 1)
        except OSError as error:
            raise cannot(error) from None
    if len(data) > limit:  # it grew while being read
        raise refuse(f"batch file is over {limit:,} bytes ({limit // 2**20} MiB), the most "
                     "that is read: split it into several files")
    return _decode(data, shown)


def _decode(data: bytes, shown: str) -> str:
    """The text of a batch file's bytes: UTF-8 (a byte order mark dropped), without NUL characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LargestyleError(f"{shown}:{line}: cannot read batch file: not UTF-8 text "
                              f"(byte 0x{data[error.start]:02x}); save it as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte order mark some editors write
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise LargestyleError(f"{shown}:{line}: holds a NUL byte; a batch file is TOML text")
    return text


def check_shape(text: str, src: Source) -> None:
    """Refuse, before parsing, what would make the TOML parser recurse or grow without bound.

    Brackets ([ ] and { }) outside strings and comments may nest MAX_NESTING deep, a key
    may have MAX_KEY_PARTS dotted parts (the parser's cost grows with their square), and
    there may be MAX_JOBS [[job]] tables.
    """
    jobs, nesting, parts = batchlimits.MAX_JOBS, batchlimits.MAX_NESTING, batchlimits.MAX_KEY_PARTS
    if len(src.job_headers) > jobs:
        raise src.error(src.job_headers[jobs],
                        f"more than {jobs:,} [[job]] tables; a batch file makes at most {jobs:,} renders")
    if text.count("[") + text.count("{") <= nesting and text.count(".") < parts:
        return  # too few brackets or dots to exceed either limit
    depth = dots = 0
    for kind, offset in _structure(text):
        if kind in "[{":
            depth, dots = depth + 1, 0
            if depth > nesting:
                raise src.error(text.count("\n", 0, offset) + 1,
                                f"brackets nested more than {nesting} deep; a batch file needs only a few levels")
        elif kind in "]}":
            depth, dots = max(depth - 1, 0), 0
        elif kind == ".":
            dots += 1
            if dots >= parts:
                raise src.error(text.count("\n", 0, offset) + 1,
                                f"a key of more than {parts} dotted parts; a batch file needs only one or two")
        else:  # = , or a newline: a key's dots end here
            dots = 0


def _structure(text: str):
    """(token, offset) of each bracket, dot, '=', ',' and newline outside strings and comments.

    Ends early at an unterminated multi-line string (the parser reports it).
    """
    position, end = 0, len(text)
    while position < end:
        token = _SCAN_TOKEN.search(text, position)
        if token is None:
            return
        kind, position = token.group(), token.end()
        if kind in ('"""', "'''"):
            position = _after_multiline_string(text, kind, position)
            if position is None:
                return
        elif kind in ('"', "'", "#"):
            position = _after_line_string(text, kind, position)
        else:
            yield kind, token.start()


def _after_multiline_string(text: str, quotes: str, start: int) -> int | None:
    """Where the string opened by ``quotes`` just before ``start`` ends, or None if it never does."""
    close = start
    while True:  # the first unescaped closing triple; up to two more quotes belong to the string
        close = text.find(quotes, close)
        if close < 0:
            return None
        escapes = 0
        while close - escapes > start and text[close - escapes - 1] == "\\":
            escapes += 1
        if quotes == "'''" or escapes % 2 == 0:
            break
        close += 1
    position = close + 3
    while position < len(text) and position < close + 5 and text[position] == quotes[0]:
        position += 1
    return position


def _after_line_string(text: str, opener: str, start: int) -> int:
    """Where a one-line string or a comment opened by ``opener`` just before ``start`` ends.

    An unterminated string ends at the line's end (the parser reports it).
    """
    newline = text.find("\n", start)
    line_end = newline if newline >= 0 else len(text)
    if opener == '"':
        rest = _BASIC_STRING_REST.match(text, start)
        return rest.end() if rest else line_end
    if opener == "'":
        close = text.find("'", start)
        return close + 1 if close >= 0 and (newline < 0 or close < newline) else line_end
    return line_end  # a comment
