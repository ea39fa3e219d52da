"""Reading image files: the only module that reads pixels from disk.

Files, PIL images and arrays all come back as a ``LoadedImage``: oriented, in sRGB,
with their alpha and their native precision, optionally downscaled while decoding.
Every way a file can be wrong ends as one ``LargestyleError`` line naming the file
as the user gave it, what is wrong with it and what to do.

What is read, and what is refused:

* Only regular files. A path is looked at (``stat``) before it is opened, and a
  directory, FIFO, device, socket, broken or looping link, or ``/dev/stdin`` on a
  pipe or terminal is refused by what it is. The file is then opened without
  blocking and its descriptor checked again, so a swap between the two cannot make
  a read hang; the decoders (Pillow, tifffile, libpng) are given only that open file
  or bytes read from it, never the path.
* Whole images only. A file that holds less than its header promises (cut short,
  PNG image data that stops early, TIFF strips or tiles missing or past the end of
  the file) is refused as truncated, never decoded into a partly grey or black image.
  One case gets through: a JPEG whose frame header promises more rows than its
  (complete) scan data holds decodes with grey rows, since libjpeg reports that
  only as a warning that Pillow does not pass on.
* Unsigned 8 and 16-bit samples are read as they are (TIFF samples of other widths
  up to 16 bits are scaled to the full 8 or 16-bit range).
* Floating-point samples (TIFF float16/32/64, Pillow mode F, float arrays) are taken
  as values in [0, 1]. Values outside it by at most ``FLOAT_TOLERANCE`` (rounding)
  are clipped; values further out are refused, naming the range found, and so are
  NaN and infinite values. Nothing is rescaled: a guessed scale would silently
  change the picture, so the user is asked to scale it.
* Signed, 24-bit or wider integer samples, complex samples and more than four
  channels are refused, saying which and how to convert the file. Pillow's 32-bit
  integer mode I is read as 16-bit when its values lie in 0-65535, else refused.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import stat
import struct
import warnings
import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Iterator

import imagecodecs
import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from .colour import to_float, to_srgb
from ..config.settings import RenderConfig
from ..core.errors import LargestyleError, brief
from ..geometry.pyramid import fit_long_side, resize

# Pillow's decompression-bomb guard is replaced by the --max-input-pixels check below,
# which reads only the header and tells the user which option to raise.
Image.MAX_IMAGE_PIXELS = None

MAX_INPUT_PIXELS = RenderConfig.max_input_pixels
# Float samples this far outside [0, 1] are rounding and are clipped; further out, refused.
FLOAT_TOLERANCE = 1e-3
_ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
                 5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                 8: "rotated 90 degrees anticlockwise"}
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", **dict.fromkeys(_TIFF_MAGIC, "TIFF"),
               b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}
# What the decoders raise on damaged data (imagecodecs' errors are RuntimeErrors,
# tifffile's are ValueErrors).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, zlib.error,
                  IndexError, KeyError)
# Bytes per row start (filter byte) and the Adam7 passes (x0, y0, dx, dy) of a PNG.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# What a path that is not a regular file is, in the user's terms.
_NOT_FILES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISCHR, "a character device (like /dev/null or a terminal)"),
              (stat.S_ISBLK, "a block device (a disk or partition)"), (stat.S_ISSOCK, "a UNIX socket"))
_ON_DESCRIPTOR = {stat.S_IFIFO: "a pipe", stat.S_IFCHR: "a terminal or character device", stat.S_IFSOCK: "a socket"}
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/(?:self|thread-self|\d+)|dev)/fd/(\d+)")
_STANDARD_STREAMS = {0: "standard input", 1: "standard output", 2: "standard error"}
# Terminal escape sequences and other control characters, kept out of messages.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class _Refused(Exception):
    """Pixels that cannot be used; the message says why ("it has ..."), the caller adds whose."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image. ``rgb`` is (3, H, W) float32 sRGB in [0, 1], not premultiplied;
    ``alpha`` is (1, H, W) or None; ``native_size`` is (width, height) after orientation,
    before any downscale on load; ``notes`` say what was done to the pixels."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    native_size: tuple[int, int]
    notes: tuple[str, ...]


