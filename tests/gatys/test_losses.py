import math

import pytest
import torch

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.network.vgg import VGG19Features
from largestyle.gatys.losses import content_loss, gram, style_loss, target_norm, tv_loss
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.network.weights import randomise


def features(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g)


def periodic(size=48, seed=0, mean=(0.5, 0.5, 0.5), amp=1.0):
    """Smooth RGB image in [0, 1] whose period is exactly ``size`` along both axes."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(size) / size * 2 * math.pi).view(size, 1)
    x = (torch.arange(size) / size * 2 * math.pi).view(1, size)
    channels = []
    for c in range(3):
        a = torch.rand(4, generator=g) * 2 * math.pi
        wave = (0.2 * torch.sin(x + a[0]) * torch.cos(y + a[1]) + 0.15 * torch.sin(2 * x + y + a[2])
                + 0.1 * torch.cos(2 * y - x + a[3]))
        channels.append(mean[c] + amp * wave)
    return torch.stack(channels)[None].clamp(0, 1)


def tile2(t):
    return t.repeat(1, 1, 2, 2)


def unnormalised_gram(f):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2)


# --- gram ---------------------------------------------------------------------------

def test_gram_matches_average_of_outer_products_over_positions():
    f = features((2, 4, 5, 6), seed=1)
    expected = torch.zeros(2, 4, 4)
    for i in range(5):
        for j in range(6):
            v = f[:, :, i, j]
            expected += v[:, :, None] * v[:, None, :]
    expected /= 5 * 6
    torch.testing.assert_close(gram(f), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gram(f), torch.einsum("nchw,ndhw->ncd", f, f) / 30, rtol=1e-5, atol=1e-6)


def test_gram_is_symmetric_and_per_sample():
    f = features((2, 3, 4, 4), seed=2)
    g = gram(f)
    assert g.shape == (2, 3, 3)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(g[1:], gram(f[1:]))


def test_gram_invariant_to_repetition_unlike_unnormalised_gram():
    f = features((2, 8, 7, 9), seed=3)
    torch.testing.assert_close(gram(tile2(f)), gram(f), rtol=1e-5, atol=1e-6)
    # Without the division by H*W the Gram grows with the pixel count.
    torch.testing.assert_close(unnormalised_gram(tile2(f)), 4 * unnormalised_gram(f), rtol=1e-5, atol=1e-5)


def test_content_loss_is_mean_squared_difference_and_repetition_invariant():
    f, t = features((1, 8, 6, 5), seed=4), features((1, 8, 6, 5), seed=5)
    assert content_loss(f, t).item() == pytest.approx(((f - t) ** 2).sum().item() / f.numel(), rel=1e-5)
    torch.testing.assert_close(content_loss(tile2(f), tile2(t)), content_loss(f, t), rtol=1e-5, atol=0)
    summed = lambda a, b: (a - b).pow(2).sum()
    assert summed(tile2(f), tile2(t)).item() == pytest.approx(4 * summed(f, t).item(), rel=1e-5)


def test_style_loss_weights_layers_and_is_repetition_invariant():
    fa, fb = features((1, 4, 6, 6), seed=6), features((1, 8, 3, 3), seed=7)
    targets = {"a": gram(features((1, 4, 6, 6), seed=8)), "b": gram(features((1, 8, 3, 3), seed=9))}
    weights = {"a": 0.25, "b": 0.75}
    loss = style_loss({"a": gram(fa), "b": gram(fb)}, targets, weights)
    expected = sum(weights[k] * ((gram(f) - targets[k]) ** 2).sum() / targets[k].numel()
                   for k, f in (("a", fa), ("b", fb)))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    repeated = style_loss({"a": gram(tile2(fa)), "b": gram(tile2(fb))}, targets, weights)
    torch.testing.assert_close(repeated, loss, rtol=1e-5, atol=0)
    # The same loss over un-normalised Grams changes a lot under repetition.
    raw_targets = {"a": unnormalised_gram(features((1, 4, 6, 6), seed=8)),
                   "b": unnormalised_gram(features((1, 8, 3, 3), seed=9))}
    raw = style_loss({"a": unnormalised_gram(fa), "b": unnormalised_gram(fb)}, raw_targets, weights)
    raw_repeated = style_loss({"a": unnormalised_gram(tile2(fa)), "b": unnormalised_gram(tile2(fb))},
                              raw_targets, weights)
    assert raw_repeated.item() > 2 * raw.item()


def test_style_loss_only_uses_weighted_layers():
    f = features((1, 4, 5, 5), seed=10)
    grams = {"a": gram(f), "b": gram(f)}
    targets = {"a": gram(features((1, 4, 5, 5), seed=11)), "b": torch.zeros(1, 4, 4)}
    only_a = style_loss(grams, targets, {"a": 1.0})
    assert only_a.item() == pytest.approx((grams["a"] - targets["a"]).pow(2).mean().item(), rel=1e-6)
    assert style_loss(grams, targets, {"a": 1.0, "b": 0.0}).item() == pytest.approx(only_a.item(), rel=1e-6)


@pytest.mark.parametrize("factor", [57.856, 0.01])
def test_terms_divided_by_their_targets_mean_square_ignore_activation_scale(factor):
    """Scaling a layer's activations (the Caffe weights' are ~58x torchvision's) leaves both terms unchanged."""
    f, t = features((1, 8, 6, 5), seed=12), features((1, 8, 6, 5), seed=13)
    scaled = content_loss(factor * f, factor * t, target_norm(factor * t))
    torch.testing.assert_close(scaled, content_loss(f, t, target_norm(t)), rtol=1e-5, atol=0)
    grams, targets = {"a": gram(f)}, {"a": gram(t)}
    big_grams, big_targets = {"a": gram(factor * f)}, {"a": gram(factor * t)}
    torch.testing.assert_close(
        style_loss(big_grams, big_targets, {"a": 1.0}, {"a": target_norm(big_targets["a"])}),
        style_loss(grams, targets, {"a": 1.0}, {"a": target_norm(targets["a"])}), rtol=1e-5, atol=0)
    # Without the norms the terms grow with the square and the fourth power of the factor.
    assert content_loss(factor * f, factor * t).item() == pytest.approx(factor ** 2 * content_loss(f, t).item(),
                                                                        rel=1e-4)


