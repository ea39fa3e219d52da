"""Saving output images: exact pixels, DPI, sRGB profile, alpha, BigTIFF and atomic failures."""

import io
import os

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, JpegImagePlugin

from largestyle.io import write as imagesave
from largestyle.core.errors import LargestyleError
from largestyle.io.write import check_output_path, needs_bigtiff, save_image, srgb_profile

LOSSLESS = [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".tiff", 16)]
EVERY = LOSSLESS + [(".jpg", 8), (".jpeg", 8)]


def _image(height=6, width=9, seed=0):
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


def _expected(planes, bit_depth):
    """(C, H, W) floats as the (H, W, C) integers the file must hold."""
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scale = 255 if bit_depth == 8 else 65535
    return np.round(planes.clamp(0, 1).numpy() * scale).astype(dtype).transpose(1, 2, 0)


def _read(path):
    """Stored pixels, (H, W, C), at their stored bit depth."""
    if path.suffix in (".tif", ".tiff"):
        return tifffile.imread(path)
    if path.suffix == ".png":
        return imagecodecs.png_decode(path.read_bytes())
    return np.asarray(Image.open(path))


def _no_temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("suffix,bit_depth", LOSSLESS)
def test_lossless_formats_round_trip_exactly(tmp_path, suffix, bit_depth):
    image = _image()
    image[:, 0, 0] = torch.tensor([-0.5, 1.5, 0.5])  # clamped before rounding
    path = save_image(image, tmp_path / f"out{suffix}", bit_depth=bit_depth)
    stored = _read(path)
    assert stored.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    np.testing.assert_array_equal(stored, _expected(image, bit_depth))
    assert _no_temporaries(tmp_path)


def test_jpeg_is_close_and_not_chroma_subsampled(tmp_path):
    image = torch.linspace(0, 1, 32).expand(3, 32, 32).clone()
    image[1] = image[1].T.clone()
    path = save_image(image, tmp_path / "out.jpg")
    with Image.open(path) as read:
        assert JpegImagePlugin.get_sampling(read) == 0  # 4:4:4
        error = np.abs(np.asarray(read, np.float64) - _expected(image, 8)).mean()
    assert error < 2


@pytest.mark.parametrize("suffix,bit_depth", EVERY)
def test_dpi_and_srgb_profile_are_written(tmp_path, suffix, bit_depth):
    path = save_image(_image(), tmp_path / f"out{suffix}", bit_depth=bit_depth, dpi=240)
    if suffix in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            assert tags["XResolution"].value == tags["YResolution"].value
            numerator, denominator = tags["XResolution"].value
            assert numerator / denominator == 240
            assert tags["ResolutionUnit"].value == tifffile.RESUNIT.INCH
            profile = tags[34675].value
    else:
        with Image.open(path) as read:
            read.verify()  # chunk CRCs, including the ones spliced into 16-bit PNGs
        with Image.open(path) as read:
            assert tuple(round(v) for v in read.info["dpi"]) == (240, 240)
            profile = read.info["icc_profile"]
    assert profile == srgb_profile()
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    assert "sRGB" in description


@pytest.mark.parametrize("suffix,bit_depth", LOSSLESS)
def test_alpha_is_kept_exactly(tmp_path, suffix, bit_depth):
    image, alpha = _image(), torch.rand(1, 6, 9)
    alpha[0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])
    path = save_image(image, tmp_path / f"out{suffix}", alpha=alpha[0] if suffix == ".tiff" else alpha,
                      bit_depth=bit_depth)
    stored = _read(path)
    assert stored.shape == (6, 9, 4)
    np.testing.assert_array_equal(stored, _expected(torch.cat([image, alpha]), bit_depth))
    if suffix != ".png":
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)


def test_jpeg_alpha_is_composited_over_white(tmp_path):
    image = torch.zeros(3, 8, 8)
    alpha = torch.ones(8, 8)
    alpha[:, :4] = 0  # left half transparent black -> white
    path = save_image(image, tmp_path / "out.jpg", alpha=alpha)
    with Image.open(path) as read:
        assert read.mode == "RGB"
        pixels = np.asarray(read, np.int16)
    assert pixels[:, :2].min() >= 250 and pixels[:, -2:].max() <= 5


