"""The one exception type that reaches users as a plain message, and how a message is kept to one line."""

from __future__ import annotations

import re
import unicodedata

# Terminal control sequences: CSI (colours, cursor moves), OSC (titles, links), and two-character escapes.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")


class LargestyleError(Exception):
    """A problem the user can fix (bad input, unwritable output, bad option).

    The CLI prints its message on one line and exits with status 2; anything
    else is a bug and keeps its traceback.
    """


def one_line(text) -> str:
    """``text`` as one line of plain text: terminal escapes removed, other control characters escaped.

    Messages quote library errors, server replies and file names, any of which may hold
    line breaks or escape sequences that would garble or forge terminal output.
    """
    text = _ESCAPES.sub("", str(text))
    return "".join(_escaped(char) if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
                   for char in text)


def _escaped(char: str) -> str:
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def brief(message, limit: int = 100) -> str:
    """A library's message (or exception) fit to quote: its first line of words, cut at a word near ``limit``."""
    plain = "".join(" " if unicodedata.category(char) == "Cc" and char != "\n" else char
                    for char in _ESCAPES.sub("", str(message)))
    text = next((" ".join(line.split()) for line in plain.splitlines() if line.strip()), "")
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        text = text[:cut if cut > limit // 2 else limit].rstrip(" ,;:.(") + "..."
    return text or (type(message).__name__ if isinstance(message, BaseException) else "")