def test_objective_terms_are_unchanged_when_a_networks_activations_scale(network):
    """A network whose first conv is scaled by 58 (all later ReLU layers follow, biases zeroed) gives the same loss."""
    import copy

    config = make_config(**SHALLOW)
    plain = copy.deepcopy(network)
    for conv in plain.convs.values():
        conv.bias.zero_()
    scaled = copy.deepcopy(plain)
    scaled.convs["conv1_1"].weight.mul_(57.856)
    content, style, image = (periodic(32, seed=seed) for seed in (20, 21, 22))

    def terms(net):
        objective = Objective(net, resolve_loss_weights(config), content_targets(net, content, config.content_layers),
                              style_targets(net, style, config.style_layers))
        return objective.value_and_grad(image)

    (plain_terms, plain_grad), (scaled_terms, scaled_grad) = terms(plain), terms(scaled)
    for name in ("total", "content", "style", "tv"):
        assert getattr(scaled_terms, name) == pytest.approx(getattr(plain_terms, name), rel=1e-4)
    torch.testing.assert_close(scaled_grad, plain_grad, rtol=1e-3, atol=1e-6)


# --- tv -------------------------------------------------------------------------------

def test_tv_loss_of_constant_image_is_zero():
    assert tv_loss(torch.full((1, 3, 17, 23), 0.37)).item() == 0.0


def test_tv_loss_matches_hand_computation():
    image = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    # vertical: (3-0)², (5-1)² -> mean 12.5; horizontal: (1-0)², (5-3)² -> mean 2.5
    assert tv_loss(image).item() == pytest.approx(15.0)
    image = torch.tensor([[[[0.0, 2.0, 2.0], [1.0, 1.0, 4.0]]]])
    # vertical: 1, 1, 4 -> 2; horizontal: 4, 0, 0, 9 -> 3.25
    assert tv_loss(image).item() == pytest.approx(5.25)


def test_tv_loss_of_single_row_or_column_uses_one_direction():
    row = torch.tensor([[[[0.0, 1.0, 3.0]]]])
    assert tv_loss(row).item() == pytest.approx((1 + 4) / 2)
    assert tv_loss(row.transpose(-1, -2)).item() == pytest.approx((1 + 4) / 2)
    assert tv_loss(torch.ones(1, 1, 1, 1)).item() == 0.0


