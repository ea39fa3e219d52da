"""Writing output images: PNG, JPEG and TIFF, 8 or 16 bits, with DPI and an sRGB profile.

The only module that writes image files. Every write goes through ``atomic_write``,
so a failed save leaves the previous file as it was.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
import torch
from PIL import Image, ImageCms

from ..core.transfer import to_host
from ..core.atomic import atomic_write, storage_problem
from ..config.settings import OUTPUT_SUFFIXES, RenderConfig
from ..core.errors import LargestyleError
from .read import load_image

JPEG_SUFFIXES = (".jpg", ".jpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
BIT_DEPTHS = (8, 16)
# Classic TIFF addresses 4 GiB; keep 32 MiB of it for tags, strip tables and the
# profile. Deflate grows incompressible data by only a few bytes per 64 KiB block,
# so comparing the uncompressed pixel bytes with this is safe.
BIGTIFF_THRESHOLD = 2**32 - 2**25
# A temporary file's name adds ".", 8 random characters and ".tmp" to the target's (atomic_write).
TEMPORARY_NAME_EXTRA = 1 + 8 + len(".tmp")
# JFIF stores the density in 16 bits.
_JFIF_MAX_DPI = 0xFFFF


def check_output_path(path, bit_depth: int = RenderConfig.bit_depth) -> Path:
    """``path`` as a Path, or a one-line LargestyleError if it cannot be written.

    Called before rendering, so that a bad output path fails in seconds, not hours.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise LargestyleError(f"cannot write {path}: unsupported output type {path.suffix or '(none)'!r}; "
                              f"use {', '.join(OUTPUT_SUFFIXES)}")
    if bit_depth not in BIT_DEPTHS:
        raise LargestyleError(f"cannot write {path}: bit depth must be 8 or 16, not {bit_depth}")
    if bit_depth == 16 and suffix in JPEG_SUFFIXES:
        raise LargestyleError(f"cannot write {path}: JPEG holds 8 bits per channel: "
                              f"use .tif or .png for --bit-depth 16")
    parent = path.parent
    room = _name_max(parent) - len(".") - TEMPORARY_NAME_EXTRA
    if len(os.fsencode(path.name)) > room:
        raise LargestyleError(f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes long, more than "
                              f"the {room} this folder allows (with room for the temporary file); use a shorter name")
    if not parent.is_dir():
        raise LargestyleError(f"cannot write {path}: directory {parent} does not exist")
    if path.is_dir():
        raise LargestyleError(f"cannot write {path}: it is a directory")
    # The temporary file is created in the parent, then renamed over the path.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LargestyleError(f"cannot write {path}: permission denied (directory {parent} is not writable)")
    if path.exists() and not os.access(path, os.W_OK):
        raise LargestyleError(f"cannot write {path}: permission denied (the existing file is read-only)")
    return path


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the folder's file system takes."""
    try:
        return os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def save_image(image, path, *, alpha=None, bit_depth: int = RenderConfig.bit_depth,
               dpi: float = RenderConfig.dpi, jpeg_quality: int = RenderConfig.jpeg_quality) -> Path:
    """Write ``image`` to ``path`` atomically, in the format its extension names; return the path.

    ``image`` is a (3, H, W) float tensor in [0, 1], or a PIL image or array as
    ``imageio.load_image`` takes them (their own alpha is dropped). ``alpha`` is None or
    an (H, W) or (1, H, W) float tensor in [0, 1]; PNG and TIFF then get an RGBA image
    with unassociated alpha. JPEG cannot hold alpha, so for JPEG the image is composited
    over white instead (a transparent pixel comes out white).

    Values are clamped to [0, 1] and rounded to ``bit_depth`` bits (8 or 16; 16 needs PNG
    or TIFF). Every file gets ``dpi`` and the sRGB ICC profile. On failure the previous
    file is intact, no temporary file remains, and a LargestyleError says why.
    """
    path = check_output_path(path, bit_depth)
    suffix = path.suffix.lower()
    if not isinstance(image, torch.Tensor):
        image = load_image(image, "output")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) tensor, got shape {tuple(image.shape)}")
    planes = to_host(image.detach()).to(torch.float32)
    if alpha is not None:
        alpha = _alpha_plane(alpha, planes.shape[1:])
        if suffix in JPEG_SUFFIXES:
            planes = 1 - alpha * (1 - planes.clamp(0, 1))  # over white
        else:
            planes = torch.cat([planes, alpha])
    pixels = _quantize(planes, bit_depth)
    try:
        with atomic_write(path) as stream:
            if suffix in TIFF_SUFFIXES:
                _write_tiff(stream, path.name, pixels, dpi)
            elif suffix in JPEG_SUFFIXES:
                _write_jpeg(stream, pixels, dpi, jpeg_quality)
            elif bit_depth == 16:
                stream.write(_png16_bytes(pixels, dpi))
            else:
                Image.fromarray(pixels).save(stream, format="PNG", dpi=(dpi, dpi), icc_profile=srgb_profile())
    except OSError as exc:
        raise LargestyleError(f"cannot write {path}: {storage_problem(exc)}; nothing was written there "
                              "(free some space, or choose another place)") from None
    return path


