"""Colour preservation (Gatys, Bethge, Hertzmann and Shechtman, "Preserving Color in Neural Artistic
Style Transfer", 2016): colour histogram matching of the style, and luminance transfer in YIQ.

Both work a band of rows at a time (``pixels.row_bands``), so a print-size image costs its
result and a bounded working set; the result does not depend on the band size, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.transfer import beside, to_host
from .pixels import CHUNK_PIXELS, as_planes, colour_map, row_bands

# RGB -> YIQ (the NTSC 1953 definition, as the paper uses). I and Q have rows summing to 0,
# so grey stays grey; the inverse is computed, so the round trip is exact up to rounding.
YIQ_FROM_RGB = np.array([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]])
RGB_FROM_YIQ = np.linalg.inv(YIQ_FROM_RGB)
# Covariance eigenvalues are raised to this floor before the inverse square root, so a grey or
# flat style image (a singular covariance) maps to finite colours: std 0.001, under 1/255.
MIN_VARIANCE = 1e-6
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def rgb_to_yiq(pixels: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB -> (3, H, W) YIQ."""
    return colour_map(pixels, YIQ_FROM_RGB)


def yiq_to_rgb(pixels: torch.Tensor) -> torch.Tensor:
    """(3, H, W) YIQ -> (3, H, W) RGB (not clamped)."""
    return colour_map(pixels, RGB_FROM_YIQ)


def colour_statistics(image: torch.Tensor, chunk_pixels: int = CHUNK_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """(mean (3,), covariance (3, 3)) of a (3, H, W) or (1, 3, H, W) image's RGB pixels, in float64.

    Sums are taken per row (numpy's pairwise sum) and the rows' sums added once at the end,
    so the result is the same for every ``chunk_pixels``.
    """
    planes = as_planes(image)
    rows = []
    for band in row_bands(*planes.shape[-2:], chunk_pixels):
        values = to_host(planes[:, band].detach()).to(torch.float64).numpy()
        sums = [values[c].sum(axis=-1) for c in range(3)]
        sums += [(values[i] * values[j]).sum(axis=-1) for i, j in _PAIRS]
        rows.append(np.stack(sums, axis=-1))
    totals = np.concatenate(rows).sum(axis=0) / (planes.shape[-2] * planes.shape[-1])
    mean = totals[:3]
    second = np.empty((3, 3))
    for (i, j), value in zip(_PAIRS, totals[3:]):
        second[i, j] = second[j, i] = value
    return mean, second - np.outer(mean, mean)


def _symmetric_power(matrix: np.ndarray, power: float) -> np.ndarray:
    """``matrix ** power`` of a symmetric positive semi-definite matrix, by eigendecomposition.

    A negative power raises the eigenvalues to ``MIN_VARIANCE`` first.
    """
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(values, MIN_VARIANCE if power < 0 else 0.0) ** power) @ vectors.T


def match_colours(style: torch.Tensor, content: torch.Tensor, chunk_pixels: int = CHUNK_PIXELS) -> torch.Tensor:
    """``style`` with its colours matched to ``content``'s: the paper's colour histogram matching.

    Each style pixel x becomes ``A (x - mu_s) + mu_c`` with ``A = Sigma_c^(1/2) Sigma_s^(-1/2)``,
    the symmetric (principal) square roots, computed by eigendecomposition (not Cholesky), so
    the style's RGB mean and covariance become the content's; then clamped to [0, 1].
    The style's eigenvalues under ``MIN_VARIANCE`` are raised to it. Tensors are (3, H, W) or
    (1, 3, H, W), on any device; a new tensor of ``style``'s shape is returned and the
    inputs are not changed.
    """
    mu_s, sigma_s = colour_statistics(style, chunk_pixels)
    mu_c, sigma_c = colour_statistics(content, chunk_pixels)
    transform = _symmetric_power(sigma_c, 0.5) @ _symmetric_power(sigma_s, -0.5)
    offset = mu_c - transform @ mu_s
    result = torch.empty_like(style)
    source, target = as_planes(style), as_planes(result)
    for band in row_bands(*source.shape[-2:], chunk_pixels):
        target[:, band] = colour_map(source[:, band], transform, offset).clamp_(0, 1)
    return result


def transfer_luminance(image: torch.Tensor, content: torch.Tensor, chunk_pixels: int = CHUNK_PIXELS) -> torch.Tensor:
    """``image`` (3, H, W) with its own luminance and ``content``'s chroma, in place; returns it.

    Both are converted to YIQ (as the paper); Y is the image's, I and Q the content's
    (already of the image's size), converted back to RGB and clamped to [0, 1].
    """
    planes, reference = as_planes(image), as_planes(content)
    if planes.shape != reference.shape:
        raise ValueError(f"content of shape {tuple(reference.shape)} for an image of {tuple(planes.shape)}")
    for band in row_bands(*planes.shape[-2:], chunk_pixels):
        luma = colour_map(planes[:, band], YIQ_FROM_RGB[:1])
        chroma = colour_map(beside(reference[:, band], planes).to(planes.dtype), YIQ_FROM_RGB[1:])
        planes[:, band] = yiq_to_rgb(torch.cat([luma, chroma])).clamp_(0, 1)
    return image
