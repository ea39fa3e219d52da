"""Pyramid level sizes and the resizing between levels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def level_shapes(target: int, height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of each level for content of height x width; the last is exactly the target."""
    return [fit_long_side(height, width, side) for side in long_sides(target)]


def resize(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of (N, C, H, W) in [0, 1] to ``shape``, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    return F.interpolate(image, size=shape, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
