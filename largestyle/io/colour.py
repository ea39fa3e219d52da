"""Colour management for image reading: embedded ICC profiles to sRGB.

One path for 8- and 16-bit pixels alike: LittleCMS (through imagecodecs) transforms
the integer samples straight to float32, so 16-bit sources keep their precision.
"""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np

# ICC header colour-space signature expected for each kind of pixel data.
_ICC_SPACES = {"gray": b"GRAY", "rgb": b"RGB ", "cmyk": b"CMYK"}
_SRGB = imagecodecs.cms_profile("srgb")


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 samples scaled from their full range, floats clipped: a new C-ordered float32 array."""
    values = pixels.astype(np.float32, order="C")
    if pixels.dtype == np.uint8:
        values /= np.float32(255)
    elif pixels.dtype == np.uint16:
        values /= np.float32(65535)
    else:
        np.clip(values, 0.0, 1.0, out=values)
    return values


def to_srgb(pixels: np.ndarray, space: str, icc: bytes | None, notes: list[str]) -> np.ndarray:
    """H x W x C samples (C = 1 grey, 3 RGB, 4 CMYK) as a (3, H, W) float32 sRGB array in [0, 1].

    The embedded profile ``icc`` is honoured when it is usable and not sRGB already;
    otherwise the pixels are taken as sRGB (CMYK by the plain ink formula). What was
    done is appended to ``notes``.
    """
    if icc:
        converted = _convert_with_profile(pixels, space, icc, notes)
        if converted is not None:
            return converted
    if space == "cmyk":
        notes.append("CMYK converted without a colour profile (plain formula); colours are approximate")
        ink = to_float(np.moveaxis(pixels, -1, 0))
        return (1 - ink[:3]) * (1 - ink[3:])
    if space == "gray":
        grey = to_float(pixels[..., 0])
        return np.broadcast_to(grey, (3, *grey.shape)).copy()
    return to_float(np.moveaxis(pixels, -1, 0))  # one float copy, already channels-first


def _convert_with_profile(pixels: np.ndarray, space: str, icc: bytes, notes: list[str]) -> np.ndarray | None:
    if len(icc) < 128 or icc[36:40] != b"acsp":
        notes.append("embedded colour profile is unreadable; pixels taken as sRGB")
        return None
    if icc[16:20] != _ICC_SPACES[space]:
        kind = icc[16:20].decode("latin-1").strip()
        notes.append(f"embedded colour profile is for {kind} data, not {space.upper()}; ignored, pixels taken as sRGB")
        return None
    name = profile_name(icc)
    if name and "srgb" in name.lower():
        return None  # already what the renderer works in; converting would only add rounding
    data = pixels[..., 0] if space == "gray" else pixels
    if data.dtype.kind == "f":  # LittleCMS reads float CMYK as 0-100 %, float RGB and grey as 0-1
        data = np.clip(data, 0, 1).astype(np.float32) * (100 if space == "cmyk" else 1)
    try:
        out = imagecodecs.cms_transform(data, icc, _SRGB, colorspace=space, outcolorspace="rgb",
                                        outdtype=np.float32, outplanar=True)
    except (imagecodecs.CmsError, ValueError) as exc:
        notes.append(f"embedded colour profile is unusable ({exc}); pixels taken as sRGB")
        return None
    notes.append(f"converted from {name or 'the embedded colour profile'!r} to sRGB")
    return np.clip(out, 0.0, 1.0, out=out)


def profile_name(icc: bytes) -> str | None:
    """The profile's description ('desc' tag, ICC v2 text or v4 multi-language), or None."""
    try:
        count = struct.unpack_from(">I", icc, 128)[0]
        for index in range(min(count, 1000)):
            signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * index)
            if signature == b"desc":
                return _description(icc[offset:offset + size])
    except struct.error:
        pass
    return None


def _description(tag: bytes) -> str | None:
    if tag[:4] == b"desc":  # textDescriptionType: ASCII count then text
        length = struct.unpack_from(">I", tag, 8)[0]
        return tag[12:12 + length].split(b"\0")[0].decode("latin-1").strip() or None
    if tag[:4] == b"mluc":  # multiLocalizedUnicodeType: first record, UTF-16BE
        records = struct.unpack_from(">I", tag, 8)[0]
        if records:
            length, offset = struct.unpack_from(">II", tag, 20)
            return tag[offset:offset + length].decode("utf-16-be", "replace").strip("\0 ") or None
    return None