@dataclass
class _Samples:
    """Decoded samples before colour management, in the file's stored orientation."""

    colour: np.ndarray                  # H x W x C: C = 1 grey, 3 RGB, 4 CMYK
    alpha: np.ndarray | None            # H x W x 1, same dtype as colour
    space: str                          # "gray", "rgb" or "cmyk"
    native: tuple[int, int]             # stored (width, height) before any reduction
    icc: bytes | None = None
    orientation: int = 1
    premultiplied: bool = False


def read_image(source, role: str = "input", *, max_pixels: int = MAX_INPUT_PIXELS,
               max_long_side: int | None = None) -> LoadedImage:
    """Decode ``source``: a path, a PIL image, or an H x W (x 1, 3 or 4) array.

    uint8 and uint16 arrays are scaled from their full range, float arrays are taken as
    [0, 1] (see the module's rule for floats); a fourth channel is alpha. Files larger
    than ``max_pixels`` are refused from their header. With ``max_long_side``, a larger
    image is downscaled to that long side while decoding, never held at full size as floats.
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            whose = f"cannot read {role} image {_shown(source)}"
            samples = _read_file(source, role, max_pixels, max_long_side)
        elif isinstance(source, Image.Image):
            whose = f"{role} image (a PIL image)"
            samples = _from_pil(source, max_long_side)
        elif isinstance(source, np.ndarray):
            whose = f"{role} image array"
            samples = _from_array(source, role)
        else:
            raise LargestyleError(
                f"{role} image must be a path, a PIL image or an array, not {type(source).__name__}")
        samples = _checked(samples)
    except _Refused as exc:
        raise LargestyleError(f"{whose}: {exc}") from None
    return _finish(samples, max_long_side)


def load_image(source, role: str = "input") -> torch.Tensor:
    """``read_image(source, role).rgb``: the colours as a (3, H, W) tensor, alpha dropped."""
    return read_image(source, role).rgb


def probe_size(path, role: str = "input", *, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[int, int]:
    """(width, height) after orientation, from the header alone (no pixels decoded)."""
    with _open(path, role, max_pixels) as file, _decoding(file.fail):
        return _oriented(file.stored_size, file.orientation)


def composite(image: LoadedImage, background: float = 1.0) -> torch.Tensor:
    """The colours laid over a uniform ``background`` (white by default) by alpha."""
    if image.alpha is None:
        return image.rgb
    return image.rgb * image.alpha + background * (1 - image.alpha)


# --- opening files ------------------------------------------------------------------

@dataclass
class _File:
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
        return _stored_size(self.image)

    @property
    def orientation(self) -> int:
        if self.image is not None:
            return _orientation(self.image)
        tag = self.page.tags.get(274)
        return tag.value if tag is not None and tag.value in _ORIENTATIONS else 1

    @property
    def icc(self) -> bytes | None:
        if self.image is not None:
            return self.image.info.get("icc_profile")
        return self.page.iccprofile


@contextmanager
def _open(source, role: str, max_pixels: int) -> Iterator[_File]:
    """The file opened, its header read, after the checks a user can act on."""
    name = _shown(source)
    fail = f"cannot read {role} image {name}"
    with ExitStack() as stack:
        stream = stack.enter_context(_open_regular(os.fsdecode(os.fspath(source)), name, role))
        # The decoders warn or log about what they find wrong ("Truncated File Read"); here
        # a file ends as its image or as one message, with nothing else printed on the way.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(_quiet_tifffile())
        with _decoding(fail):
            length = os.fstat(stream.fileno()).st_size
            head = stream.read(32)
        if not head:
            raise LargestyleError(f"{fail}: {_unidentified(head)}")
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            promised = struct.unpack_from("<I", head, 4)[0] + 8
            if length < promised:
                raise LargestyleError(_truncated(fail, f"it holds {length} of the {promised} bytes its header gives"))
        page = tiff_problem = None
        if head[:4] in _TIFF_MAGIC:
            stream.seek(0)  # tifffile takes a file's position when opened as where the TIFF starts
            try:
                page = stack.enter_context(tifffile.TiffFile(stream)).pages.first
            except (*_DECODE_ERRORS, TypeError) as exc:
                tiff_problem = brief(exc)
        stream.seek(0)
        try:
            image = Image.open(stream)
        except PermissionError:
            raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
        except UnidentifiedImageError:
            if page is None:
                raise LargestyleError(f"{fail}: {_unidentified(head)}") from None
            image = None  # a TIFF that only tifffile reads (float, or a layout Pillow lacks)
        except _DECODE_ERRORS as exc:
            if page is None:
                kind = _kind(head)
                raise LargestyleError(f"{fail}: the {kind + ' ' if kind else ''}header is damaged or the file is "
                                      f"truncated ({brief(exc)}); re-export or re-download it") from None
            image = None
        if image is not None:
            stack.callback(image.close)
        file = _File(name, fail, stream, length, head, image, page, tiff_problem)
        if page is not None:
            refusal = _tiff_refusal(page)
            if refusal:
                raise LargestyleError(f"{fail}: {refusal}")
        width, height = file.stored_size
        if width * height == 0:
            raise LargestyleError(f"{fail}: it has zero width or height ({width}x{height}); re-export it")
        if width * height > max_pixels:
            raise LargestyleError(
                f"{fail}: it is {width}x{height} px ({_megapixels(width * height)} megapixels), more than "
                f"--max-input-pixels {max_pixels}; raise --max-input-pixels if you mean it")
        yield file


@contextmanager
def _open_regular(path: str, name: str, role: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; anything else refused by what it is.

    Never blocks: the path is looked at before it is opened, opened with O_NONBLOCK (a FIFO
    or device swapped in meanwhile opens at once) and the opened descriptor checked again.
    """
    fail = f"cannot read {role} image {name}"
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
    fail = f"cannot read {role} image {name}"
    code = exc.errno
    if code == errno.ENOENT:
        stream = _descriptor(path)
        if stream:
            return f"{fail}: it is {stream}, which is closed; save the image to a file and give that file's path"
        target = _link_target(path)
        if target is not None:
            return (f"{fail}: it is a symbolic link to {_shown(target)}, which does not exist; "
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
                return f"{_shown(parent)} is a file, not a folder, so nothing is inside it"
        except OSError:
            break
    return "a part of the path is a file, not a folder"


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


def _kind(head: bytes) -> str | None:
    return next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)