# The profile's creation date (ICC header bytes 24-35), fixed so that the same render
# gives the same file byte for byte whenever it is written (a resumed render is compared so).
PROFILE_DATE = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)


@functools.cache
def srgb_profile() -> bytes:
    """The sRGB ICC profile embedded in every output file."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = PROFILE_DATE
    if any(profile[84:100]):  # a profile ID is the MD5 of the profile with flags, intent and ID zeroed
        unsigned = bytearray(profile)
        unsigned[44:48] = unsigned[64:68] = bytes(4)
        unsigned[84:100] = bytes(16)
        profile[84:100] = hashlib.md5(unsigned).digest()
    return bytes(profile)


def needs_bigtiff(height: int, width: int, channels: int, bytes_per_sample: int) -> bool:
    """Whether a TIFF of this image could pass classic TIFF's 4 GiB limit."""
    return height * width * channels * bytes_per_sample > BIGTIFF_THRESHOLD


def _alpha_plane(alpha, size) -> torch.Tensor:
    alpha = to_host(torch.as_tensor(alpha).detach()).to(torch.float32)
    if alpha.ndim == 2:
        alpha = alpha[None]
    if alpha.ndim != 3 or alpha.shape[0] != 1 or alpha.shape[1:] != size:
        raise ValueError(f"alpha must be (H, W) or (1, H, W) matching the image {tuple(size)}, "
                         f"got shape {tuple(alpha.shape)}")
    return alpha.clamp(0, 1)


def _quantize(planes: torch.Tensor, bit_depth: int) -> np.ndarray:
    """(C, H, W) floats -> (H, W, C) uint8 or uint16, round(x * max) after clamping."""
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scale = float(np.iinfo(dtype).max)
    # clamp copies, so the caller's tensor is not changed by the in-place steps.
    planes = planes.clamp(0, 1).nan_to_num_(0.0).mul_(scale).round_()
    return planes.permute(1, 2, 0).numpy().astype(dtype, order="C")


def _write_jpeg(stream, pixels: np.ndarray, dpi: float, quality: int) -> None:
    density = min(max(round(dpi), 1), _JFIF_MAX_DPI)
    Image.fromarray(pixels).save(stream, format="JPEG", quality=quality, subsampling=0, optimize=True,
                                 dpi=(density, density), icc_profile=srgb_profile())


def _write_tiff(stream, name: str, pixels: np.ndarray, dpi: float) -> None:
    height, width, channels = pixels.shape
    tifffile.imwrite(
        # A named handle: tifffile takes a stream's name for a path, and os.fdopen's is a number.
        tifffile.FileHandle(stream, mode="wb", name=name), pixels,
        bigtiff=needs_bigtiff(height, width, channels, pixels.itemsize),
        photometric="rgb",
        extrasamples=("unassalpha",) if channels == 4 else None,
        compression="zlib",  # Deflate: tifffile falls back on the standard library's zlib
        predictor="horizontal",  # smooth images compress much better as row differences
        resolution=(dpi, dpi), resolutionunit="inch",
        iccprofile=srgb_profile(),
        metadata=None,  # no tifffile shape description
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16_bytes(pixels: np.ndarray, dpi: float) -> bytes:
    """A 16-bit PNG: Pillow cannot write 16-bit RGB(A), imagecodecs can but adds no metadata.

    The pHYs (density) and iCCP (profile) chunks go right after IHDR: both must come
    before the first IDAT. The PNG signature is 8 bytes and IHDR is always 25 (13 data).
    """
    encoded = imagecodecs.png_encode(pixels)
    ihdr_end = 8 + 25
    if encoded[12:16] != b"IHDR" or encoded[8:12] != struct.pack(">I", 13):
        raise AssertionError("PNG encoder output does not start with IHDR")
    pixels_per_metre = round(dpi / 0.0254)
    phys = _png_chunk(b"pHYs", struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1))  # unit 1: metre
    # iCCP: profile name, NUL, compression method 0 (zlib), compressed profile.
    iccp = _png_chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(srgb_profile()))
    return encoded[:ihdr_end] + phys + iccp + encoded[ihdr_end:]
