"""Cost of a loss evaluation, whole and blend-tiled, relative to a bare VGG-19 pass.

Prints JSON. Every ratio is taken within one round (the variants run interleaved),
and the median over rounds is reported, because these machines are noisy.

    .venv/bin/python bench/bench_evaluation.py [--rounds 3] [--sizes 1024,2048] [--tile 256]

Beside each measured ratio stands the theoretical one: the multiply-adds of an evaluation
over those of a bare pass. A bare pass is every convolution forward and its input gradient
backward (2x the forward's multiply-adds); an evaluation adds, per style layer, the Gram
product F Fᵀ and its backward (C² multiply-adds per position each). Pooling, ReLUs and the
loss's elementwise terms are left out of both, so the theory is a floor.
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
def relu_in_place():
    """The network's ReLU made in place (as neural-style-pt's is): a convolution's backward needs its
    input, not its output, so the ReLU may overwrite it. Kept out of the network while it measures no faster."""
    copying = torch.relu
    torch.relu = torch.relu_
    try:
        yield
    finally:
        torch.relu = copying


@contextlib.contextmanager
def channels_last(network):
    """The network's weights in channels-last (NHWC) memory format while inside."""
    network.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        network.to(memory_format=torch.contiguous_format)


def make_objective(network, config, content, style):
    return Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers),
                     style_targets(network, style, config.style_layers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--tile", type=int, default=256, help="tile side for the blend-pass figure")
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
        ratios, bare_times, eval_times, in_place, bf16, last = [], [], [], [], [], []
        for _ in range(args.rounds):
            bare = seconds(lambda: bare_pass(network, content))
            evaluation = seconds(lambda: objective.value_and_grad(content))
            with relu_in_place():  # the same evaluation with a ReLU that overwrites its input
                in_place.append(seconds(lambda: objective.value_and_grad(content)) / evaluation)
            network.compute_dtype = torch.bfloat16  # --precision bf16
            bf16.append(seconds(lambda: objective.value_and_grad(content)) / evaluation)
            network.compute_dtype = None
            with channels_last(network):  # weights and image in NHWC
                image = content.contiguous(memory_format=torch.channels_last)
                last.append(seconds(lambda: objective.value_and_grad(image)) / evaluation)
            ratios.append(evaluation / bare)
            bare_times.append(bare)
            eval_times.append(evaluation)
        report["evaluation"][str(size)] = {
            "bare_forward_backward_s": statistics.median(bare_times),
            "evaluation_s": statistics.median(eval_times),
            "evaluation_over_bare": statistics.median(ratios),
            "theory_evaluation_over_bare": round(theoretical_ratio(config, size), 4),
            "in_place_relu_over_copying": statistics.median(in_place),
            "bf16_over_fp32": statistics.median(bf16),
            "channels_last_over_default": statistics.median(last),
        }

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
