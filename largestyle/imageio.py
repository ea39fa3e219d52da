"""Reading image files: the only module that reads pixels from disk.

Files, PIL images and arrays all come back as a ``LoadedImage``: oriented, in sRGB,
with their alpha and their native precision, optionally downscaled while decoding.
Every way a file can be wrong ends as one ``LargestyleError`` line naming the file.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from .colour import to_float, to_srgb
from .config import RenderConfig
from .errors import LargestyleError
from .pyramid import fit_long_side, resize

# Pillow's decompression-bomb guard is replaced by the --max-input-pixels check below,
# which reads only the header and tells the user which option to raise.
Image.MAX_IMAGE_PIXELS = None

MAX_INPUT_PIXELS = RenderConfig.max_input_pixels
_ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
                 5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                 8: "rotated 90 degrees anticlockwise"}
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\0": "TIFF", b"MM\0*": "TIFF",
               b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}
# What the decoders raise on damaged data (imagecodecs' errors are RuntimeErrors,
# tifffile's are ValueErrors).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, zlib.error,
                  IndexError, KeyError)


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
    [0, 1]; a fourth channel is alpha. Files larger than ``max_pixels`` are refused
    from their header. With ``max_long_side``, a larger image is downscaled to that
    long side while decoding, never held at full size as floats.
    """
    if isinstance(source, (str, os.PathLike)):
        samples = _read_file(Path(source), role, max_pixels, max_long_side)
    elif isinstance(source, Image.Image):
        samples = _from_pil(source, max_long_side)
    elif isinstance(source, np.ndarray):
        samples = _from_array(source, role)
    else:
        raise LargestyleError(f"{role} image must be a path, a PIL image or an array, not {type(source).__name__}")
    return _finish(samples, max_long_side)


def load_image(source, role: str = "input") -> torch.Tensor:
    """``read_image(source, role).rgb``: the colours as a (3, H, W) tensor, alpha dropped."""
    return read_image(source, role).rgb


def probe_size(path, role: str = "input", *, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[int, int]:
    """(width, height) after orientation, from the header alone (no pixels decoded)."""
    path = Path(path)
    with _open(path, role, max_pixels) as image, _decoding(path, role):
        return _oriented(_stored_size(image), _orientation(image))


def composite(image: LoadedImage, background: float = 1.0) -> torch.Tensor:
    """The colours laid over a uniform ``background`` (white by default) by alpha."""
    if image.alpha is None:
        return image.rgb
    return image.rgb * image.alpha + background * (1 - image.alpha)


# --- opening files ------------------------------------------------------------------

def _open(path: Path, role: str, max_pixels: int) -> Image.Image:
    """Pillow's lazy open (header only) after the checks a user can act on."""
    if not path.exists():
        raise LargestyleError(f"{role} image not found: {path}")
    fail = f"cannot read {role} image {path}"
    if path.is_dir():
        raise LargestyleError(f"{fail}: it is a directory, not an image file")
    try:
        with open(path, "rb") as stream:
            head = stream.read(32)
        image = Image.open(path)
    except PermissionError:
        raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
    except UnidentifiedImageError:
        raise LargestyleError(f"{fail}: {_unidentified(head)}") from None
    except _DECODE_ERRORS as exc:
        raise LargestyleError(f"{fail}: the header is damaged ({_reason(exc)}); re-export or re-download it") from None
    width, height = image.size
    if width * height == 0:
        image.close()
        raise LargestyleError(f"{fail}: it has zero width or height ({width}x{height}); re-export it")
    if width * height > max_pixels:
        image.close()
        raise LargestyleError(
            f"{fail}: it is {width}x{height} px ({_megapixels(width * height)} megapixels), more than "
            f"--max-input-pixels {max_pixels}; raise --max-input-pixels if you mean it")
    return image


def _unidentified(head: bytes) -> str:
    """Why Pillow could not recognise a file whose first bytes are ``head``."""
    if not head:
        return "it is an empty file (0 bytes), not an image file; re-export or re-download it"
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if width * height == 0:
            return f"it has zero width or height ({width}x{height}); re-export it"
    kind = next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)
    if kind:
        return f"the {kind} header is damaged; re-export or re-download it"
    return "not an image file (or a format Pillow cannot read); use PNG, JPEG or TIFF"


