"""A batch file's text, for turning problems into ``file:line: problem``."""

from __future__ import annotations

import difflib
import re
import reprlib

from ..core.errors import LargestyleError, one_line
from . import batchlimits

_JOB_HEADER = re.compile(r"^\s*\[\[\s*job\s*\]\]")
_DEFAULTS_HEADER = re.compile(r"^\s*\[\s*defaults\s*\]")
# A table header on its own line; stricter than "starts with [" so that a
# multi-line array's "[1, 2]," rows do not end a block.
_ANY_HEADER = re.compile(r"^\s*\[\[?\s*[\w.\"' -]+\s*\]\]?\s*(#.*)?$")
_JOB_SUBTABLE = re.compile(r"^\s*\[\s*job\s*\.")

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 8
_SHORT.maxlevel = 3


class Source:
    """The batch file's lines and where its tables start."""

    def __init__(self, shown: str, text: str):
        self.shown = shown
        # Lines as TOML counts them (split at newlines only), so that its line numbers match ours.
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.job_headers = [n for n, line in enumerate(self.lines, 1) if _JOB_HEADER.match(line)]
        self.header_set = set(self.job_headers)
        self.defaults_header = next(
            (n for n, line in enumerate(self.lines, 1) if _DEFAULTS_HEADER.match(line)), None)

    def error(self, line: int, problem: str) -> LargestyleError:
        return LargestyleError(bounded(f"{self.shown}:{line}: {problem}"))

    def job_line(self, index: int) -> int:
        # Jobs written as an inline array have no headers; line 1 is the best we can say.
        return self.job_headers[index] if index < len(self.job_headers) else 1

    def top_line(self, key: str) -> int:
        """Line of the top-level table or key ``key``, else 1."""
        pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*[\].]|{re.escape(key)}\s*[.=])")
        return next((n for n, line in enumerate(self.lines, 1) if pattern.match(line)), 1)

    def find(self, header: int | None, *keys: str) -> int | None:
        """Line of the first of ``keys`` (dotted, e.g. 'vary.style_weight') set in the block under ``header``."""
        if header is None:
            return None
        in_job = bool(_JOB_HEADER.match(self.lines[header - 1]))
        block = []
        for number in range(header + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if _ANY_HEADER.match(line) and not (in_job and _JOB_SUBTABLE.match(line)):
                break  # [job.vary] and the like still belong to the job
            block.append((number, line))
        for key in keys:
            # A key may be written with dashes for underscores (the command line's spelling).
            parts = (re.escape(part).replace("_", "[-_]") for part in key.split("."))
            pattern = re.compile(r"^\s*" + r"\s*\.\s*".join(parts) + r"\s*=")
            for number, line in block:
                if pattern.match(line):
                    return number
        return None


def bounded(text: str) -> str:
    """``text`` with control characters escaped (a path may hold a newline) and cut to a sane length."""
    text = one_line(text)
    limit = batchlimits.MAX_PROBLEM_CHARS
    return text if len(text) <= limit else text[:limit] + "..."


def short(value) -> str:
    """A value as it may appear in an error: bounded in length and depth."""
    return _SHORT.repr(value)


def unknown(key: str, known) -> str:
    """The problem with an unknown key, with the closest known one as a suggestion."""
    close = difflib.get_close_matches(key, known, n=1) if len(key) <= 100 else []
    return f"unknown option {short(key)}" + (f" (did you mean {close[0]}?)" if close else "")
