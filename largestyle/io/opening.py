"""Opening an image file and reading its header: the checks a user can act on, before any pixel is decoded.

The decoders (Pillow, tifffile) are given only the open file, never the path. A file
whose header cannot be read, whose samples are of a kind never read, or that has no
pixels or more than ``--max-input-pixels`` is refused here, from its header alone.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import tifffile
from PIL import Image, UnidentifiedImageError

from .messages import DECODE_ERRORS, cannot_read, decoding, megapixels, shown, truncated
from .modes import tiff_refusal
from .orientation import ORIENTATIONS, orientation_of, stored_size_of
from .paths import open_regular
from .sniff import TIFF_MAGIC, kind, unidentified
from .truncation import webp_problem
from ..core.errors import LargestyleError, brief

# Pillow's decompression-bomb guard is replaced by the --max-input-pixels check below,
# which reads only the header and tells the user which option to raise.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class File:
    """An opened regular file with its header as Pillow (and, for a TIFF, tifffile) read it."""

    name: str                           # the path as the user gave it, printable
    fail: str                           # "cannot read <role> image <name>", to start messages
    stream: BinaryIO
    length: int                         # bytes
    head: bytes                         # the first 32 bytes
    image: Image.Image | None           # Pillow's lazy open; None for a TIFF only tifffile reads
    page: tifffile.TiffPage | None = None   # a TIFF's first page, as tifffile reads it
    tiff_problem: str | None = None     # why tifffile could not read a TIFF's header

    @property
    def stored_size(self) -> tuple[int, int]:
        if self.page is not None:
            return self.page.imagewidth, self.page.imagelength
        return stored_size_of(self.image)

    @property
    def orientation(self) -> int:
        if self.image is not None:
            return orientation_of(self.image)
        tag = self.page.tags.get(274)
        return tag.value if tag is not None and tag.value in ORIENTATIONS else 1

    @property
    def icc(self) -> bytes | None:
        if self.image is not None:
            return self.image.info.get("icc_profile")
        return self.page.iccprofile


@contextmanager
def open_file(source, role: str, max_pixels: int) -> Iterator[File]:
    """The file opened, its header read, after the checks a user can act on."""
    name = shown(source)
    fail = cannot_read(role, name)
    with ExitStack() as stack:
        stream = stack.enter_context(open_regular(os.fsdecode(os.fspath(source)), name, role))
        # The decoders warn or log about what they find wrong ("Truncated File Read"); here
        # a file ends as its image or as one message, with nothing else printed on the way.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(_quiet_tifffile())
        with decoding(fail):
            length = os.fstat(stream.fileno()).st_size
            head = stream.read(32)
        if not head:
            raise LargestyleError(f"{fail}: {unidentified(head)}")
        problem = webp_problem(head, length)
        if problem:
            raise LargestyleError(truncated(fail, problem))
        page = tiff_problem = None
        if head[:4] in TIFF_MAGIC:
            stream.seek(0)  # tifffile takes a file's position when opened as where the TIFF starts
            try:
                page = stack.enter_context(tifffile.TiffFile(stream)).pages.first
            except (*DECODE_ERRORS, TypeError) as exc:
                tiff_problem = brief(exc)
        stream.seek(0)
        image = _pillow_open(stream, head, page is not None, fail)
        if image is not None:
            stack.callback(image.close)
        file = File(name, fail, stream, length, head, image, page, tiff_problem)
        refusal = _header_refusal(file, max_pixels)
        if refusal:
            raise LargestyleError(f"{fail}: {refusal}")
        yield file


def _pillow_open(stream: BinaryIO, head: bytes, is_tiff: bool, fail: str) -> Image.Image | None:
    """Pillow's lazy open of the file; None for a TIFF (``is_tiff``: tifffile read its header) Pillow cannot."""
    try:
        return Image.open(stream)
    except PermissionError:
        raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
    except UnidentifiedImageError:
        if not is_tiff:
            raise LargestyleError(f"{fail}: {unidentified(head)}") from None
        return None  # a TIFF that only tifffile reads (float, or a layout Pillow lacks)
    except DECODE_ERRORS as exc:
        if not is_tiff:
            found = kind(head)
            raise LargestyleError(f"{fail}: the {found + ' ' if found else ''}header is damaged or the file is "
                                  f"truncated ({brief(exc)}); re-export or re-download it") from None
        return None


def _header_refusal(file: File, max_pixels: int) -> str | None:
    """Why the header alone rules the file out (samples never read, no pixels, too many), or None."""
    if file.page is not None:
        refusal = tiff_refusal(file.page)
        if refusal:
            return refusal
    width, height = file.stored_size
    if width * height == 0:
        return f"it has zero width or height ({width}x{height}); re-export it"
    if width * height > max_pixels:
        return (f"it is {width}x{height} px ({megapixels(width * height)} megapixels), more than "
                f"--max-input-pixels {max_pixels}; raise --max-input-pixels if you mean it")
    return None


@contextmanager
def _quiet_tifffile():
    """tifffile logs what it finds wrong in a file to stderr when nothing else handles its log."""
    logger = logging.getLogger("tifffile")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was
