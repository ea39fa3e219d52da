"""How a file's problems reach the user: one line naming the file as given, what is wrong, what to do.

Owns the refusal raised for unusable pixels, the errors the decoders raise on damaged
data, and the wording shared by every reader: how a message starts, the file's name
made printable, the "corrupt or truncated" line and the size in megapixels.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from contextlib import contextmanager

from ..core.errors import LargestyleError, brief

# What the decoders raise on damaged data (imagecodecs' errors are RuntimeErrors,
# tifffile's are ValueErrors).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, zlib.error,
                 IndexError, KeyError)
# Terminal escape sequences and other control characters, kept out of messages.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class Refused(Exception):
    """Pixels that cannot be used; the message says why ("it has ..."), the caller adds whose."""


@contextmanager
def decoding(fail: str):
    """Decoder failures as one line naming the file."""
    try:
        yield
    except PermissionError:
        raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
    except MemoryError:
        raise LargestyleError(f"{fail}: not enough memory to decode it; use a smaller image") from None
    except DECODE_ERRORS as exc:
        raise LargestyleError(truncated(fail, brief(exc))) from None


def cannot_read(role: str, name: str) -> str:
    """How every message about a file starts: "cannot read <role> image <name>"."""
    return f"cannot read {role} image {name}"


def truncated(fail: str, detail: str) -> str:
    return f"{fail}: the file is corrupt or truncated ({detail}); re-export or re-download it"


def shown(path) -> str:
    """``path`` as the user gave it, with characters that would break the line (or the terminal) escaped."""
    text = os.fsdecode(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not text in the file system's encoding
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.0f}" if pixels >= 10**7 else f"{pixels / 1e6:.2g}"
