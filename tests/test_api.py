"""The Python API and the engine's behaviour seen through it."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import largestyle
from largestyle.engine import events as ev
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.geometry.tiling import BlendGrid

FAST = dict(iterations=3, first_level_factor=1)
README = Path(__file__).resolve().parent.parent / "README.md"


def smooth_image(height, width, seed=0):
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = np.random.default_rng(seed).uniform(0, 6, 3)
    return np.stack([0.5 + 0.4 * np.sin(7 * x + 3 * y + p) for p in phase], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def content():
    return smooth_image(40, 60)


@pytest.fixture(scope="module")
def style():
    return (np.random.default_rng(1).uniform(0, 1, (32, 32, 3)) * 255).astype(np.uint8)


def test_render_from_arrays_pil_and_paths(content, style, tmp_path):
    with pytest.warns(largestyle.LargestyleWarning, match="RANDOM"):
        image = largestyle.render(content, Image.fromarray(style), target_size=48, **FAST)
    assert isinstance(image, Image.Image) and image.size == (48, 32) and image.mode == "RGB"
    content_path = tmp_path / "c.png"
    Image.fromarray((content * 255).astype(np.uint8)).save(content_path)
    with pytest.warns(largestyle.LargestyleWarning):
        array = largestyle.render(str(content_path), style, target_size=48, output="array", **FAST)
    assert array.shape == (32, 48, 3) and array.dtype == np.float32
    assert 0.0 <= array.min() and array.max() <= 1.0


def test_transparent_content_gives_rgba_unless_composited(content, style):
    rgba = np.concatenate([content, np.linspace(0, 1, 60, dtype=np.float32)[None, :, None].repeat(40, 0)], axis=2)
    with pytest.warns(largestyle.LargestyleWarning):
        image = largestyle.render(rgba, style, target_size=48, **FAST)
    assert image.mode == "RGBA" and image.size == (48, 32)
    alpha = np.asarray(image)[..., 3]
    assert alpha[:, 0].max() < 10 and alpha[:, -1].min() > 245  # the ramp, resized to the output
    with pytest.warns(largestyle.LargestyleWarning):
        tensor = largestyle.render(rgba, style, target_size=48, output="tensor", alpha="composite", **FAST)
    assert tensor.shape == (3, 32, 48)


def test_progress_events_cover_the_plan(content, style):
    seen = []
    with pytest.warns(largestyle.LargestyleWarning):
        largestyle.render(content, style, target_size=64, progress=seen.append, max_memory="1MB",
                          tile_size=32, passes=2, **FAST)
    started = next(e for e in seen if isinstance(e, ev.RenderStarted))
    assert isinstance(seen[-1], ev.RenderFinished)
    (level,) = started.levels
    assert level.mode == "blend" and level.passes == 2
    evaluations = sum(isinstance(e, ev.Evaluation) for e in seen)
    skipped = sum(e.skipped for e in seen if isinstance(e, ev.OptimisationFinished))
    assert evaluations + skipped == started.total_evaluations == seen[-1].evaluations + skipped
    tiles = [e for e in seen if isinstance(e, ev.TileStarted)]
    assert len(tiles) == sum(level.tiles_per_pass)


def test_unknown_option_is_a_clear_error(content, style):
    with pytest.raises(largestyle.LargestyleError, match="unknown option.*stlye_weight"):
        largestyle.render(content, style, target_size=48, stlye_weight=3)


def render_tensor(content, style, **options):
    config = make_config(**{**FAST, **options})
    return Engine(config).render(largestyle.load_image(content), largestyle.load_image(style))


def test_tile_as_large_as_the_image_gives_the_untiled_result(content, style):
    whole = render_tensor(content, style, target_size=64)
    one_tile = render_tensor(content, style, target_size=64, max_memory="1MB", tile_size=64)
    # The tiny budget also makes the style Gram be summed over windows: equal up to float32 rounding.
    torch.testing.assert_close(one_tile, whole, rtol=0, atol=1e-4)
    tiled = render_tensor(content, style, target_size=64, max_memory="1MB", tile_size=32, passes=1)
    assert tiled.shape == whole.shape and float((tiled - whole).abs().max()) > 1e-3


def test_each_tile_gets_its_own_content_target(content, style, monkeypatch):
    """The original tiler froze every tile's content target to the first tile's."""
    import largestyle.gatys.targets as targets_module
    from largestyle.geometry.pyramid import resize

    seen = []
    original = targets_module.content_targets

    def spy(network, image, layers):
        seen.append(image.clone())
        return original(network, image, layers)

    monkeypatch.setattr(targets_module, "content_targets", spy)
    render_tensor(content, style, target_size=64, max_memory="1MB", tile_size=32, passes=1)
    level_content = resize(largestyle.load_image(content)[None], (43, 64))
    grid = BlendGrid.plan(43, 64, 32)
    padded = grid.pad(level_content)
    assert len(seen) == len(grid.tiles) > 1
    for tile, image in zip(grid.tiles, seen):
        torch.testing.assert_close(image, grid.cut(padded, tile))
    assert not torch.equal(seen[0], seen[-1])


def test_noise_init_is_seeded(content, style):
    a = render_tensor(content, style, target_size=48, init="noise", seed=3)
    b = render_tensor(content, style, target_size=48, init="noise", seed=3)
    c = render_tensor(content, style, target_size=48, init="noise", seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_pyramid_render_has_exact_target_size(content, style):
    seen = []
    config = make_config(target_size=450, iterations=1, first_level_factor=1)
    image = Engine(config, seen.append).render(largestyle.load_image(content), largestyle.load_image(style))
    levels = next(e for e in seen if isinstance(e, ev.RenderStarted)).levels
    assert [(lv.height, lv.width) for lv in levels] == [(150, 225), (300, 450)]
    assert tuple(image.shape) == (3, 300, 450)


def test_readme_example_runs(tmp_path, monkeypatch):
    """Runs the README's Python example as written, with sizes shrunk to keep the suite fast."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    smooth = (smooth_image(30, 45) * 255).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "photo.jpg")
    Image.fromarray(smooth[:, ::-1]).save(tmp_path / "painting.jpg")
    Image.fromarray(smooth[::-1]).save(tmp_path / "starry.jpg")
    Image.fromarray(smooth[::-1, ::-1]).save(tmp_path / "scream.jpg")
    real_render = largestyle.render
    monkeypatch.setattr(largestyle, "render", lambda *a, **k: real_render(*a, **{**k, "target_size": 48, **FAST}))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(largestyle.LargestyleWarning):
        exec(compile(code, str(README), "exec"), {})
    assert Image.open(tmp_path / "photo-styled.png").size == (48, 32)


