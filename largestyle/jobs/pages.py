"""HTML building blocks shared by a job's report and a batch's index page: escaping, tables, thumbnails."""

from __future__ import annotations

import html
import io
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageOps

from ..core.atomic import write_bytes
from ..core.units import format_duration

_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

CSS = """body{font:14px/1.45 sans-serif;color:#222;max-width:1100px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;height:auto;border:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
figure{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.3em 1em}
.bad{color:#a00}.muted{color:#777}code{font-size:.95em}"""


def thumbnail(source: Path, dest: Path, size: int) -> tuple[int, int] | None:
    """Write ``dest``, a JPEG of ``source`` at most ``size`` px on its long side.

    Returns the source's size, or None when it cannot be read as an image. An existing
    ``dest`` newer than ``source`` is kept: reports are rewritten while a render runs,
    and decoding a print-sized level each time would be slow.
    """
    try:
        with Image.open(source) as image:
            full = image.size
            if dest.is_file() and dest.stat().st_mtime >= source.stat().st_mtime:
                return full
            image.thumbnail((size, size))
            small = _rgb(ImageOps.exif_transpose(image))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=85)
    except _UNREADABLE:
        return None
    write_bytes(dest, buffer.getvalue())
    return full


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I"):  # 16-bit greyscale: convert() would clip it rather than scale it
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) / 257, 0, 255).astype(np.uint8))
    return image.convert("RGB")


def relative(path: Path, start: Path) -> str | None:
    """``path`` relative to ``start`` in URL form, or None where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return None


def href(relative: str) -> str:
    return html.escape(quote(relative))


def esc(value) -> str:
    return html.escape(str(value))


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """An html table; ``rows`` are (row attributes, cells of already escaped html); no header row if empty."""
    head = "<tr>" + "".join(f"<th>{esc(cell)}</th>" for cell in header) + "</tr>\n" if header else ""
    body = "".join(f"<tr{' ' + attrs if attrs else ''}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n"
                   for attrs, cells in rows)
    return f"<table>\n{head}{body}</table>"


def page(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f"<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n").encode("utf-8")
