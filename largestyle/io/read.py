"""Reading images: the public entry points, and the last step from decoded samples to a ``LoadedImage``.

Files, PIL images and arrays all come back as a ``LoadedImage``: oriented, in sRGB,
with their alpha and their native precision, optionally downscaled while decoding.
Every way a file can be wrong ends as one ``LargestyleError`` line naming the file
as the user gave it, what is wrong with it and what to do.

What is read and what is refused is decided where each concern lives: ``paths``
(only regular files, opened without blocking), ``opening`` (the header, the pixel
limit), ``truncation`` (whole images only), ``modes`` (pixel modes and sample
formats, the rule for floats), ``decode`` (the decoders), ``orientation``,
``downscale`` and ``colour``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..core.transfer import to_host
from .colour import to_float, to_srgb
from .decode import from_array, from_pil, read_file
from .downscale import box_reduce, reduction
from .messages import Refused, cannot_read, decoding, shown
from .modes import checked
from .opening import open_file
from .orientation import ORIENTATIONS, orient, oriented
from .samples import Samples, unpremultiply
from ..config.settings import RenderConfig
from ..core.errors import LargestyleError
from ..geometry.pyramid import fit_long_side, resize

MAX_INPUT_PIXELS = RenderConfig.max_input_pixels


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


def read_image(source, role: str = "input", *, max_pixels: int = MAX_INPUT_PIXELS,
               max_long_side: int | None = None) -> LoadedImage:
    """Decode ``source``: a path, a PIL image, or an H x W (x 1, 3 or 4) array.

    uint8 and uint16 arrays are scaled from their full range, float arrays are taken as
    [0, 1] (see ``modes`` for the rule on floats); a fourth channel is alpha. Files larger
    than ``max_pixels`` are refused from their header. With ``max_long_side``, a larger
    image is downscaled to that long side while decoding, never held at full size as floats.
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            whose = cannot_read(role, shown(source))
            samples = read_file(source, role, max_pixels, max_long_side)
        elif isinstance(source, Image.Image):
            whose = f"{role} image (a PIL image)"
            samples = from_pil(source, max_long_side)
        elif isinstance(source, np.ndarray):
            whose = f"{role} image array"
            samples = from_array(source, role)
        else:
            raise LargestyleError(
                f"{role} image must be a path, a PIL image or an array, not {type(source).__name__}")
        samples = checked(samples)
    except Refused as exc:
        raise LargestyleError(f"{whose}: {exc}") from None
    return _finish(samples, max_long_side)


def load_image(source, role: str = "input") -> torch.Tensor:
    """``read_image(source, role).rgb``: the colours as a (3, H, W) tensor, alpha dropped."""
    return read_image(source, role).rgb


def probe_size(path, role: str = "input", *, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[int, int]:
    """(width, height) after orientation, from the header alone (no pixels decoded)."""
    with open_file(path, role, max_pixels) as file, decoding(file.fail):
        return oriented(file.stored_size, file.orientation)


def composite(image: LoadedImage, background: float = 1.0) -> torch.Tensor:
    """The colours laid over a uniform ``background`` (white by default) by alpha."""
    if image.alpha is None:
        return image.rgb
    return image.rgb * image.alpha + background * (1 - image.alpha)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image; (4, H, W) gives RGBA."""
    array = to_host(image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")


def _finish(samples: Samples, max_long_side: int | None) -> LoadedImage:
    """Downscaled by the integer factor left, oriented, unpremultiplied, in sRGB, then resized to fit."""
    notes: list[str] = []
    width, height = oriented(samples.native, samples.orientation)
    factor = reduction(samples.colour.shape[1::-1], max_long_side)
    colour, alpha = samples.colour, samples.alpha
    if factor > 1:
        colour = box_reduce(colour, factor)
        alpha = None if alpha is None else box_reduce(alpha, factor)
    if samples.orientation != 1:
        colour, alpha = orient(colour, samples.orientation), orient(alpha, samples.orientation)
        notes.append(f"EXIF orientation applied ({ORIENTATIONS[samples.orientation]})")
    if samples.premultiplied:
        colour = unpremultiply(colour, alpha)
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
