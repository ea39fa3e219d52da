"""Tiled total-variation denoising: its tiles and weights, in place in bands, and its bound against untiled."""

import numpy as np
import pytest
import torch
from skimage.restoration import denoise_tv_chambolle

from largestyle.imaging.denoise import denoise_tile, feather, remove_noise, spans


def noisy(height, width, kind, seed=0):
    """(3, H, W) float32 test images: uniform noise, smooth colours with noise, 8 px blocks with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == "uniform":
        image = rng.random((height, width, 3))
    elif kind == "smooth":
        smooth = np.stack([0.5 + 0.3 * np.sin(7 * x + 3 * y), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.4 * x * y], -1)
        image = smooth + 0.1 * rng.standard_normal((height, width, 3))
    else:
        blocks = np.kron(rng.random((height // 8 + 1, width // 8 + 1, 3)), np.ones((8, 8, 1)))[:height, :width]
        image = blocks + 0.05 * rng.standard_normal((height, width, 3))
    return torch.from_numpy(np.clip(image, 0, 1).astype(np.float32)).permute(2, 0, 1).contiguous()


def untiled(image, weight):
    array = image.permute(1, 2, 0).numpy()
    return torch.from_numpy(np.clip(denoise_tv_chambolle(array, weight=weight, channel_axis=-1), 0, 1)).permute(2, 0, 1)


@pytest.mark.parametrize("length, tile, overlap", [(100, 32, 8), (96, 48, 16), (97, 48, 16), (40, 48, 16), (64, 32, 0)])
def test_tiles_cover_the_axis_and_their_weights_sum_to_one(length, tile, overlap):
    tile_spans = spans(length, tile, overlap)
    assert tile_spans[0][0] == 0 and tile_spans[-1][1] == length
    assert all(stop - start == min(tile, length) for start, stop in tile_spans)
    assert all(b[0] <= a[1] - overlap for a, b in zip(tile_spans, tile_spans[1:]))  # overlap at least `overlap`
    total = torch.zeros(length, dtype=torch.float64)
    for (start, stop), weight in zip(tile_spans, feather(length, tile_spans, overlap)):
        assert (weight > 0).all()
        total[start:stop] += weight.double()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-6)


def test_an_image_within_one_tile_is_denoised_as_untiled():
    image = noisy(40, 56, "smooth")
    expected = untiled(image, 0.1)
    result = remove_noise(image, 0.1, tile=64, overlap=16)
    assert result is image and torch.equal(image, expected)


def test_tiles_read_the_input_although_rows_are_written_back_in_place():
    """The in-place band scheme gives the same bits as blending every tile of an untouched copy."""
    image, tile, overlap, weight = noisy(90, 70, "blocks"), 32, 8, 0.1
    rows, cols = spans(90, tile, overlap), spans(70, tile, overlap)
    canvas = torch.zeros(3, 90, 70)
    for (top, bottom), row_weight in zip(rows, feather(90, rows, overlap)):
        for (left, right), col_weight in zip(cols, feather(70, cols, overlap)):
            tile_pixels = denoise_tile(image[:, top:bottom, left:right], weight)
            canvas[:, top:bottom, left:right] += tile_pixels * row_weight[:, None] * col_weight
    assert torch.equal(remove_noise(image.clone(), weight, tile, overlap), canvas.clamp(0, 1))


@pytest.mark.parametrize("height, width, tile, overlap", [(96, 128, 48, 16), (128, 128, 32, 16)])
@pytest.mark.parametrize("kind", ["uniform", "smooth", "blocks"])
def test_tiled_is_close_to_untiled_within_the_stated_bound(height, width, tile, overlap, kind):
    """The bounds in largestyle/imaging/denoise.py's docstring."""
    for weight, most, mean in ((0.01, 0.005, 0.001), (0.02, 0.005, 0.001), (0.1, 0.1, 0.01), (0.5, 0.1, 0.01)):
        image = noisy(height, width, kind)
        expected = untiled(image, weight)
        difference = (remove_noise(image, weight, tile, overlap) - expected).abs()
        assert difference.max() <= most and difference.mean() <= mean, (weight, difference.max(), difference.mean())
        assert (expected - noisy(height, width, kind)).abs().mean() > 10 * difference.mean()  # it did denoise
