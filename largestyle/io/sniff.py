"""Recognising an image file by its first bytes, and saying why one was not recognised."""

from __future__ import annotations

import struct

TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", **dict.fromkeys(TIFF_MAGIC, "TIFF"),
               b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}


def kind(head: bytes) -> str | None:
    """The format ("PNG", "TIFF" ...) whose signature ``head`` starts with, or None."""
    return next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)


def unidentified(head: bytes) -> str:
    """Why Pillow could not recognise a file whose first bytes are ``head``."""
    if not head:
        return "it is an empty file (0 bytes), not an image file; re-export or re-download it"
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if width * height == 0:
            return f"it has zero width or height ({width}x{height}); re-export it"
    found = kind(head)
    if found:
        return f"the {found} header is damaged or the file is truncated; re-export or re-download it"
    return "not an image file (or a format Pillow cannot read); use PNG, JPEG or TIFF"
