"""Image loading from every accepted source and file format, and atomic saving.

Every test file is generated here, a few pixels in size.
"""

import io
import os
import struct
import time
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageFile

from largestyle.io import colour

from largestyle.io import paths
from largestyle.io import read as imageio

from largestyle.geometry import pyramid
from largestyle.core.errors import LargestyleError


def test_arrays_of_each_kind_load_to_the_same_pixels():
    rgb8 = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    expected = torch.from_numpy(rgb8.transpose(2, 0, 1) / 255.0).float()
    torch.testing.assert_close(imageio.load_image(rgb8), expected)
    torch.testing.assert_close(imageio.load_image(rgb8.astype(np.uint16) * 257), expected)
    torch.testing.assert_close(imageio.load_image(rgb8 / 255.0), expected)
    rgba = np.concatenate([rgb8, np.zeros((5, 7, 1), np.uint8)], axis=2)
    torch.testing.assert_close(imageio.load_image(rgba), expected)  # alpha dropped
    torch.testing.assert_close(imageio.load_image(Image.fromarray(rgb8)), expected)
    grey = imageio.load_image(rgb8[..., 0])
    assert grey.shape == (3, 5, 7) and torch.equal(grey[0], grey[2])


def test_bad_arrays_are_clear_errors():
    with pytest.raises(LargestyleError, match="shape"):
        imageio.load_image(np.zeros((4, 4, 2), np.uint8), "style")
    with pytest.raises(LargestyleError, match="dtype"):
        imageio.load_image(np.zeros((4, 4, 3), np.int64), "style")
    with pytest.raises(LargestyleError, match="path, a PIL image or an array"):
        imageio.load_image(42, "content")


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (6, 4), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert imageio.load_image(tmp_path / "rotated.jpg").shape == (3, 6, 4)


# --- helpers for building test files --------------------------------------------------

TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG signature, IHDR (8-bit RGB) and IEND: a header with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def noise(height, width, channels=3, seed=0, dtype=np.uint8):
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, (height, width, channels), dtype=dtype)


