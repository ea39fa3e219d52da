"""Total-variation denoising of an output, as the MXNet neural-style example's --remove-noise does.

scikit-image's ``denoise_tv_chambolle(tile, weight, channel_axis=-1)`` (Chambolle's projection
algorithm, each channel on its own) works in float on the whole array it is given. A
print-size image is therefore denoised in tiles of ``TILE`` px overlapping by ``OVERLAP`` px,
a band of tile rows at a time, and the tiles are blended with feathered weights: linear
ramps across each overlap, normalised so they sum to one at every pixel. Rows are written
back into the image once no later tile reads or covers them, so memory holds the image, one
band of ``TILE`` rows (float32) and one tile's working set.

Tiled denoising is close to, not equal to, the untiled result. Chambolle's iterations reach
beyond a tile's edge, and, more, each call stops on its own energy test (scikit-image stops
when the energy changes by less than ``eps`` times its first value, which can happen at quite
another iteration for a tile than for the whole image). Measured on noisy test images (tiles
of 32-64 px overlapping by 16-32 px, and 1024/64 px on 2048 x 1536 px), tiled and untiled
differ, in values in [0, 1]:

- weights up to 0.02: by at most 0.005 at any pixel (about 1 level of 8 bits);
- weights up to 0.5: by at most 0.1 at any pixel and 0.01 on average;
- larger weights smooth over longer distances: at 10, up to 0.14 and 0.022 on average.

With a fixed number of iterations instead (``eps=0``) the difference stays under 0.01 at any
pixel for weights up to 0.1: most of it is the stopping rule, not the tiles. The first two
bounds are tested in ``tests/imaging/test_denoise.py``; an image within one tile is denoised
in one call, exactly as untiled.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.transfer import to_host
from .pixels import as_planes

TILE = 1024
OVERLAP = 64


def spans(length: int, tile: int = TILE, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """(start, stop) of the tiles along an axis of ``length`` px; neighbours overlap by at least ``overlap``."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be from 0 to below the tile size {tile}, got {overlap}")
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length - tile, tile - overlap)) + [length - tile]
    return [(start, start + tile) for start in starts]


def feather(length: int, tile_spans: list[tuple[int, int]], overlap: int = OVERLAP) -> list[torch.Tensor]:
    """Each span's blend weights along the axis: ramps across its overlaps, summing to 1 at every pixel."""
    ramps = []
    for start, stop in tile_spans:
        weight = torch.ones(stop - start, dtype=torch.float64)
        ramp = (torch.arange(overlap, dtype=torch.float64) + 0.5) / max(overlap, 1)
        if start > 0 and overlap:
            weight[:overlap] = ramp
        if stop < length and overlap:
            weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
        ramps.append(weight)
    total = torch.zeros(length, dtype=torch.float64)
    for (start, stop), weight in zip(tile_spans, ramps):
        total[start:stop] += weight
    return [(weight / total[start:stop]).float() for (start, stop), weight in zip(tile_spans, ramps)]


def denoise_tile(pixels: torch.Tensor, weight: float) -> torch.Tensor:
    """scikit-image's TV-Chambolle denoising of a (3, h, w) float tile, in float32."""
    from skimage.restoration import denoise_tv_chambolle  # a second to import: only when asked for

    array = to_host(pixels.detach()).to(torch.float32).permute(1, 2, 0).numpy()
    result = denoise_tv_chambolle(array, weight=weight, channel_axis=-1)
    return torch.from_numpy(np.ascontiguousarray(result, dtype=np.float32)).permute(2, 0, 1)


def remove_noise(image: torch.Tensor, weight: float, tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """TV-denoise a (3, H, W) float image in [0, 1] in place, tiled; returns it, clamped to [0, 1].

    Up to ``tile`` px in both directions it is one call, equal to the untiled result.
    """
    planes = as_planes(image)
    height, width = planes.shape[-2:]
    rows, cols = spans(height, tile, overlap), spans(width, tile, overlap)
    row_weights, col_weights = feather(height, rows, overlap), feather(width, cols, overlap)
    band = torch.zeros((3, rows[0][1], width))  # the rows of one tile row, from its top
    for index, ((top, bottom), row_weight) in enumerate(zip(rows, row_weights)):
        for (left, right), col_weight in zip(cols, col_weights):
            denoised = denoise_tile(planes[:, top:bottom, left:right], weight)
            band[:, :, left:right] += denoised * row_weight[:, None] * col_weight
        # Rows above the next tile row's top are final: no later tile reads or covers them.
        final = rows[index + 1][0] if index + 1 < len(rows) else height
        planes[:, top:final] = band[:, :final - top].clamp_(0, 1)
        pending = band[:, final - top:].clone()
        band.zero_()
        band[:, :pending.shape[1]] = pending
    return image
