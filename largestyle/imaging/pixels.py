"""Per-pixel work a band of rows at a time, and 3x3 colour maps that give the same bits in any band.

A colour map is written as separate multiplications and additions per channel, never as a
matrix product, so each pixel's result does not depend on how many pixels are processed
with it: chunked and whole-image results are equal bit for bit.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

# Pixels per band of rows: a float32 plane of it is 8 MiB, and a band's work holds about a dozen.
CHUNK_PIXELS = 1 << 21


def row_bands(height: int, width: int, chunk_pixels: int = CHUNK_PIXELS) -> Iterator[slice]:
    """Slices of whole rows covering ``height``, each about ``chunk_pixels`` pixels (at least one row)."""
    if chunk_pixels < 1:
        raise ValueError(f"chunk_pixels must be positive, got {chunk_pixels}")
    rows = max(1, chunk_pixels // max(1, width))
    for top in range(0, height, rows):
        yield slice(top, min(height, top + rows))


def colour_map(pixels: torch.Tensor, matrix: Sequence[Sequence[float]],
               offset: Sequence[float] | None = None) -> torch.Tensor:
    """``matrix @ pixel + offset`` for every pixel of (3, H, W) ``pixels``; (len(matrix), H, W).

    Each output channel is ``((x0 * m0 + x1 * m1) + x2 * m2) + offset``, elementwise.
    """
    channels = []
    for k, row in enumerate(matrix):
        value = pixels[0] * float(row[0])
        value = value + pixels[1] * float(row[1])
        value = value + pixels[2] * float(row[2])
        if offset is not None:
            value = value + float(offset[k])
        channels.append(value)
    return torch.stack(channels)


def as_planes(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) view of a (3, H, W) or (1, 3, H, W) RGB tensor."""
    planes = image[0] if image.dim() == 4 else image
    if planes.dim() != 3 or planes.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    return planes
