"""Reading and writing image files: the only place the package touches pixels on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write
from .errors import LargestyleError

# Output formats by file extension (Pillow format names).
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95


def load_image(source, role: str = "input") -> torch.Tensor:
    """An image as a (3, H, W) float32 RGB tensor in [0, 1].

    ``source`` is a path, a PIL image, or an H x W (x 1, 3 or 4) array: uint8 and
    uint16 arrays are scaled from their full range, float arrays are taken as [0, 1].
    Alpha is dropped; EXIF orientation is applied to files and PIL images.
    """
    if isinstance(source, (str, os.PathLike)):
        return _from_pil(_open(Path(source), role))
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, role)
    raise LargestyleError(f"{role} image must be a path, a PIL image or an array, not {type(source).__name__}")


def _open(path: Path, role: str) -> Image.Image:
    if not path.exists():
        raise LargestyleError(f"{role} image not found: {path}")
    if path.is_dir():
        raise LargestyleError(f"{role} image {path} is a directory, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise LargestyleError(f"cannot read {role} image {path}: not an image file Pillow recognises") from None
    except PermissionError:
        raise LargestyleError(f"cannot read {role} image {path}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LargestyleError(f"cannot read {role} image {path}: corrupt or truncated ({exc})") from None


def _from_pil(image: Image.Image) -> torch.Tensor:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32) / 65535.0
        return _from_array(np.clip(array, 0, 1), "input")
    return _from_array(np.asarray(image.convert("RGB")), "input")


def _from_array(array: np.ndarray, role: str) -> torch.Tensor:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise LargestyleError(f"{role} image array must be H x W, H x W x 3 or H x W x 4; got shape {array.shape}")
    if array.dtype == np.uint8:
        pixels = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        pixels = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        pixels = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise LargestyleError(f"{role} image array has unsupported dtype {array.dtype} (use uint8, uint16 or float)")
    pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image."""
    array = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def check_output_path(path) -> Path:
    """Fail now, before any rendering, if ``path`` cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise LargestyleError(
            f"cannot write {path}: unsupported output type {path.suffix or '(none)'!r}; "
            f"use {', '.join(OUTPUT_FORMATS)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LargestyleError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LargestyleError(f"cannot write {path}: permission denied")
    if path.is_dir():
        raise LargestyleError(f"cannot write {path}: it is a directory")
    return path


def save_image(image, path) -> Path:
    """Write an image atomically: a temporary file in the same folder, fsync, rename.

    ``image`` is a (3, H, W) tensor in [0, 1], a PIL image or an array (as ``load_image`` takes).
    """
    path = check_output_path(path)
    if not isinstance(image, torch.Tensor):
        image = load_image(image, "output")
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    options = {"quality": JPEG_QUALITY, "subsampling": 0} if fmt == "JPEG" else {}
    try:
        with atomic_write(path) as stream:
            to_pil(image).save(stream, format=fmt, **options)
    except OSError as exc:
        raise LargestyleError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
