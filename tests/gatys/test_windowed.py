"""Exact tiling: tiled loss and gradient equal the untiled ones."""


import pytest
import torch

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.gatys.windowed import TiledObjective
from largestyle.network.vgg import VGG19Features
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.network.weights import randomise


def images(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, *shape, dtype=torch.float64, generator=generator) for _ in range(3)]


def both(network, shape, core, context=None, seed=0):
    config = make_config()
    image, content, style = images(shape, seed)
    targets = style_targets(network, style, config.style_layers)
    whole = Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers), targets)
    tiled = TiledObjective(network, resolve_loss_weights(config), content, targets, core, context)
    return whole.value_and_grad(image), tiled.value_and_grad(image), tiled


@pytest.mark.parametrize("shape, core", [((150, 131), 48), ((97, 120), 32), ((150, 131), 96)])
def test_tiled_gradient_equals_untiled_in_float64(network, shape, core):
    (whole_terms, whole_grad), (tiled_terms, tiled_grad), tiled = both(network, shape, core)
    assert len(tiled.tiles) > 1
    error = float((tiled_grad - whole_grad).abs().max() / whole_grad.abs().max())
    assert error < 1e-10
    for name in ("total", "content", "style", "tv"):
        assert getattr(tiled_terms, name) == pytest.approx(getattr(whole_terms, name), rel=1e-10)


def test_too_small_a_halo_shows(network):
    (_, whole_grad), (_, tiled_grad), _ = both(network, (150, 131), 48, context=32)
    assert float((tiled_grad - whole_grad).abs().max() / whole_grad.abs().max()) > 1e-4


SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))  # 16 px halo: real windows


def test_exact_render_matches_whole_render():
    from largestyle.engine.engine import Engine

    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(3, 64, 96, generator=generator), torch.rand(3, 32, 32, generator=generator)
    common = dict(target_size=96, iterations=5, first_level_factor=1, **SHALLOW)
    whole = Engine(make_config(**common)).render(content, style)
    seen = []
    exact = Engine(make_config(**common, tiling="exact", max_memory="1MB", tile_size=32), seen.append)
    shapes = []
    real_forward = VGG19Features.forward

    def spy(self, image, layers):
        shapes.append(tuple(image.shape[-2:]))
        return real_forward(self, image, layers)

    VGG19Features.forward = spy
    try:
        result = exact.render(content, style)
    finally:
        VGG19Features.forward = real_forward
    started = next(e for e in seen if type(e).__name__ == "RenderStarted")
    (level,) = started.levels
    assert level.mode == "exact" and level.grid == (2, 3)
    # Progress adds up to the plan's work, so the bar ends at 100%.
    done = sum(e.work for e in seen if type(e).__name__ == "Evaluation") + sum(
        e.skipped * e.work for e in seen if type(e).__name__ == "OptimisationFinished")
    assert abs(done - started.total_work) <= level.evaluations
    assert float((result - whole).abs().max()) < 1 / 255
    # Nothing larger than a core plus its halo reaches the network, targets included.
    assert len(shapes) > 5 * 6
    assert max(h for h, w in shapes) <= 32 + 2 * 16 and max(w for h, w in shapes) <= 32 + 2 * 16


def test_tiled_gradient_equals_untiled_in_float32():
    net = VGG19Features("relu5_1")
    randomise(net)
    config = make_config()
    generator = torch.Generator().manual_seed(2)
    image, content, style = (torch.rand(1, 3, 97, 120, generator=generator) for _ in range(3))
    targets = style_targets(net, style, config.style_layers)
    _, whole = Objective(net, resolve_loss_weights(config), content_targets(net, content, config.content_layers),
                         targets).value_and_grad(image)
    _, tiled = TiledObjective(net, resolve_loss_weights(config), content, targets, 32).value_and_grad(image)
    assert float((tiled - whole).abs().max() / whole.abs().max()) < 1e-4


def test_recomputed_content_targets_give_the_same_evaluation(network):
    config = make_config()
    image, content, style = images((97, 120), 3)
    targets = style_targets(network, style, config.style_layers)
    cached = TiledObjective(network, resolve_loss_weights(config), content, targets, 32).value_and_grad(image)
    recomputed_objective = TiledObjective(network, resolve_loss_weights(config), content, targets, 32, cache_content=False)
    assert recomputed_objective.content is None
    recomputed = recomputed_objective.value_and_grad(image)
    assert recomputed[0] == cached[0]
    assert torch.equal(recomputed[1], cached[1])
