"""Decoding pixels: a file (with Pillow, tifffile, or imagecodecs for 16-bit PNG), a PIL image or an array.

Each decoder returns ``Samples`` in the file's own precision and stored orientation,
reduced by an integer factor while decoding when a smaller image is wanted.
"""

from __future__ import annotations

import math

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from .downscale import reduction
from .messages import decoding, truncated
from .modes import full_range, pil_pixels, plain_mode, png_bit_depth
from .opening import File, open_file
from .orientation import orientation_of
from .samples import Samples, split_alpha
from .truncation import incomplete
from ..core.errors import LargestyleError


def read_file(source, role: str, max_pixels: int, max_long_side: int | None) -> Samples:
    """The samples of the image file at ``source``, after the checks on its header and its length."""
    with open_file(source, role, max_pixels) as file, decoding(file.fail):
        problem = incomplete(file)
        if problem:
            raise LargestyleError(truncated(file.fail, problem))
        if file.page is not None:
            samples = read_tiff(file)
            if samples is not None:
                return samples
        image = file.image
        if image is None:
            raise LargestyleError(f"{file.fail}: it is a TIFF layout this program cannot read "
                                  f"({str(getattr(file.page.photometric, 'name', file.page.photometric)).lower()} with "
                                  f"{file.page.dtype} samples); "
                                  "save it as an 8 or 16-bit RGB TIFF or PNG")
        native = file.stored_size
        if image.format == "PNG" and png_bit_depth(image) == 16:
            return read_png16(file)
        factor = reduction(native, max_long_side)
        if factor > 1 and image.format == "JPEG":  # libjpeg decodes at 1/2, 1/4 or 1/8 scale, no smaller than asked
            image.draft(image.mode, (math.ceil(native[0] / factor), math.ceil(native[1] / factor)))
        return from_pil(image, max_long_side, native)


def from_pil(image: Image.Image, max_long_side: int | None, native: tuple[int, int] | None = None) -> Samples:
    """Pillow decoding, reduced by an integer factor (Image.reduce) when a smaller image is wanted."""
    native = native or image.size
    image.load()
    if image.format == "TIFF":  # recent Pillow applies (and then drops) the orientation tag while loading
        native = image.size
    orientation, icc = orientation_of(image), image.info.get("icc_profile")
    image = plain_mode(image)
    factor = reduction(image.size, max_long_side)
    if factor > 1 and image.mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        image = image.reduce(factor)
    pixels = pil_pixels(image)
    space = {"RGB": "rgb", "RGBA": "rgb", "CMYK": "cmyk"}.get(image.mode, "gray")
    return split_alpha(pixels, space, image.mode in ("LA", "RGBA"), native, icc, orientation)


def read_png16(file: File) -> Samples:
    """A 16-bit PNG decoded by imagecodecs (Pillow decodes 16-bit colour as 8-bit); tRNS becomes alpha."""
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
    return split_alpha(pixels, "rgb" if channels >= 3 else "gray", channels in (2, 4), image.size,
                       file.icc, file.orientation)


def read_tiff(file: File) -> Samples | None:
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
        pixels = full_range(pixels, page.bitspersample)
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
    return Samples(colour, extra if has_alpha else None, space, file.stored_size, file.icc,
                   file.orientation, premultiplied=has_alpha and extras[0] == 1)


def from_array(array: np.ndarray, role: str) -> Samples:
    """An H x W (x 1, 3 or 4) uint8, uint16 or float array as samples; a fourth channel is alpha."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise LargestyleError(f"{role} image array must be H x W, H x W x 3 or H x W x 4; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) and array.dtype not in (np.uint8, np.uint16):
        raise LargestyleError(f"{role} image array has unsupported dtype {array.dtype} (use uint8, uint16 or float)")
    space = "gray" if array.shape[2] == 1 else "rgb"
    return split_alpha(array, space, array.shape[2] == 4, (array.shape[1], array.shape[0]))