def test_bigtiff_only_past_the_threshold(tmp_path, monkeypatch):
    assert not needs_bigtiff(20_000, 30_000, 3, 2)  # 3.6 GB
    assert needs_bigtiff(30_000, 30_000, 3, 2)
    normal = save_image(_image(), tmp_path / "normal.tif", bit_depth=16)
    with tifffile.TiffFile(normal) as tif:
        assert not tif.is_bigtiff
    monkeypatch.setattr(imagesave, "BIGTIFF_THRESHOLD", 100)
    big = save_image(_image(), tmp_path / "big.tif", bit_depth=16)
    with tifffile.TiffFile(big) as tif:
        assert tif.is_bigtiff
    np.testing.assert_array_equal(tifffile.imread(big), _expected(_image(), 16))


def _one_line_error(path, **options):
    with pytest.raises(LargestyleError) as caught:
        check_output_path(path, **options)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot write {path}: ")
    return message


def test_check_output_path_refuses_what_cannot_be_written(tmp_path):
    assert ".png, .jpg, .jpeg, .tif, .tiff" in _one_line_error(tmp_path / "out.gif")
    assert "'(none)'" in _one_line_error(tmp_path / "out")
    assert "use .tif or .png for --bit-depth 16" in _one_line_error(tmp_path / "out.JPG", bit_depth=16)
    assert "does not exist" in _one_line_error(tmp_path / "missing" / "out.png")
    (tmp_path / "folder.png").mkdir()
    assert "directory" in _one_line_error(tmp_path / "folder.png")
    assert check_output_path(tmp_path / "out.TIF", bit_depth=16) == tmp_path / "out.TIF"
    assert check_output_path(str(tmp_path / "out.jpeg")) == tmp_path / "out.jpeg"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_check_output_path_refuses_unwritable_places(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    read_only = tmp_path / "read-only.png"
    read_only.write_bytes(b"old")
    read_only.chmod(0o444)
    try:
        assert "permission denied" in _one_line_error(locked / "out.png")
        assert "permission denied" in _one_line_error(read_only)
    finally:
        locked.chmod(0o755)


def test_save_refuses_16_bit_jpeg(tmp_path):
    with pytest.raises(LargestyleError, match="JPEG holds 8 bits"):
        save_image(_image(), tmp_path / "out.jpg", bit_depth=16)
    assert list(tmp_path.iterdir()) == []


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("suffix,bit_depth,encoder", [
    (".png", 8, (Image.Image, "save")),
    (".png", 16, (imagecodecs, "png_encode")),
    (".tif", 16, (tifffile, "imwrite")),
    (".jpg", 8, (Image.Image, "save")),
])
def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, suffix, bit_depth, encoder):
    path = save_image(_image(seed=1), tmp_path / f"out{suffix}", bit_depth=bit_depth)
    before = path.read_bytes()
    monkeypatch.setattr(*encoder, _disk_full)
    with pytest.raises(LargestyleError) as caught:
        save_image(_image(seed=2), path, bit_depth=bit_depth)
    assert str(caught.value).startswith(f"cannot write {path}: the disk is full; nothing was written there")
    assert path.read_bytes() == before
    assert _no_temporaries(tmp_path)


def test_pil_images_and_arrays_are_accepted(tmp_path):
    rgb8 = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_read(save_image(Image.fromarray(rgb8), tmp_path / "pil.png")), rgb8)
    np.testing.assert_array_equal(_read(save_image(rgb8, tmp_path / "array.tif")), rgb8)
    np.testing.assert_array_equal(_read(save_image(rgb8, tmp_path / "wide.png", bit_depth=16)),
                                  rgb8.astype(np.uint16) * 257)


def test_caller_tensor_is_not_modified(tmp_path):
    image = _image() * 2 - 0.5
    copy = image.clone()
    save_image(image, tmp_path / "out.png", alpha=torch.rand(6, 9))
    assert torch.equal(image, copy)
