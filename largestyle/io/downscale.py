"""Downscale on load by an integer factor: the factor, and box means of samples still in their own type."""

from __future__ import annotations

import numpy as np


def reduction(size, max_long_side: int | None) -> int:
    """Largest integer factor that keeps the long side at or above ``max_long_side``."""
    return max(1, max(size) // max_long_side) if max_long_side else 1


def box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
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
