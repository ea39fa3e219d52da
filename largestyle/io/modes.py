"""Pixel modes and sample formats: which are read, which are refused, and how each is brought to use.

* Unsigned 8 and 16-bit samples are read as they are (TIFF samples of other widths up
  to 16 bits are scaled to the full 8 or 16-bit range).
* Floating-point samples are taken as values in [0, 1]. Values outside it by at most
  ``FLOAT_TOLERANCE`` (rounding) are clipped; values further out are refused, naming
  the range found, and so are NaN and infinite values. Nothing is rescaled.
* Signed, 24-bit or wider integer samples, complex samples and more than four channels
  are refused. Pillow's 32-bit integer mode I is read as 16-bit when its values lie
  in 0-65535, else refused.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import tifffile
from PIL import Image

from .messages import Refused
from .samples import Samples

# Float samples this far outside [0, 1] are rounding and are clipped; further out, refused.
FLOAT_TOLERANCE = 1e-3


def plain_mode(image: Image.Image) -> Image.Image:
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


def pil_pixels(image: Image.Image) -> np.ndarray:
    """The samples of an image in a plain mode; mode I as 16-bit when its values fit, else refused."""
    if image.mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if image.mode == "I":
        pixels = np.asarray(image)
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 65535:
            raise Refused(f"it has 32-bit integer samples from {low} to {high}, beyond what 16 bits hold; "
                          "convert it to 8 or 16 bits per channel")
        return pixels.astype(np.uint16)
    return np.asarray(image)


def png_bit_depth(image: Image.Image) -> int:
    """Bits per sample from the PNG header's tile (Pillow decodes 16-bit colour as 8-bit)."""
    rawmode = image.tile[0].args if image.tile else ""
    rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
    return 16 if isinstance(rawmode, str) and rawmode.endswith("16B") else 8


def tiff_refusal(page: tifffile.TiffPage) -> str | None:
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


def full_range(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned samples of fewer bits than their type holds (4, 12 ...) scaled to its full range."""
    if pixels.dtype.kind != "u" or bits >= 8 * pixels.dtype.itemsize:
        return pixels
    top, full = (1 << bits) - 1, np.iinfo(pixels.dtype).max
    return ((pixels.astype(np.uint32) * full + top // 2) // top).astype(pixels.dtype)


def checked(samples: Samples) -> Samples:
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
        raise Refused("it has NaN (not-a-number) values; float images must hold numbers from 0 to 1")
    if math.isinf(low) or math.isinf(high):
        raise Refused("it has infinite values; float images must hold numbers from 0 to 1")
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        raise Refused(f"it has float values from {low:.6g} to {high:.6g}; float images must hold values "
                      "from 0 to 1: scale it to that range first")
    return np.clip(values, 0, 1) if low < 0 or high > 1 else values  # a copy: the caller's array is kept