def _unidentified(head: bytes) -> str:
    """Why Pillow could not recognise a file whose first bytes are ``head``."""
    if not head:
        return "it is an empty file (0 bytes), not an image file; re-export or re-download it"
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if width * height == 0:
            return f"it has zero width or height ({width}x{height}); re-export it"
    kind = _kind(head)
    if kind:
        return f"the {kind} header is damaged or the file is truncated; re-export or re-download it"
    return "not an image file (or a format Pillow cannot read); use PNG, JPEG or TIFF"


@contextmanager
def _decoding(fail: str):
    """Decoder failures as one line naming the file."""
    try:
        yield
    except PermissionError:
        raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
    except MemoryError:
        raise LargestyleError(f"{fail}: not enough memory to decode it; use a smaller image") from None
    except _DECODE_ERRORS as exc:
        raise LargestyleError(_truncated(fail, brief(exc))) from None


def _truncated(fail: str, detail: str) -> str:
    return f"{fail}: the file is corrupt or truncated ({detail}); re-export or re-download it"


def _shown(path) -> str:
    """``path`` as the user gave it, with characters that would break the line (or the terminal) escaped."""
    text = os.fsdecode(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not text in the file system's encoding
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.0f}" if pixels >= 10**7 else f"{pixels / 1e6:.2g}"


def _orientation(image: Image.Image) -> int:
    """The EXIF (or TIFF) orientation tag, 1 when absent or unreadable."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # a late eXIf chunk is only found by decoding the whole image
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # damaged EXIF is common and must not stop the image from loading
        return 1
    return value if value in _ORIENTATIONS else 1


def _stored_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as stored; recent Pillow reports a TIFF's size already turned by its orientation."""
    if image.format == "TIFF":
        return image.tag_v2[256], image.tag_v2[257]  # ImageWidth, ImageLength
    return image.size


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


# --- whole files only -----------------------------------------------------------------

def _incomplete(file: _File) -> str | None:
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
    if head[:4] in _TIFF_MAGIC:
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

    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
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


# --- decoding -----------------------------------------------------------------------