def smooth(height, width):
    """An asymmetric, JPEG-friendly 8-bit RGB image: gradients and one bright corner."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 60)], -1)
    image[: height // 3, : width // 3] = (250, 250, 40)
    return image.astype(np.uint8)


def chw(array: np.ndarray) -> torch.Tensor:
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32) / np.float32(scale))


def srgb_encode(linear):
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_decode(encoded):
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def rgb_to_xyz_matrix(primaries, white):
    """RGB -> XYZ from xy chromaticities of the primaries and the white point."""
    xy = np.asarray(primaries, float).reshape(3, 2)
    columns = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    white_xyz = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return columns * np.linalg.solve(columns, white_xyz)


# Published matrices: Adobe RGB (1998) RGB -> XYZ (D65) and sRGB XYZ (D65) -> linear RGB.
ADOBE_TO_XYZ = np.array([[0.5767309, 0.1855540, 0.1881852],
                         [0.2973769, 0.6273491, 0.0752741],
                         [0.0270343, 0.0706872, 0.9911085]])
XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                        [-0.9692660, 1.8760108, 0.0415560],
                        [0.0556434, -0.2040259, 1.0572252]])
D65 = (0.3127, 0.3290)
P3_PRIMARIES = (0.680, 0.320, 0.265, 0.690, 0.150, 0.060)


def s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK input profile whose A2B0 lut sends cyan ink to the *blue* channel.

    Linear sRGB at the lut corners is r = (1-m)(1-k), g = (1-y)(1-k), b = (1-c)(1-k), so a
    correct conversion gives yellow for pure cyan where the plain formula would give cyan.
    """
    srgb_d50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                         [0.2225045, 0.7168786, 0.0606169],
                         [0.0139322, 0.0971045, 0.7141733]])
    clut = []
    for c, m, y, k in np.ndindex(2, 2, 2, 2):  # first input channel varies slowest
        linear = np.array([(1 - m) * (1 - k), (1 - y) * (1 - k), (1 - c) * (1 - k)])
        clut += [min(65535, round(v * 32768)) for v in srgb_d50 @ linear]  # XYZ PCS: 0x8000 is 1.0
    identity = b"".join(s15(float(i == j)) for i in range(3) for j in range(3))
    a2b0 = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + identity + struct.pack(">HH", 2, 2)
            + struct.pack(">8H", *[0, 65535] * 4) + struct.pack(f">{len(clut)}H", *clut)
            + struct.pack(">6H", *[0, 65535] * 3))
    text = b"Test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    wtpt = b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", a2b0)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"scnrCMYKXYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def error_for(source, **kwargs) -> str:
    with pytest.raises(LargestyleError) as caught:
        imageio.read_image(source, "content", **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- failures: one line each ------------------------------------------------------------

def test_missing_file_and_directory(tmp_path):
    assert error_for(tmp_path / "nope.png") == f"content image not found: {tmp_path / 'nope.png'}"
    assert error_for(tmp_path).startswith(f"cannot read content image {tmp_path}: it is a directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    assert "permission denied" in error_for(path)


def test_permission_error_message_even_as_root(tmp_path, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths, "open", refuse, raising=False)  # open_regular calls open
    assert error_for(tmp_path / "secret.png") == (
        f"cannot read content image {tmp_path / 'secret.png'}: permission denied; check the file's permissions")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert error_for(tmp_path / "empty.png") == (
        f"cannot read content image {tmp_path / 'empty.png'}: it is an empty file (0 bytes), not an image file; "
        "re-export or re-download it")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    stream = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(stream, fmt)
    path.write_bytes(stream.getvalue()[: len(stream.getvalue()) // 2])
    message = error_for(path)
    assert message.startswith(f"cannot read content image {path}: the file is corrupt or truncated (")
    assert message.endswith("re-export or re-download it")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    assert error_for(path) == (
        f"cannot read content image {path}: not an image file (or a format Pillow cannot read); use PNG, JPEG or TIFF")


def test_zero_width_png(tmp_path):
    path = tmp_path / "thin.png"
    path.write_bytes(header_only_png(0, 5))
    assert error_for(path) == f"cannot read content image {path}: it has zero width or height (0x5); re-export it"


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (255, 0, 51)).save(tmp_path / "dot.png")
    loaded = imageio.read_image(tmp_path / "dot.png")
    assert loaded.rgb.shape == (3, 1, 1) and loaded.native_size == (1, 1)
    torch.testing.assert_close(loaded.rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.2]))


def test_too_many_pixels_refused_from_the_header(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(header_only_png(100000, 100000))
    start = time.perf_counter()
    assert error_for(path) == (
        f"cannot read content image {path}: it is 100000x100000 px (10000 megapixels), more than "
        "--max-input-pixels 1000000000; raise --max-input-pixels if you mean it")
    with pytest.raises(LargestyleError, match="--max-input-pixels"):
        imageio.probe_size(path)
    assert time.perf_counter() - start < 1.0
    assert Image.MAX_IMAGE_PIXELS is None  # our check replaces Pillow's
    Image.fromarray(noise(48, 64)).save(tmp_path / "small.png")
    assert "more than --max-input-pixels 3000" in error_for(tmp_path / "small.png", max_pixels=3000)


# --- pixel formats -----------------------------------------------------------------------

def test_grey_one_bit_and_palette_images(tmp_path):
    grey = noise(5, 7, 1)[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    loaded = imageio.read_image(tmp_path / "grey.png")
    assert loaded.alpha is None and loaded.bit_depth == 8
    for channel in range(3):
        torch.testing.assert_close(loaded.rgb[channel], torch.from_numpy(grey / np.float32(255)), rtol=0, atol=0)

    Image.fromarray(grey > 128).save(tmp_path / "bits.png")
    torch.testing.assert_close(imageio.load_image(tmp_path / "bits.png")[1],
                               torch.from_numpy((grey > 128).astype(np.float32)))

    palette = Image.frombytes("P", (7, 5), (grey % 4).tobytes())
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    palette.save(tmp_path / "palette.png")
    loaded = imageio.read_image(tmp_path / "palette.png")
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    assert loaded.alpha is None
    torch.testing.assert_close(loaded.rgb, chw(colours[grey % 4]), rtol=0, atol=0)

    palette.save(tmp_path / "palette_t.png", transparency=2)
    loaded = imageio.read_image(tmp_path / "palette_t.png")
    torch.testing.assert_close(loaded.alpha[0], torch.from_numpy((grey % 4 != 2).astype(np.float32)))


def test_alpha_is_kept_exactly(tmp_path):
    rgba = noise(6, 5, 4)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    loaded = imageio.read_image(tmp_path / "rgba.png")
    torch.testing.assert_close(loaded.rgb, chw(rgba[..., :3]), rtol=0, atol=0)
    torch.testing.assert_close(loaded.alpha, chw(rgba[..., 3:]), rtol=0, atol=0)
    torch.testing.assert_close(imageio.load_image(tmp_path / "rgba.png"), loaded.rgb)

    la = noise(6, 5, 2, seed=1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    loaded = imageio.read_image(tmp_path / "la.png")
    torch.testing.assert_close(loaded.rgb, chw(la[..., [0, 0, 0]]), rtol=0, atol=0)
    torch.testing.assert_close(loaded.alpha, chw(la[..., 1:]), rtol=0, atol=0)

    from_array = imageio.read_image(rgba)
    assert torch.equal(from_array.alpha, chw(rgba[..., 3:]))


def test_composite_lays_colours_over_white():
    rgba = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [255, 0, 0, 51]]], np.uint8)
    over = imageio.composite(imageio.read_image(rgba))
    torch.testing.assert_close(over[:, 0, 0], torch.ones(3))
    torch.testing.assert_close(over[:, 0, 1], torch.zeros(3))
    torch.testing.assert_close(over[:, 0, 2], torch.tensor([1.0, 0.8, 0.8]))
    opaque = imageio.read_image(rgba[..., :3])
    assert imageio.composite(opaque) is opaque.rgb


def test_sixteen_bit_pngs_keep_every_sample(tmp_path):
    for channels in (3, 4, 1):
        samples = noise(5, 6, channels, seed=channels, dtype=np.uint16)
        path = tmp_path / f"deep{channels}.png"
        path.write_bytes(imagecodecs.png_encode(samples[..., 0] if channels == 1 else samples))
        loaded = imageio.read_image(path)
        expected = samples.astype(np.float32) / np.float32(65535)  # exactly, not via 8 bits
        colours = expected[..., [0, 0, 0] if channels == 1 else [0, 1, 2]]
        assert loaded.bit_depth == 16
        assert torch.equal(loaded.rgb, torch.from_numpy(np.ascontiguousarray(colours.transpose(2, 0, 1))))
        if channels == 4:
            assert torch.equal(loaded.alpha[0], torch.from_numpy(expected[..., 3]))
        else:
            assert loaded.alpha is None

    keyed = np.full((3, 4), 1000, np.uint16)
    keyed[0, 0] = 7
    Image.fromarray(keyed).save(tmp_path / "keyed.png", transparency=1000)  # 16-bit grey with tRNS
    loaded = imageio.read_image(tmp_path / "keyed.png")
    assert loaded.bit_depth == 16 and loaded.alpha[0, 0, 0] == 1 and loaded.alpha.sum() == 1


def test_sixteen_bit_png_keeps_its_orientation_and_profile(tmp_path):
    samples = noise(4, 6, 3, dtype=np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6
    # Pillow can only write the metadata at 8 bits; splice its chunks into a 16-bit PNG.
    carrier = io.BytesIO()
    Image.new("RGB", (6, 4)).save(carrier, "PNG", exif=exif, icc_profile=imagecodecs.cms_profile("adobergb"))
    meta = _chunks(carrier.getvalue(), {b"eXIf", b"iCCP"})
    deep = imagecodecs.png_encode(samples)
    path = tmp_path / "deep.png"
    path.write_bytes(deep[:33] + meta + deep[33:])
    loaded = imageio.read_image(path)
    assert loaded.rgb.shape == (3, 6, 4) and loaded.bit_depth == 16
    assert any("orientation" in note for note in loaded.notes)
    assert any("Adobe RGB" in note for note in loaded.notes)


def _chunks(png: bytes, kinds: set[bytes]) -> bytes:
    found, position = b"", 8
    while position < len(png):
        length = struct.unpack(">I", png[position:position + 4])[0]
        if png[position + 4:position + 8] in kinds:
            found += png[position:position + 12 + length]
        position += 12 + length
    return found


def test_tiffs_read_with_tifffile_at_full_precision(tmp_path):
    rgb = noise(5, 6, 3, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    loaded = imageio.read_image(tmp_path / "rgb.tif")
    assert loaded.bit_depth == 16 and loaded.alpha is None
    assert torch.equal(loaded.rgb, chw(rgb))

    rgba = noise(5, 6, 4, seed=2, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    loaded = imageio.read_image(tmp_path / "rgba.tif")
    assert torch.equal(loaded.rgb, chw(rgba[..., :3])) and torch.equal(loaded.alpha, chw(rgba[..., 3:]))

    planar = noise(3, 5, 6, seed=3, dtype=np.uint16)[:3]  # (S, Y, X)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    assert torch.equal(imageio.load_image(tmp_path / "planar.tif"), chw(planar.transpose(1, 2, 0)))

    grey = noise(5, 6, 1, seed=4)[..., 0]
    tifffile.imwrite(tmp_path / "grey.tif", grey, photometric="minisblack")
    loaded = imageio.read_image(tmp_path / "grey.tif")
    assert loaded.bit_depth == 8 and torch.equal(loaded.rgb, chw(grey[..., None][..., [0, 0, 0]]))

    colormap = (np.arange(3 * 256).reshape(3, 256) % 256 * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "palette.tif", grey, photometric="palette", colormap=colormap)
    torch.testing.assert_close(imageio.load_image(tmp_path / "palette.tif"), chw(grey[..., None][..., [0, 0, 0]]))

    ink = np.zeros((2, 2, 4), np.uint8)
    ink[0, 1, 3] = 255
    tifffile.imwrite(tmp_path / "cmyk.tif", ink, photometric="separated")
    torch.testing.assert_close(imageio.load_image(tmp_path / "cmyk.tif")[:, 0], torch.tensor([[1.0, 0.0]] * 3))


def test_tiff_orientation_tag_is_applied(tmp_path):
    rgb = noise(4, 6, 3, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "turned.tif", rgb, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    loaded = imageio.read_image(tmp_path / "turned.tif")
    assert loaded.native_size == (4, 6)
    assert torch.equal(loaded.rgb, chw(np.rot90(rgb, -1)))
    assert imageio.probe_size(tmp_path / "turned.tif") == (4, 6)

    bits = noise(4, 6, 1)[..., 0] > 128  # 1-bit: decoded by Pillow, which may orient while loading
    tifffile.imwrite(tmp_path / "bits.tif", bits, photometric="minisblack", extratags=[(274, "H", 1, 6, True)])
    loaded = imageio.read_image(tmp_path / "bits.tif")
    assert loaded.native_size == (4, 6)
    assert torch.equal(loaded.rgb[0], torch.from_numpy(np.rot90(bits, -1).astype(np.float32)))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation(tmp_path, orientation):
    pixels = noise(4, 6, 3, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = Image.fromarray(pixels)
    expected = np.asarray(source.transpose(TRANSPOSES[orientation]) if orientation > 1 else source)
    source.save(tmp_path / "o.png", exif=exif)
    loaded = imageio.read_image(tmp_path / "o.png")
    assert torch.equal(loaded.rgb, chw(expected))
    assert loaded.native_size == expected.shape[1::-1]
    assert imageio.probe_size(tmp_path / "o.png") == expected.shape[1::-1]
    assert (orientation != 1) == any("orientation" in note for note in loaded.notes)
    if orientation == 6:  # 90 degrees clockwise: the bottom-left corner comes to the top left
        assert (expected[0, 0] == pixels[-1, 0]).all()

    smooth_pixels = Image.fromarray(smooth(16, 24))
    smooth_pixels.save(tmp_path / "o.jpg", exif=exif, quality=95)
    expected = np.asarray(smooth_pixels.transpose(TRANSPOSES[orientation]) if orientation > 1 else smooth_pixels)
    assert (imageio.load_image(tmp_path / "o.jpg") - chw(expected)).abs().mean() < 0.03
    assert (imageio.read_image(Image.open(tmp_path / "o.jpg")).rgb - chw(expected)).abs().mean() < 0.03


def test_probe_size_reads_only_the_header(tmp_path, monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (6, 4)).save(tmp_path / "r.jpg", exif=exif)
    Image.new("RGB", (6, 4)).save(tmp_path / "r.png", exif=exif)
    Image.new("RGB", (6, 4)).save(tmp_path / "plain.png")

    def no_decoding(self):
        raise AssertionError("probe_size decoded pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert imageio.probe_size(tmp_path / "r.jpg") == (4, 6)
    assert imageio.probe_size(tmp_path / "r.png") == (4, 6)
    assert imageio.probe_size(tmp_path / "plain.png") == (6, 4)


# --- colour management ------------------------------------------------------------------

COLOURS = np.array([[200, 100, 50], [150, 160, 120], [128, 128, 128], [240, 220, 200], [40, 60, 90]], np.uint8)


def test_adobe_rgb_converted_to_srgb(tmp_path):
    Image.fromarray(COLOURS[None]).save(tmp_path / "adobe.png", icc_profile=imagecodecs.cms_profile("adobergb"))
    loaded = imageio.read_image(tmp_path / "adobe.png")
    linear = (COLOURS / 255.0) ** (563 / 256)
    expected = srgb_encode(linear @ (XYZ_TO_SRGB @ ADOBE_TO_XYZ).T)
    assert (expected > 0).all() and (expected < 1).all()  # in sRGB's gamut
    assert np.abs(loaded.rgb[:, 0].numpy().T - expected).max() < 2 / 255
    assert loaded.notes == ("converted from 'Adobe RGB (compatible)' to sRGB",)


def test_display_p3_converted_to_srgb(tmp_path):
    curve = srgb_decode(np.linspace(0, 1, 4096)).astype(np.float32)  # the sRGB curve, tabulated
    p3 = imagecodecs.cms_profile("rgb", whitepoint=D65, primaries=P3_PRIMARIES, transferfunction=curve)
    Image.fromarray(COLOURS[None]).save(tmp_path / "p3.png", icc_profile=p3)
    loaded = imageio.read_image(tmp_path / "p3.png")
    to_srgb = np.linalg.inv(rgb_to_xyz_matrix((0.64, 0.33, 0.30, 0.60, 0.15, 0.06), D65))
    expected = srgb_encode(srgb_decode(COLOURS / 255.0) @ (to_srgb @ rgb_to_xyz_matrix(P3_PRIMARIES, D65)).T)
    assert (expected > 0).all() and (expected < 1).all()
    assert np.abs(loaded.rgb[:, 0].numpy().T - expected).max() < 2 / 255
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("converted from")


def test_srgb_profile_is_left_alone(tmp_path):
    Image.fromarray(COLOURS[None]).save(tmp_path / "s.png", icc_profile=imagecodecs.cms_profile("srgb"))
    loaded = imageio.read_image(tmp_path / "s.png")
    assert torch.equal(loaded.rgb, chw(COLOURS[None])) and loaded.notes == ()


def test_bad_profiles_fall_back_to_srgb(tmp_path):
    adobe = imagecodecs.cms_profile("adobergb")
    cases = {"junk": b"not a colour profile" * 8, "gray": imagecodecs.cms_profile("gray", gamma=2.2),
             "cut": adobe[:140]}
    for name, profile in cases.items():
        Image.fromarray(COLOURS[None]).save(tmp_path / f"{name}.png", icc_profile=profile)
        loaded = imageio.read_image(tmp_path / f"{name}.png")
        assert torch.equal(loaded.rgb, chw(COLOURS[None])), name
        assert len(loaded.notes) == 1 and "pixels taken as sRGB" in loaded.notes[0], (name, loaded.notes)


def test_grey_profile_applies_to_grey_images(tmp_path):
    grey = np.array([[0, 64, 128, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png", icc_profile=imagecodecs.cms_profile("gray", gamma=1.0))
    loaded = imageio.read_image(tmp_path / "g.png")
    expected = srgb_encode(grey[0] / 255.0)  # linear grey, encoded for sRGB
    assert np.abs(loaded.rgb[:, 0].numpy() - expected).max() < 2 / 255


def test_cmyk_jpegs(tmp_path):
    inks = [(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0), (0, 255, 0, 0), (128, 0, 0, 0)]
    image = Image.new("CMYK", (8 * len(inks), 8))
    for index, ink in enumerate(inks):  # whole 8x8 blocks so JPEG keeps each colour
        image.paste(ink, (8 * index, 0, 8 * index + 8, 8))
    image.save(tmp_path / "plain.jpg", quality=100)
    loaded = imageio.read_image(tmp_path / "plain.jpg")
    got = loaded.rgb[:, 4, 4::8].numpy().T
    expected = [[1, 1, 1], [0, 0, 0], [0, 1, 1], [1, 0, 1], [127 / 255, 1, 1]]
    assert np.abs(got - expected).max() < 3 / 255
    assert "without a colour profile" in loaded.notes[0]

    # With a profile: this one sends cyan ink to blue, so pure cyan comes out yellow.
    image.save(tmp_path / "profiled.jpg", quality=100, icc_profile=cmyk_profile())
    loaded = imageio.read_image(tmp_path / "profiled.jpg")
    got = loaded.rgb[:, 4, 4::8].numpy().T
    expected = [[1, 1, 1], [0, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, srgb_encode(127 / 255)]]
    assert np.abs(got - expected).max() < 3 / 255
    assert loaded.notes == ("converted from 'Test CMYK' to sRGB",)


def test_sixteen_bit_profile_conversion_keeps_its_precision(tmp_path):
    ramp = np.linspace(0, 65535, 4096).round().astype(np.uint16)
    pixels = np.stack([ramp, ramp[::-1], ramp], axis=-1)[None]
    tifffile.imwrite(tmp_path / "ramp.tif", pixels, photometric="rgb", iccprofile=imagecodecs.cms_profile("adobergb"))
    loaded = imageio.read_image(tmp_path / "ramp.tif")
    assert loaded.bit_depth == 16 and "Adobe RGB" in loaded.notes[0]
    assert len(np.unique(loaded.rgb[1].numpy())) > 1000


# --- downscale on load ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["small.png", "small.jpg", "deep.png", "deep.tif", "alpha.png"])
def test_downscale_on_load(tmp_path, name, monkeypatch):
    pixels = smooth(48, 64)
    path = tmp_path / name
    if name.startswith("deep"):
        pixels = pixels.astype(np.uint16) * 257
        if name.endswith(".png"):
            path.write_bytes(imagecodecs.png_encode(pixels))
        else:
            tifffile.imwrite(path, pixels, photometric="rgb")
    elif name.startswith("alpha"):
        pixels = np.concatenate([pixels, pixels[..., :1]], axis=2)
        Image.fromarray(pixels, "RGBA").save(path)
    else:
        Image.fromarray(pixels).save(path, quality=95)
    full = imageio.read_image(path)

    sizes = []
    real_to_srgb = imageio.to_srgb

    def recording_to_srgb(pixels, *args):
        sizes.append(pixels.shape[:2])
        return real_to_srgb(pixels, *args)

    monkeypatch.setattr(imageio, "to_srgb", recording_to_srgb)
    small = imageio.read_image(path, max_long_side=16)
    assert small.rgb.shape == (3, 12, 16) and small.native_size == (64, 48)
    assert sizes == [(12, 16)]  # reduced before any float conversion
    assert small.notes[-1] == "downscaled on load from 64x48 to 16x12"
    assert (small.rgb - pyramid.resize(full.rgb[None], (12, 16))[0]).abs().mean() < 0.05
    if full.alpha is not None:
        assert small.alpha.shape == (1, 12, 16)
        assert (small.alpha - pyramid.resize(full.alpha[None], (12, 16))[0]).abs().mean() < 0.05
    assert imageio.read_image(path, max_long_side=64).notes == full.notes


def test_downscale_uneven_sizes_and_orientation(tmp_path):
    pixels = noise(30, 50, 3, dtype=np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = imageio.read_image(pixels, max_long_side=20)
    assert loaded.rgb.shape == (3, 12, 20) and loaded.bit_depth == 16
    Image.fromarray(smooth(30, 50)).save(tmp_path / "turned.jpg", exif=exif)
    loaded = imageio.read_image(tmp_path / "turned.jpg", max_long_side=20)
    assert loaded.rgb.shape == (3, 20, 12) and loaded.native_size == (30, 50)
    assert imageio.read_image(np.zeros((7, 3), np.uint8), max_long_side=2).rgb.shape == (3, 2, 1)


def test_profile_names():
    assert colour.profile_name(imagecodecs.cms_profile("srgb")) == "sRGB built-in"
    assert colour.profile_name(imagecodecs.cms_profile("adobergb")) == "Adobe RGB (compatible)"
    assert colour.profile_name(b"short") is None
