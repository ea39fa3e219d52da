"""Whole images only: whether a file holds everything its header promises.

A file that holds less (cut short, PNG image data that stops early, a GIF without its
trailer, TIFF strips or tiles missing or past the end of the file) is refused as
truncated, never decoded into a partly grey or black image. One case gets through: a
JPEG whose frame header promises more rows than its (complete) scan data holds decodes
with grey rows, since libjpeg reports that only as a warning that Pillow does not pass on.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import tifffile

from .sniff import TIFF_MAGIC
from ..core.errors import brief

if TYPE_CHECKING:
    from .opening import File

# Bytes per row start (filter byte) and the Adam7 passes (x0, y0, dx, dy) of a PNG.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def webp_problem(head: bytes, length: int) -> str | None:
    """Why a WebP file is shorter than its RIFF header says, or None (from the first bytes alone)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        promised = struct.unpack_from("<I", head, 4)[0] + 8
        if length < promised:
            return f"it holds {length} of the {promised} bytes its header gives"
    return None


def incomplete(file: File) -> str | None:
    """Why the file holds less than its header promises, or None.

    Pillow refuses most cut files itself but takes a PNG whose image data stops early
    (the rest comes out black) or that lacks its last bytes, and a GIF without its
    trailer; tifffile fills strips and tiles that are missing or past the end with zeros.
    """
    head = file.head
    if head.startswith(b"\x89PNG"):
        return _png_problem(file.stream, file.length, rows=len(head) > 24 and head[24] != 16)
    if head.startswith(b"GIF8"):
        return _gif_problem(file.stream, file.length)
    if head[:4] in TIFF_MAGIC:
        return file.tiff_problem or _tiff_problem(file.page, file.length)
    return None


def _png_problem(stream: BinaryIO, length: int, rows: bool) -> str | None:
    """Chunks walked to IEND; with ``rows``, the image data inflated to count what it holds."""
    position, header, data = 8, b"", []
    while True:
        if position + 12 > length:
            return "it ends early, without its IEND chunk"
        stream.seek(position)
        size, kind = struct.unpack(">I4s", stream.read(8))
        end = position + 12 + size
        if end > length:
            return "it ends inside its image data" if kind == b"IDAT" else "it ends inside a chunk"
        if kind == b"IHDR":
            header = stream.read(13)
        elif kind == b"IDAT":
            data.append((position + 8, size))
        elif kind == b"IEND":
            break
        position = end
    if rows and len(header) == 13:
        return _png_rows_problem(stream, header, data)
    return None


def _png_rows_problem(stream: BinaryIO, header: bytes, data: list[tuple[int, int]]) -> str | None:
    """Whether the IDAT data inflates to every row the IHDR promises (Pillow stops silently)."""
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour_type not in _PNG_CHANNELS:
        return None
    bits = depth * _PNG_CHANNELS[colour_type]

    def raw(w: int, h: int) -> int:  # a filter byte then the packed samples, per row
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    needed = sum(raw(-(-(width - x) // dx), -(-(height - y) // dy)) for x, y, dx, dy in passes)
    inflater, produced = zlib.decompressobj(), 0
    try:
        for offset, size in data:
            stream.seek(offset)
            while size > 0 and produced < needed:
                block = stream.read(min(size, 1 << 20))
                if not block:
                    break
                size -= len(block)
                produced += len(inflater.decompress(block, 1 << 22))
                while inflater.unconsumed_tail and produced < needed:
                    produced += len(inflater.decompress(inflater.unconsumed_tail, 1 << 22))
    except zlib.error as exc:
        if produced < needed:
            return f"its image data is damaged ({brief(exc)})"
    if produced >= needed:
        return None
    if interlace:
        return "its image data stops before the end of the image"
    return f"its image data holds {produced // raw(width, 1)} of the {height} rows its header promises"


def _gif_problem(stream: BinaryIO, length: int) -> str | None:
    """Blocks walked to the GIF trailer (Pillow reads only as far as the first image)."""
    def byte(position: int) -> int:
        stream.seek(position)
        value = stream.read(1)
        return value[0] if value else -1

    def skip_sub_blocks(position: int) -> int:
        while position < length:
            size = byte(position)
            position += 1 + max(size, 0)
            if size == 0:
                break
        return position

    flags = byte(10)
    position = 13 + (3 << ((flags & 7) + 1) if flags > 0 and flags & 0x80 else 0)
    while position < length:
        block = byte(position)
        if block == 0x3B:  # trailer
            return None
        if block == 0x21:  # extension: label, then sub-blocks
            position = skip_sub_blocks(position + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            flags = byte(position + 9)
            table = 3 << ((flags & 7) + 1) if flags > 0 and flags & 0x80 else 0
            position = skip_sub_blocks(position + 10 + table + 1)
        else:  # stray byte, skipped as Pillow does
            position += 1
    return "it ends early, without the GIF trailer"


def _tiff_problem(page: tifffile.TiffPage, length: int) -> str | None:
    """Strips or tiles that are missing, past the end of the file, or (uncompressed) too short."""
    segment = "tile" if page.is_tiled else "strip"
    expected = math.prod(page.chunked)
    offsets = np.asarray(page.dataoffsets, np.int64)
    counts = np.asarray(page.databytecounts, np.int64)
    if len(offsets) != expected or len(counts) != expected:
        return f"its {segment} table is damaged: it lists {min(len(offsets), len(counts))} of {expected} {segment}s"
    empty = int(np.count_nonzero(counts <= 0))
    if empty:
        return f"{empty} of its {expected} {segment}s {'holds' if empty == 1 else 'hold'} no data"
    end = int((offsets + counts).max(initial=0))
    if end > length:
        return f"its image data runs past the end of the file, to byte {end} of {length}"
    if page.compression == 1 and page.imagedepth == 1:
        needed = _uncompressed_sizes(page, expected)
        short = 0 if needed is None else int(np.count_nonzero(counts < needed))
        if short:
            return (f"{short} of its {expected} {segment}s {'holds' if short == 1 else 'hold'} "
                    "fewer bytes than its pixels need")
    return None


def _uncompressed_sizes(page: tifffile.TiffPage, count: int) -> np.ndarray | None:
    """The bytes each uncompressed strip or tile needs."""
    samples = page.samplesperpixel if page.planarconfig == 1 else 1

    def row_bytes(width: int) -> int:
        return (width * samples * page.bitspersample + 7) // 8

    if page.is_tiled:
        return np.full(count, page.tilelength * row_bytes(page.tilewidth), np.int64)
    height = page.imagelength
    rows = min(page.rowsperstrip or height, height)
    per_plane = -(-height // rows)
    if count % per_plane:
        return None
    strips = np.full(per_plane, rows, np.int64)
    strips[-1] = height - rows * (per_plane - 1)
    return np.tile(strips * row_bytes(page.imagewidth), count // per_plane)
