"""Pyramid level sizes and the resizing between levels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .printsize import crop_box, output_shape, parse_print_size

# The smallest level's long side lies in [MIN_LONG_SIDE, 2 * MIN_LONG_SIDE): near VGG's training size.
MIN_LONG_SIDE = 224


def long_sides(target: int) -> list[int]:
    """Long side of each level, smallest first: target / 2^k for k = n..0.

    n is the number of halvings that brings the side under 448 px, so the first
    level lies in [224, 448); a target under 448 is a single level.
    """
    halvings = 0
    while target / 2 ** halvings >= 2 * MIN_LONG_SIDE:
        halvings += 1
    return [round(target / 2 ** k) for k in range(halvings, -1, -1)]


def fit_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) with the given long side and the aspect ratio of height x width."""
    if height >= width:
        return long_side, max(1, round(width * long_side / height))
    return max(1, round(height * long_side / width)), long_side


def fit_short_side(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the given short side and the aspect ratio of height x width."""
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of each level for an output of height x width; the last is exactly that."""
    return [fit_long_side(height, width, side) for side in long_sides(max(height, width))]


Box = tuple[int, int, int, int]  # top, left, height, width


def output_frame(config, height: int, width: int) -> tuple[tuple[int, int], Box | None]:
    """The output's (height, width) for content of height x width, and the content crop, if any.

    Without --print-size the long side is --target-size. With it, the print at --dpi
    gives the size (largely ``printsize``); ``crop`` cuts the content's centre to the
    print's aspect ratio.
    """
    if config.print_size is None:
        return fit_long_side(height, width, config.target_size), None
    shape = output_shape(height, width, parse_print_size(config.print_size), config.dpi, config.print_fit)
    return shape, crop_box(height, width, *shape) if config.print_fit == "crop" else None


def crop(image: torch.Tensor, box: Box | None) -> torch.Tensor:
    """(…, H, W) image cut to ``box``; the image itself when there is none."""
    if box is None:
        return image
    top, left, height, width = box
    return image[..., top:top + height, left:left + width]


def style_side(config, height: int, width: int) -> int:
    """The style image's long side that an output of height x width uses at its last level."""
    return max(1, round(max(height, width) * config.style_scale))


def content_side(config, height: int, width: int) -> int:
    """The content's long side beyond which nothing of it reaches the output (for downscaling on load).

    Without a crop that is the output's long side, so the content read at that size has
    exactly the output's shape.
    """
    (out_h, out_w), box = output_frame(config, height, width)
    if box is None:
        return min(max(height, width), max(out_h, out_w))
    _, _, crop_h, crop_w = box
    scale = max(out_h / crop_h, out_w / crop_w)
    return max(height, width) if scale >= 1 else max(1, round(max(height, width) * scale))


def resize(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of (N, C, H, W) in [0, 1] to ``shape``, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    return F.interpolate(image, size=shape, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