def test_tv_loss_of_smooth_periodic_image_barely_changes_when_repeated():
    image = periodic(40, seed=12)
    original, repeated = tv_loss(image).item(), tv_loss(tile2(image)).item()
    assert original > 0
    assert repeated == pytest.approx(original, rel=0.03)
    summed = lambda x: ((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum() + ((x[..., 1:] - x[..., :-1]) ** 2).sum()
    assert summed(tile2(image)).item() > 3 * summed(image).item()


# --- through the network -------------------------------------------------------------

@pytest.fixture(scope="module")
def network():
    net = VGG19Features("relu3_1")
    randomise(net)
    return net


def _sum_based_total(network, config, image, content, style):
    """The objective with un-normalised Gram matrices and summed (not averaged) terms."""
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    feats = network(image, layers)
    content_feats = network(content, config.content_layers)
    style_feats = network(style, config.style_layers)
    c = sum((feats[l] - content_feats[l]).pow(2).sum() for l in config.content_layers)
    s = sum(w * (unnormalised_gram(feats[l]) - unnormalised_gram(style_feats[l])).pow(2).sum()
            for l, w in config.layer_weights.items())
    tv = ((image[..., 1:, :] - image[..., :-1, :]) ** 2).sum() + ((image[..., 1:] - image[..., :-1]) ** 2).sum()
    weights = resolve_loss_weights(config)
    return (weights.content * c + weights.style * s + weights.tv * tv).item()


# Shallow layers: their receptive fields (<= 24 px) are small next to 48 px, so the zero
# padding at the borders shifts the loss only a little.
SHALLOW = dict(content_layers=("relu3_1",), style_layers=("relu1_1", "relu2_1", "relu3_1"))


@pytest.mark.parametrize("seed", [0, 3])
def test_objective_of_repeated_image_matches_original(network, seed):
    config = make_config(**SHALLOW)
    content = periodic(48, seed=seed + 1, mean=(0.3, 0.5, 0.7))
    image = periodic(48, seed=seed + 2)
    style = periodic(48, seed=seed + 3, mean=(0.7, 0.4, 0.3))
    targets = style_targets(network, style, config.style_layers)
    small = Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers), targets)
    large = Objective(network, resolve_loss_weights(config), content_targets(network, tile2(content), config.content_layers), targets)
    terms, _ = small.value_and_grad(image)
    terms2, _ = large.value_and_grad(tile2(image))
    assert terms.content > 0 and terms.style > 0
    assert terms2.total == pytest.approx(terms.total, rel=0.15)
    assert terms2.content == pytest.approx(terms.content, rel=0.15)
    assert terms2.style == pytest.approx(terms.style, rel=0.15)
    assert terms2.tv == pytest.approx(terms.tv, rel=0.03)
    raw = _sum_based_total(network, config, image, content, style)
    raw2 = _sum_based_total(network, config, tile2(image), tile2(content), style)
    assert raw2 > 2 * raw


def test_objective_terms_add_up_and_gradient_matches_total(network):
    config = make_config(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
    content, style = periodic(32, seed=20), periodic(32, seed=21, amp=1.5)
    objective = Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers),
                          style_targets(network, style, config.style_layers))
    image = periodic(32, seed=22)
    terms, grad = objective.value_and_grad(image)
    assert terms.total == pytest.approx(terms.content + terms.style + terms.tv, rel=1e-5)
    assert terms.content > 0 and terms.style > 0 and terms.tv > 0
    # At the content image itself the content term vanishes.
    assert objective.value_and_grad(content)[0].content == 0.0
    assert grad.shape == image.shape and not image.requires_grad
    # A small step against the gradient lowers the loss.
    step = 1e-3 / grad.abs().max()
    assert objective.value_and_grad(image - step * grad)[0].total < terms.total


@pytest.mark.parametrize("layers", [(("relu2_1",), ("relu1_1", "relu2_1")), (("relu3_1",), ("relu1_1",)),
                                    (("relu1_1",), ())])
def test_objective_equals_autograd_of_the_plain_loss_in_float64(layers):
    """The gradients added in place at each layer equal autograd's through the plain loss terms.

    The content layer deeper than every style layer, and no style layer at all, take the other
    path into the backward pass (the deepest recorded layer starts it).
    """
    content_layers, style_layers = layers
    config = make_config(content_layers=content_layers, style_layers=style_layers)
    network = VGG19Features("relu3_1").double()
    torch.nn.init.normal_(network.convs["conv1_1"].weight, std=0.3)
    content, style, image = (periodic(32, seed=seed).double() for seed in (30, 31, 32))
    weights = resolve_loss_weights(config)
    objective = Objective(network, weights, content_targets(network, content, content_layers),
                          style_targets(network, style, style_layers))
    terms, grad = objective.value_and_grad(image)

    x = image.clone().requires_grad_(True)
    features = network(x, objective.layers)
    total = (weights.content * sum(content_loss(features[layer], target, objective.content_norms[layer])
                                   for layer, target in objective.content.items())
             + weights.style * style_loss({layer: gram(features[layer]) for layer in objective.style}, objective.style,
                                          weights.style_layers, objective.style_norms)
             + weights.tv * tv_loss(x))
    (expected,) = torch.autograd.grad(total, x)
    assert terms.total == pytest.approx(float(total.detach()), rel=1e-12)
    assert float((grad - expected).norm() / expected.norm()) < 1e-12


def test_gram_gradient_matches_autograd_of_the_plain_product():
    from largestyle.gatys.losses import gram as fast_gram

    features = torch.rand(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fast_gram, (features,))
    weights = torch.rand(2, 5, 5, dtype=torch.float64)
    (fast,) = torch.autograd.grad((fast_gram(features) * weights).sum(), features)
    flat = features.reshape(2, 5, 12)
    (plain,) = torch.autograd.grad(((flat @ flat.transpose(1, 2) / 12) * weights).sum(), features)
    torch.testing.assert_close(fast, plain)