def _read_file(source, role: str, max_pixels: int, max_long_side: int | None) -> _Samples:
    with _open(source, role, max_pixels) as file, _decoding(file.fail):
        problem = _incomplete(file)
        if problem:
            raise LargestyleError(_truncated(file.fail, problem))
        if file.page is not None:
            samples = _read_tiff(file)
            if samples is not None:
                return samples
        image = file.image
        if image is None:
            raise LargestyleError(f"{file.fail}: it is a TIFF layout this program cannot read "
                                  f"({str(getattr(file.page.photometric, 'name', file.page.photometric)).lower()} with "
                                  f"{file.page.dtype} samples); "
                                  "save it as an 8 or 16-bit RGB TIFF or PNG")
        native = file.stored_size
        if image.format == "PNG" and _png_bit_depth(image) == 16:
            return _read_png16(file)
        factor = _reduction(native, max_long_side)
        if factor > 1 and image.format == "JPEG":  # libjpeg decodes at 1/2, 1/4 or 1/8 scale, no smaller than asked
            image.draft(image.mode, (math.ceil(native[0] / factor), math.ceil(native[1] / factor)))
        return _from_pil(image, max_long_side, native)


def _from_pil(image: Image.Image, max_long_side: int | None, native: tuple[int, int] | None = None) -> _Samples:
    """Pillow decoding, reduced by an integer factor (Image.reduce) when a smaller image is wanted."""
    native = native or image.size
    image.load()
    if image.format == "TIFF":  # recent Pillow applies (and then drops) the orientation tag while loading
        native = image.size
    orientation, icc = _orientation(image), image.info.get("icc_profile")
    image = _plain_mode(image)
    factor = _reduction(image.size, max_long_side)
    if factor > 1 and image.mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        image = image.reduce(factor)
    if image.mode.startswith("I;16"):
        pixels = np.asarray(image).astype(np.uint16)
    elif image.mode == "I":
        pixels = np.asarray(image)
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 65535:
            raise _Refused(f"it has 32-bit integer samples from {low} to {high}, beyond what 16 bits hold; "
                           "convert it to 8 or 16 bits per channel")
        pixels = pixels.astype(np.uint16)
    else:
        pixels = np.asarray(image)
    space = {"RGB": "rgb", "RGBA": "rgb", "CMYK": "cmyk"}.get(image.mode, "gray")
    return _split_alpha(pixels, space, image.mode in ("LA", "RGBA"), native, icc, orientation)