def test_tile_size_over_budget_is_announced(content, style):
    seen = []
    config = make_config(target_size=64, max_memory="1MB", tile_size=32, passes=1, **FAST)
    Engine(config, seen.append).render(largestyle.load_image(content), largestyle.load_image(style))
    notices = [e for e in seen if isinstance(e, ev.Notice) and e.kind == "tile-over-budget"]
    assert len(notices) == 1 and "32 px tiles need about" in notices[0].message
    seen.clear()
    Engine(make_config(target_size=64, **FAST), seen.append).render(
        largestyle.load_image(content), largestyle.load_image(style))
    assert not [e for e in seen if isinstance(e, ev.Notice) and e.kind == "tile-over-budget"]


def test_extreme_aspect_content_is_a_clear_error():
    with pytest.raises(largestyle.LargestyleError, match="at least 16 px on the short side"):
        render_tensor(smooth_image(6, 90), smooth_image(32, 32), target_size=64)


def test_thin_style_image_and_tiny_style_scale_still_work(content):
    thin = smooth_image(5, 200)
    for scale in (1.0, 0.05):
        image = render_tensor(content, thin, target_size=48, style_scale=scale, iterations=1)
        assert tuple(image.shape) == (3, 32, 48)


@pytest.mark.parametrize("tiling", ["blend", "exact"])
def test_out_of_memory_in_a_tile_shrinks_the_tiles_and_finishes(content, style, monkeypatch, tiling):
    from largestyle.network.vgg import VGG19Features

    largest = []
    real = VGG19Features.walk

    def flaky(self, inputs, visit, until=None):
        pixels = inputs[0].shape[-1] * inputs[0].shape[-2]
        if torch.is_grad_enabled():  # back-propagated evaluations over 50x50 px "run out of memory"
            if pixels > 50 * 50:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            largest.append(pixels)
        return real(self, inputs, visit, until)

    seen = []
    shallow = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))  # a 16 px halo
    config = make_config(target_size=64, tiling=tiling, **shallow, **FAST)
    Engine(config).memory  # the memory calibration runs before the failures are injected
    monkeypatch.setattr(VGG19Features, "walk", flaky)
    image = Engine(config, seen.append).render(largestyle.load_image(content), largestyle.load_image(style))
    notices = [e.message for e in seen if isinstance(e, ev.Notice) and e.kind == "out-of-memory"]
    assert notices and "out of memory with the whole level" in notices[0] and "retrying with 32 px" in notices[0]
    assert tuple(image.shape) == (3, 43, 64) and largest and max(largest) <= 50 * 50
