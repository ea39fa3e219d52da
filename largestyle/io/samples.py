"""Decoded samples: the record every decoder returns, colour and alpha held apart, and premultiplied alpha undone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Samples:
    """Decoded samples before colour management, in the file's stored orientation."""

    colour: np.ndarray                  # H x W x C: C = 1 grey, 3 RGB, 4 CMYK
    alpha: np.ndarray | None            # H x W x 1, same dtype as colour
    space: str                          # "gray", "rgb" or "cmyk"
    native: tuple[int, int]             # stored (width, height) before any reduction
    icc: bytes | None = None
    orientation: int = 1
    premultiplied: bool = False


def split_alpha(pixels: np.ndarray, space: str, has_alpha: bool, native: tuple[int, int],
                icc: bytes | None = None, orientation: int = 1) -> Samples:
    """Samples whose last channel is alpha when ``has_alpha``."""
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    if has_alpha:
        return Samples(pixels[..., :-1], pixels[..., -1:], space, native, icc, orientation)
    return Samples(pixels, None, space, native, icc, orientation)


def unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour divided by its alpha (premultiplied to straight), in the colour's own type."""
    if colour.dtype.kind == "f":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(np.where(alpha > 0, colour / alpha, 0), 0, 1).astype(np.float32)
    top = np.iinfo(colour.dtype).max
    straight = colour.astype(np.float32) * np.float32(top) / np.maximum(alpha, 1).astype(np.float32)
    return np.clip(np.rint(straight), 0, top).astype(colour.dtype)