def _plain_mode(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA, CMYK, I;16*, I, F; transparency becomes alpha."""
    mode, transparent = image.mode, "transparency" in image.info
    if mode in ("P", "PA"):
        has_alpha = transparent or mode == "PA" or (image.palette is not None and image.palette.mode == "RGBA")
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("L", "RGB") and transparent:
        return image.convert(mode + "A")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F") or mode.startswith("I;16"):
        return image
    conversions = {"1": "L", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB"}
    return image.convert(conversions.get(mode, "RGB"))


def _png_bit_depth(image: Image.Image) -> int:
    """Bits per sample from the PNG header's tile (Pillow decodes 16-bit colour as 8-bit)."""
    rawmode = image.tile[0].args if image.tile else ""
    rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
    return 16 if isinstance(rawmode, str) and rawmode.endswith("16B") else 8


def _read_png16(file: _File) -> _Samples:
    image = file.image
    file.stream.seek(0)
    pixels = imagecodecs.png_decode(file.stream.read())
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = pixels.shape[2]
    key = image.info.get("transparency")
    if channels in (1, 3) and key is not None:  # tRNS: one colour stands for transparent
        key = np.asarray(key, np.uint16).reshape(-1)
        opaque = np.any(pixels != key, axis=2, keepdims=True)
        pixels = np.concatenate([pixels, opaque.astype(np.uint16) * 65535], axis=2)
        channels += 1
    return _split_alpha(pixels, "rgb" if channels >= 3 else "gray", channels in (2, 4), image.size,
                        file.icc, file.orientation)


def _tiff_refusal(page: tifffile.TiffPage) -> str | None:
    """Why a TIFF's samples cannot be used (the real reason, from its header), or None."""
    bits, channels = page.bitspersample, page.samplesperpixel
    if channels > 4:
        return f"it has {channels} channels per pixel; save it as grey, RGB, RGBA or CMYK (at most 4 channels)"
    dtype = page.dtype
    if dtype is None:
        return f"it has {bits}-bit samples of a kind this program cannot read; convert it to 8 or 16 bits per channel"
    if dtype.kind == "c":
        return "it has complex-valued samples; convert it to an ordinary 8 or 16-bit image"
    if dtype.kind == "i":
        return f"it has {bits}-bit signed integer samples; convert it to 8 or 16 bits per channel"
    if dtype.kind == "u" and bits > 16:
        return f"it has {bits}-bit unsigned integer samples; convert it to 8 or 16 bits per channel"
    return None


def _read_tiff(file: _File) -> _Samples | None:
    """Decoding with tifffile (16-bit and float samples); None for layouts left to Pillow.

    Orientation and ICC profile come from Pillow when it reads the file (the same tags, 274, 34675).
    """
    page = file.page
    photometric = tifffile.PHOTOMETRIC
    colours = {photometric.MINISWHITE: 1, photometric.MINISBLACK: 1, photometric.PALETTE: 1,
               photometric.RGB: 3, photometric.SEPARATED: 4}
    kind = page.photometric
    if kind not in colours or page.dtype.kind not in "uf" or page.axes not in ("YX", "YXS", "SYX"):
        return None
    pixels = page.asarray()
    colormap = page.colormap if kind == photometric.PALETTE else None
    extras = tuple(page.extrasamples)
    pixels = np.moveaxis(pixels, 0, -1) if page.axes == "SYX" else pixels
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    count = colours[kind]
    if pixels.shape[2] < count:
        return None
    if colormap is None:
        pixels = _full_range(pixels, page.bitspersample)
    colour, extra = pixels[..., :count], pixels[..., count:count + 1]
    has_alpha = extra.shape[2] == 1 and bool(extras) and extras[0] in (1, 2)  # associated, unassociated
    if kind == photometric.MINISWHITE:
        colour = 1 - colour if colour.dtype.kind == "f" else np.iinfo(colour.dtype).max - colour
    if colormap is not None:
        if has_alpha:
            return None
        colour = colormap.T[colour[..., 0]]
        if not np.any(colormap % 257):  # an 8-bit palette written as 16-bit entries
            colour = (colour // 257).astype(np.uint8)
    space = {1: "gray", 3: "rgb", 4: "cmyk"}[count]
    return _Samples(colour, extra if has_alpha else None, space, file.stored_size, file.icc,
                    file.orientation, premultiplied=has_alpha and extras[0] == 1)


def _full_range(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned samples of fewer bits than their type holds (4, 12 ...) scaled to its full range."""
    if pixels.dtype.kind != "u" or bits >= 8 * pixels.dtype.itemsize:
        return pixels
    top, full = (1 << bits) - 1, np.iinfo(pixels.dtype).max
    return ((pixels.astype(np.uint32) * full + top // 2) // top).astype(pixels.dtype)


def _from_array(array: np.ndarray, role: str) -> _Samples:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise LargestyleError(f"{role} image array must be H x W, H x W x 3 or H x W x 4; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) and array.dtype not in (np.uint8, np.uint16):
        raise LargestyleError(f"{role} image array has unsupported dtype {array.dtype} (use uint8, uint16 or float)")
    space = "gray" if array.shape[2] == 1 else "rgb"
    return _split_alpha(array, space, array.shape[2] == 4, (array.shape[1], array.shape[0]))


def _split_alpha(pixels: np.ndarray, space: str, has_alpha: bool, native: tuple[int, int],
                 icc: bytes | None = None, orientation: int = 1) -> _Samples:
    """Samples whose last channel is alpha when ``has_alpha``."""
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    if has_alpha:
        return _Samples(pixels[..., :-1], pixels[..., -1:], space, native, icc, orientation)
    return _Samples(pixels, None, space, native, icc, orientation)


def _checked(samples: _Samples) -> _Samples:
    """Float samples as float32 in [0, 1] by the module's rule; integer samples untouched."""
    colour, alpha = _checked_floats(samples.colour), samples.alpha
    alpha = None if alpha is None else _checked_floats(alpha)
    if colour is samples.colour and alpha is samples.alpha:
        return samples
    return replace(samples, colour=colour, alpha=alpha)


def _checked_floats(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f":
        return values
    values = values.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore"):
        low, high = float(values.min()), float(values.max())  # NaN, if any, comes through both
    if math.isnan(low) or math.isnan(high):
        raise _Refused("it has NaN (not-a-number) values; float images must hold numbers from 0 to 1")
    if math.isinf(low) or math.isinf(high):
        raise _Refused("it has infinite values; float images must hold numbers from 0 to 1")
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        raise _Refused(f"it has float values from {low:.6g} to {high:.6g}; float images must hold values "
                       "from 0 to 1: scale it to that range first")
    return np.clip(values, 0, 1) if low < 0 or high > 1 else values  # a copy: the caller's array is kept


# --- orientation, downscale, colour -------------------------------------------------

def _finish(samples: _Samples, max_long_side: int | None) -> LoadedImage:
    notes: list[str] = []
    width, height = _oriented(samples.native, samples.orientation)
    factor = _reduction(samples.colour.shape[1::-1], max_long_side)
    colour, alpha = samples.colour, samples.alpha
    if factor > 1:
        colour = _box_reduce(colour, factor)
        alpha = None if alpha is None else _box_reduce(alpha, factor)
    if samples.orientation != 1:
        colour, alpha = _orient(colour, samples.orientation), _orient(alpha, samples.orientation)
        notes.append(f"EXIF orientation applied ({_ORIENTATIONS[samples.orientation]})")
    if samples.premultiplied:
        colour = _unpremultiply(colour, alpha)
        notes.append("premultiplied alpha undone")
    rgb = torch.from_numpy(to_srgb(colour, samples.space, samples.icc, notes))
    alpha_t = None if alpha is None else torch.from_numpy(np.ascontiguousarray(to_float(alpha[..., 0])))[None]
    if max_long_side is not None and max(width, height) > max_long_side:
        shape = fit_long_side(height, width, max_long_side)
        stacked = rgb if alpha_t is None else torch.cat([rgb, alpha_t])
        stacked = resize(stacked[None], shape)[0]
        rgb, alpha_t = stacked[:3].contiguous(), None if alpha_t is None else stacked[3:].contiguous()
        notes.append(f"downscaled on load from {width}x{height} to {shape[1]}x{shape[0]}")
    depth = 8 if samples.colour.dtype == np.uint8 else 16
    return LoadedImage(rgb, alpha_t, depth, (width, height), tuple(notes))


def _reduction(size, max_long_side: int | None) -> int:
    """Largest integer factor that keeps the long side at or above ``max_long_side``."""
    return max(1, max(size) // max_long_side) if max_long_side else 1


def _box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Mean of factor x factor blocks (partial blocks at the edges), in float32 a band at a time."""
    height, width = pixels.shape[:2]
    out = np.empty((-(-height // factor), -(-width // factor), pixels.shape[2]), pixels.dtype)
    band = factor * max(1, (1 << 22) // (factor * factor * width * pixels.shape[2]))
    for top in range(0, height, band):
        block = _block_mean(_block_mean(pixels[top:top + band].astype(np.float32), factor, 0), factor, 1)
        if pixels.dtype.kind == "u":
            block = np.rint(block)
        out[top // factor:top // factor + block.shape[0]] = block
    return out


def _block_mean(values: np.ndarray, factor: int, axis: int) -> np.ndarray:
    values = np.moveaxis(values, axis, 0)
    whole = values.shape[0] // factor * factor
    parts = [values[:whole].reshape(whole // factor, factor, *values.shape[1:]).mean(axis=1)]
    if whole < values.shape[0]:
        parts.append(values[whole:].mean(axis=0, keepdims=True))
    return np.moveaxis(np.concatenate(parts), 0, axis)


def _orient(pixels: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """EXIF orientation 1-8 applied to an H x W x C array (a view; no copy)."""
    if pixels is None:
        return None
    if orientation in (2, 3, 4):
        return pixels[::-1 if orientation != 2 else 1, ::-1 if orientation != 4 else 1]
    flips = {5: (1, 1), 6: (1, -1), 7: (-1, -1), 8: (-1, 1)}[orientation]
    return pixels.swapaxes(0, 1)[::flips[0], ::flips[1]]


def _unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    if colour.dtype.kind == "f":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(np.where(alpha > 0, colour / alpha, 0), 0, 1).astype(np.float32)
    top = np.iinfo(colour.dtype).max
    straight = colour.astype(np.float32) * np.float32(top) / np.maximum(alpha, 1).astype(np.float32)
    return np.clip(np.rint(straight), 0, top).astype(colour.dtype)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image; (4, H, W) gives RGBA."""
    array = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")