@contextmanager
def _decoding(path: Path, role: str):
    """Decoder failures as one line naming the file."""
    fail = f"cannot read {role} image {path}"
    try:
        yield
    except PermissionError:
        raise LargestyleError(f"{fail}: permission denied; check the file's permissions") from None
    except MemoryError:
        raise LargestyleError(f"{fail}: not enough memory to decode it; use a smaller image") from None
    except _DECODE_ERRORS as exc:
        raise LargestyleError(
            f"{fail}: the file is corrupt or truncated ({_reason(exc)}); re-export or re-download it") from None


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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


# --- decoding -----------------------------------------------------------------------

def _read_file(path: Path, role: str, max_pixels: int, max_long_side: int | None) -> _Samples:
    with _open(path, role, max_pixels) as image, _decoding(path, role):
        native = _stored_size(image)
        if image.format == "TIFF":
            samples = _read_tiff(path, image)
            if samples is not None:
                return samples
        if image.format == "PNG" and _png_bit_depth(image) == 16:
            return _read_png16(path, image)
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
        pixels = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
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


def _read_png16(path: Path, image: Image.Image) -> _Samples:
    pixels = imagecodecs.png_decode(path.read_bytes())
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
                        image.info.get("icc_profile"), _orientation(image))


def _read_tiff(path: Path, image: Image.Image) -> _Samples | None:
    """16-bit-capable TIFF decoding; None for layouts left to Pillow.

    Orientation and ICC profile come from Pillow, which reads the same tags (274, 34675).
    """
    photometric = tifffile.PHOTOMETRIC
    colours = {photometric.MINISWHITE: 1, photometric.MINISBLACK: 1, photometric.PALETTE: 1,
               photometric.RGB: 3, photometric.SEPARATED: 4}
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages.first
        kind = page.photometric
        if kind not in colours or page.dtype not in (np.uint8, np.uint16) or page.axes not in ("YX", "YXS", "SYX"):
            return None
        pixels = page.asarray()
        colormap = page.colormap if kind == photometric.PALETTE else None
        extras = tuple(page.extrasamples)
    pixels = np.moveaxis(pixels, 0, -1) if page.axes == "SYX" else pixels
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    count = colours[kind]
    if pixels.shape[2] < count:
        return None
    colour, extra = pixels[..., :count], pixels[..., count:count + 1]
    has_alpha = extra.shape[2] == 1 and bool(extras) and extras[0] in (1, 2)  # associated, unassociated
    if kind == photometric.MINISWHITE:
        colour = np.iinfo(colour.dtype).max - colour
    if colormap is not None:
        if has_alpha:
            return None
        colour = colormap.T[colour[..., 0]]
        if not np.any(colormap % 257):  # an 8-bit palette written as 16-bit entries
            colour = (colour // 257).astype(np.uint8)
    space = {1: "gray", 3: "rgb", 4: "cmyk"}[count]
    return _Samples(colour, extra if has_alpha else None, space, _stored_size(image), image.info.get("icc_profile"),
                    _orientation(image), premultiplied=has_alpha and extras[0] == 1)


def _from_array(array: np.ndarray, role: str) -> _Samples:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise LargestyleError(f"{role} image array must be H x W, H x W x 3 or H x W x 4; got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
    elif array.dtype not in (np.uint8, np.uint16):
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
    top = np.iinfo(colour.dtype).max
    straight = colour.astype(np.float32) * np.float32(top) / np.maximum(alpha, 1).astype(np.float32)
    return np.clip(np.rint(straight), 0, top).astype(colour.dtype)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image; (4, H, W) gives RGBA."""
    array = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")
