"""Colour preservation: histogram matching of the style, luminance transfer in YIQ, in bands of rows."""

import numpy as np
import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.geometry.pyramid import crop, output_frame, resize
from largestyle.imaging.colours import (colour_statistics, match_colours, rgb_to_yiq, transfer_luminance,
                                        yiq_to_rgb)
from largestyle.imaging.finish import finish_output


def mixed(height, width, seed, low=0.2, high=0.8):
    """(3, H, W) float32 in [low, high] with correlated channels, so its covariance is not diagonal."""
    rng = np.random.default_rng(seed)
    base = rng.random((3, height, width))
    mixing = rng.random((3, 3)) + np.eye(3)
    pixels = np.einsum("ij,jhw->ihw", mixing / mixing.sum(1, keepdims=True), base)
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    return torch.from_numpy(low + (high - low) * pixels).float()


def test_histogram_matching_gives_the_content_mean_and_covariance():
    style, content = mixed(40, 56, seed=1), mixed(48, 64, seed=2, low=0.3, high=0.7)
    matched = match_colours(style, content)
    assert 0 < matched.min() and matched.max() < 1  # nothing clamped, so the statistics are the map's own
    mean, covariance = colour_statistics(matched)
    content_mean, content_covariance = colour_statistics(content)
    style_mean, style_covariance = colour_statistics(style)
    assert np.abs(mean - content_mean).max() < 1e-4
    assert np.abs(covariance - content_covariance).max() < 1e-4
    assert np.abs(style_covariance - content_covariance).max() > 5e-3  # there was something to match
    assert np.abs(style_mean - content_mean).max() > 1e-2


def test_colour_statistics_equal_numpy():
    image = mixed(30, 20, seed=3)
    flat = image.double().reshape(3, -1).numpy()
    mean, covariance = colour_statistics(image)
    assert np.allclose(mean, flat.mean(1), atol=1e-12)
    assert np.allclose(covariance, np.cov(flat, bias=True), atol=1e-12)


def test_histogram_matching_keeps_shape_device_and_inputs_and_survives_a_grey_style():
    style, content = mixed(24, 32, seed=4)[None], mixed(20, 20, seed=5)
    before = style.clone()
    matched = match_colours(style, content)
    assert matched.shape == style.shape and matched.dtype == style.dtype and torch.equal(style, before)
    grey = mixed(24, 32, seed=6)[:1].expand(3, -1, -1).contiguous()  # R = G = B: a singular covariance
    flat = torch.full((3, 8, 8), 0.4)
    for odd in (match_colours(grey, content), match_colours(flat, content), match_colours(content, flat)):
        assert torch.isfinite(odd).all() and 0 <= odd.min() and odd.max() <= 1
    assert torch.allclose(match_colours(content, flat), flat[:, :1, :1].expand(3, 20, 20), atol=1e-6)


def test_yiq_round_trip_and_grey_has_no_chroma():
    image = mixed(16, 16, seed=7)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-6)
    grey = torch.full((3, 4, 4), 0.25)
    yiq = rgb_to_yiq(grey)
    assert torch.allclose(yiq[0], torch.full((4, 4), 0.25)) and yiq[1:].abs().max() < 1e-7


def test_luminance_transfer_keeps_the_render_luminance_and_the_content_chroma():
    render, content = mixed(36, 52, 8, 0.4, 0.6), mixed(36, 52, 9, 0.4, 0.6)
    result = transfer_luminance(render.clone(), content)
    assert 0 < result.min() and result.max() < 1  # nothing clamped
    out, wanted_y, wanted_iq = rgb_to_yiq(result), rgb_to_yiq(render)[0], rgb_to_yiq(content)[1:]
    assert (out[0] - wanted_y).abs().max() < 1e-5
    assert (out[1:] - wanted_iq).abs().max() < 1e-5
    assert (rgb_to_yiq(render)[1:] - wanted_iq).abs().max() > 0.05  # the render's own chroma was different


@pytest.mark.parametrize("chunk", [1, 3 * 52 + 5, 10 ** 9], ids=["row", "rows", "whole"])
def test_bands_of_rows_give_the_same_bits(chunk):
    style, content, render = mixed(37, 52, seed=10), mixed(41, 52, seed=11), mixed(37, 52, seed=12)
    reference = match_colours(style, content, chunk_pixels=10 ** 9)
    assert torch.equal(match_colours(style, content, chunk_pixels=chunk), reference)
    whole = colour_statistics(style, chunk_pixels=10 ** 9)
    banded = colour_statistics(style, chunk_pixels=chunk)
    assert np.array_equal(whole[0], banded[0]) and np.array_equal(whole[1], banded[1])
    lum = transfer_luminance(render.clone(), content[:, :37], chunk_pixels=10 ** 9)
    assert torch.equal(transfer_luminance(render.clone(), content[:, :37], chunk_pixels=chunk), lum)


@pytest.mark.parametrize("options, content_shape", [
    (dict(target_size=64), (30, 40)),  # content enlarged to the output
    (dict(print_size="1x1in", dpi=48, print_fit="crop"), (40, 60)),  # centre cropped, then resized
], ids=["resized", "print-crop"])
def test_finishing_takes_the_chroma_of_the_content_as_the_engine_frames_it(options, content_shape):
    config = make_config(preserve_colors="luminance", **options)
    content = mixed(*content_shape, seed=13)
    shape, box = output_frame(config, *content_shape)
    render = mixed(*shape, seed=14)
    framed = resize(crop(content[None], box), shape)[0]
    assert torch.equal(finish_output(render.clone(), content, config), transfer_luminance(render.clone(), framed))
    with pytest.raises(ValueError, match="output frame"):
        finish_output(mixed(10, 10, seed=15), content, config)


def test_finishing_does_nothing_unless_asked():
    render = mixed(20, 30, seed=16)
    assert torch.equal(finish_output(render.clone(), mixed(20, 30, seed=17), make_config(target_size=30)), render)
