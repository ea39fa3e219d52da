"""Image loading from every accepted source, and atomic saving."""

import numpy as np
import pytest
import torch
from PIL import Image

from largestyle import imageio
from largestyle.errors import LargestyleError


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


def test_round_trip_png_exact(tmp_path):
    pixels = torch.rand(3, 9, 11)
    imageio.save_image(pixels, tmp_path / "x.png")
    torch.testing.assert_close(imageio.load_image(tmp_path / "x.png"), (pixels * 255).round() / 255)


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous render")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(LargestyleError, match="No space left on device"):
        imageio.save_image(torch.rand(3, 4, 4), target)
    assert target.read_bytes() == b"previous render"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
