"""Cost of a loss evaluation, whole and blend-tiled, relative to a bare VGG-19 pass.

Prints JSON. Every ratio is taken within one round (the variants run interleaved),
and the median over rounds is reported, because these machines are noisy.

    .venv/bin/python bench/bench_evaluation.py [--rounds 3] [--sizes 1024,2048] [--tile 256] [--variants ...] [--profile]

Beside each measured ratio stands the theoretical one: the multiply-adds of an evaluation
over those of a bare pass. A bare pass is every convolution forward and its input gradient
backward (2x the forward's multiply-adds); an evaluation adds, per style layer, the Gram
product F Fᵀ and its backward (C² multiply-adds per position each). Pooling, ReLUs and the
loss's elementwise terms are left out of both, so the theory is a floor.

Each round also times variants of the same evaluation against it (``--variants``): the
loss differentiated by autograd instead of adding its gradients in place, the convolutions
in bfloat16 (``--precision bf16``), channels-last memory format, and an in-place ReLU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.gatys.losses import content_loss, gram, style_loss, tv_loss
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.geometry.tiling import BlendGrid


def seconds(function, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def bare_pass(network, image):
    """Forward to the deepest layer and backward to the input: the floor an evaluation is measured against."""
    x = image.detach().requires_grad_(True)
    (out,) = network(x, [network.deepest]).values()
    out.sum().backward()


def autograd_evaluation(objective, image):
    """The same loss built from the plain terms and differentiated by autograd, as evaluations were before
    the losses' gradients were added in place: the reference for what that change saves."""
    weights = objective.weights
    x = image.detach().requires_grad_(True)
    features = objective.network(x, objective.layers)
    total = (weights.content * sum(content_loss(features[layer], target, objective.content_norms[layer])
                                   for layer, target in objective.content.items())
             + weights.style * style_loss({layer: gram(features[layer]) for layer in objective.style}, objective.style,
                                          weights.style_layers, objective.style_norms)
             + weights.tv * tv_loss(x))
    return torch.autograd.grad(total, x)[0]


def theoretical_ratio(config, size: int) -> float:
    """Multiply-adds of an evaluation over those of a bare pass (see the module docstring)."""
    from largestyle.core.vgg import conv_channels, deepest_of, layer_sequence, stride

    channels = conv_channels()
    deepest = deepest_of(config.style_layers + config.content_layers)
    convs = [name for kind, name in layer_sequence(deepest) if kind == "conv"]
    positions = {name: (size // stride("relu" + name[4:])) ** 2 for name in convs}
    bare = 2 * sum(9 * channels[name][0] * channels[name][1] * positions[name] for name in convs)
    grams = sum(2 * channels["conv" + layer[4:]][1] ** 2 * positions["conv" + layer[4:]]
                for layer in config.style_layers)
    return (bare + grams) / bare


@contextlib.contextmanager
def copying_relu(network):
    """The network's ReLU allocating its output and its gradient (torch.relu), instead of overwriting them."""
    network.relu = torch.relu
    try:
        yield
    finally:
        del network.relu  # back to the class's in-place one


@contextlib.contextmanager
def channels_last(network):
    """The network's weights in channels-last (NHWC) memory format while inside."""
    network.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        network.to(memory_format=torch.contiguous_format)


def _copying(network, objective, image):
    def run():
        with copying_relu(network):
            objective.value_and_grad(image)
    return run


def _bf16(network, objective, image):
    def run():
        network.compute_dtype = torch.bfloat16  # --precision bf16
        try:
            objective.value_and_grad(image)
        finally:
            network.compute_dtype = None
    return run


def _channels_last(network, objective, image):
    nhwc = image.contiguous(memory_format=torch.channels_last)

    def run():
        with channels_last(network):
            objective.value_and_grad(nhwc)
    return run


# Each variant of one evaluation, timed against the plain one in the same round.
VARIANTS = {
    "autograd_losses": lambda network, objective, image: lambda: autograd_evaluation(objective, image),
    "bf16": _bf16,
    "channels_last": _channels_last,
    "copying_relu": _copying,
}


def seconds_by_operator(function, count: int = 8) -> dict[str, float]:
    """The operators taking the most time in one call of ``function`` (self time, seconds)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        function()
    rows = sorted(profile.key_averages(), key=lambda row: -row.self_cpu_time_total)[:count]
    return {row.key: round(row.self_cpu_time_total / 1e6, 3) for row in rows}


def make_objective(network, config, content, style):
    return Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers),
                     style_targets(network, style, config.style_layers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--tile", type=int, default=256, help="tile side for the blend-pass figure")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one bare pass and one evaluation per size: seconds by operator")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"variants timed against each evaluation, from {','.join(VARIANTS)} (empty: none)")
    args = parser.parse_args()

    config = make_config(device="cpu")
    engine = Engine(config)
    network = engine.network
    generator = torch.Generator().manual_seed(0)
    report = {"device": str(engine.device), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "rounds": args.rounds, "evaluation": {}}

    for size in (int(s) for s in args.sizes.split(",")):
        content = torch.rand(1, 3, size, size, generator=generator)
        style = torch.rand(1, 3, size, size, generator=generator)
        objective = make_objective(network, config, content, style)
        bare_pass(network, content), objective.value_and_grad(content)  # warm-up
        ratios, bare_times, eval_times = [], [], []
        variants = {name: [] for name in args.variants.split(",") if name}
        for _ in range(args.rounds):
            bare = seconds(lambda: bare_pass(network, content))
            evaluation = seconds(lambda: objective.value_and_grad(content))
            for name, measured in variants.items():
                measured.append(seconds(VARIANTS[name](network, objective, content)) / evaluation)
            ratios.append(evaluation / bare)
            bare_times.append(bare)
            eval_times.append(evaluation)
        report["evaluation"][str(size)] = {
            "bare_forward_backward_s": statistics.median(bare_times),
            "evaluation_s": statistics.median(eval_times),
            "evaluation_over_bare": statistics.median(ratios),
            "theory_evaluation_over_bare": round(theoretical_ratio(config, size), 4),
            **{f"{name}_over_evaluation": statistics.median(measured) for name, measured in variants.items()},
        }
        if args.profile:
            report["evaluation"][str(size)]["profile_s"] = {
                "bare": seconds_by_operator(lambda: bare_pass(network, content)),
                "evaluation": seconds_by_operator(lambda: objective.value_and_grad(content))}

    # One blend pass at 512 px: every tile evaluated once, against one untiled evaluation.
    size, tile = 512, args.tile
    content = torch.rand(1, 3, size, size, generator=generator)
    style = torch.rand(1, 3, size, size, generator=generator)
    whole = make_objective(network, config, content, style)
    grid = BlendGrid.plan(size, size, tile)
    padded = grid.pad(content)
    targets = style_targets(network, style, config.style_layers)
    tiles = [(grid.cut(padded, t), Objective(network, resolve_loss_weights(config), content_targets(
        network, grid.cut(padded, t), config.content_layers), targets)) for t in grid.tiles]

    def blend_pass():
        for pixels, objective in tiles:
            objective.value_and_grad(pixels)

    ratios = []
    for _ in range(args.rounds):
        untiled = seconds(lambda: whole.value_and_grad(content))
        ratios.append(seconds(blend_pass) / untiled)
    report["blend_pass_512"] = {
        "tile": tile, "tiles": len(grid.tiles),
        "tile_pixels_over_image_pixels": grid.pixels_per_pass() / size ** 2,
        "pass_over_untiled_evaluation": statistics.median(ratios),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
