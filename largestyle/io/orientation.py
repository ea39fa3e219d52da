"""EXIF (and TIFF) orientation: reading the tag, the size it gives, and applying it to pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
                5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                8: "rotated 90 degrees anticlockwise"}


def orientation_of(image: Image.Image) -> int:
    """The EXIF (or TIFF) orientation tag, 1 when absent or unreadable."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # a late eXIf chunk is only found by decoding the whole image
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # damaged EXIF is common and must not stop the image from loading
        return 1
    return value if value in ORIENTATIONS else 1


def stored_size_of(image: Image.Image) -> tuple[int, int]:
    """(width, height) as stored; recent Pillow reports a TIFF's size already turned by its orientation."""
    if image.format == "TIFF":
        return image.tag_v2[256], image.tag_v2[257]  # ImageWidth, ImageLength
    return image.size


def oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(width, height) as displayed, from the stored ``size`` and the orientation tag."""
    return (size[1], size[0]) if orientation >= 5 else size


def orient(pixels: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """EXIF orientation 1-8 applied to an H x W x C array (a view; no copy)."""
    if pixels is None:
        return None
    if orientation in (2, 3, 4):
        return pixels[::-1 if orientation != 2 else 1, ::-1 if orientation != 4 else 1]
    flips = {5: (1, 1), 6: (1, -1), 7: (-1, -1), 8: (-1, 1)}[orientation]
    return pixels.swapaxes(0, 1)[::flips[0], ::flips[1]]
