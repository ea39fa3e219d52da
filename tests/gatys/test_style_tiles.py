"""Style Gram matrices summed over halo windows equal the untiled ones."""

import pytest
import torch

import largestyle.gatys.targets as targets_module
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.core.vgg import halo
from largestyle.gatys.targets import style_targets
from largestyle.geometry.tiling import halo_tiles

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def relative_error(a, b):
    return max(float((a[k] - b[k]).abs().max() / a[k].abs().max()) for k in a)


def test_halo_comes_from_the_receptive_field():
    assert halo(LAYERS) == 80  # relu5_1: 156 px field, radius 78, rounded up to its stride 16
    assert halo(("relu1_1",)) == 16 and halo(("relu4_1",)) == 48  # 68 px field, radius 34


def test_cores_partition_the_image():
    seen = torch.zeros(37, 53, dtype=torch.int64)
    for tile in halo_tiles(37, 53, 16, 32):
        top, left, bottom, right = tile.core
        seen[top:bottom, left:right] += 1
        assert tile.window[0] % 16 == 0 and tile.window[1] % 16 == 0
    assert bool((seen == 1).all())
    with pytest.raises(ValueError):
        halo_tiles(37, 53, 24, 32)


@pytest.mark.parametrize("shape", [(150, 131), (97, 120)])
@pytest.mark.parametrize("core", [32, 64])
def test_tiled_gram_equals_untiled_in_float64(network, shape, core):
    image = torch.rand(1, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(core))
    whole = style_targets(network, image, LAYERS)
    tiled = style_targets(network, image, LAYERS, core=core)
    assert relative_error(whole, tiled) < 1e-10
    short = style_targets(network, image, LAYERS, core=core, context=32)
    assert relative_error(whole, short) > 1e-4  # too little context shows: the test can fail


def test_engine_tiles_the_style_forward_when_over_budget(monkeypatch):
    cores = []
    real = targets_module.style_targets

    def spy(network, image, layers, core=None):
        cores.append(core)
        return real(network, image, layers, core)

    monkeypatch.setattr(targets_module, "style_targets", spy)
    style = torch.rand(3, 64, 64)
    for budget in ("1MB", None):
        config = make_config(target_size=64, iterations=1, first_level_factor=1, max_memory=budget, tile_size=32)
        Engine(config).render(torch.rand(3, 48, 64), style)
    assert cores == [16, None]
