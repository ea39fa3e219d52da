"""largestyle's loss evaluation against one iteration of neural-style-pt, in one process.

Prints JSON. neural-style-pt is not a dependency: give a checkout of it
(https://github.com/ProGamerGov/neural-style-pt) with --checkout. Its network is built from its
own modules (the CaffeLoader VGG-19, with in-place ReLUs) and its own ContentLoss, StyleLoss and
TVLoss are inserted after the same layers as its main() does; an iteration is its feval:
forward, the sum of the losses, backward. Both networks have random weights (the cost does not
depend on them) and average pooling, and see the same random content and style images.
torchvision, which neural-style-pt imports only for loading images, is stood in for by an empty
module. Rounds interleave largestyle's bare pass, its evaluation and neural-style-pt's iteration.

    .venv/bin/python bench/bench_neural_style_pt.py --checkout ../neural-style-pt [--sizes 1024,2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import types

import torch
from torch import nn

from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine

from bench_evaluation import bare_pass, make_objective, seconds

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)


def import_neural_style_pt(checkout: str):
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    sys.modules.setdefault("torchvision.transforms", types.ModuleType("torchvision.transforms"))
    sys.path.insert(0, checkout)
    saved, sys.argv = sys.argv, sys.argv[:1]  # it parses its options when imported
    try:
        import CaffeLoader
        import neural_style
    finally:
        sys.argv = saved
    return CaffeLoader, neural_style


def build(checkout: str):
    """neural-style-pt's network with its loss modules after the named ReLUs, as its main() assembles it."""
    loader, style_pt = import_neural_style_pt(checkout)
    layers = loader.VGG(loader.buildSequential(loader.channel_list["VGG-19"], "avg")).features
    net, content_losses, style_losses = nn.Sequential(), [], []
    tv = style_pt.TVLoss(1e-3)
    net.add_module("tv", tv)
    relu_index = 0
    for layer in layers:
        if len(content_losses) == len(CONTENT_LAYERS) and len(style_losses) == len(STYLE_LAYERS):
            break
        net.add_module(str(len(net)), layer)
        if isinstance(layer, nn.ReLU):
            name = loader.vgg19_dict["R"][relu_index]
            relu_index += 1
            for wanted, kind, weight, kept in ((CONTENT_LAYERS, style_pt.ContentLoss, 5.0, content_losses),
                                               (STYLE_LAYERS, style_pt.StyleLoss, 100.0, style_losses)):
                if name in wanted:
                    module = kind(weight, False)
                    net.add_module(str(len(net)), module)
                    kept.append(module)
    net.requires_grad_(False)
    return net, content_losses, style_losses, tv


def iteration(net, content_losses, style_losses, tv, content, style):
    """Targets captured as neural-style-pt captures them; returns its feval."""
    for module in content_losses:
        module.mode = "capture"
    net(content.clone())
    for module in content_losses:
        module.mode = "None"
    for module in style_losses:
        module.mode = "capture"
    net(style.clone())
    for module in content_losses + style_losses:
        module.mode = "loss"
    image = nn.Parameter(content.clone())

    def feval():
        image.grad = None
        net(image)
        (sum(m.loss for m in content_losses) + sum(m.loss for m in style_losses) + tv.loss).backward()
    return feval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, help="a neural-style-pt checkout (its neural_style.py)")
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modules = build(args.checkout)
    config = make_config(device="cpu", content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS)
    network = Engine(config).network
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__, "sizes": {}}
    for size in (int(s) for s in args.sizes.split(",")):
        generator = torch.Generator().manual_seed(0)
        content, style = (torch.rand(1, 3, size, size, generator=generator) for _ in range(2))
        feval = iteration(*modules, content, style)
        objective = make_objective(network, config, content, style)
        feval(), objective.value_and_grad(content)  # warm-up
        rows = [(seconds(lambda: bare_pass(network, content)), seconds(lambda: objective.value_and_grad(content)),
                 seconds(feval)) for _ in range(args.rounds)]
        report["sizes"][str(size)] = {
            "largestyle_bare_s": statistics.median(r[0] for r in rows),
            "largestyle_evaluation_s": statistics.median(r[1] for r in rows),
            "neural_style_pt_iteration_s": statistics.median(r[2] for r in rows),
            "evaluation_over_bare": statistics.median(r[1] / r[0] for r in rows),
            "neural_style_pt_over_evaluation": statistics.median(r[2] / r[1] for r in rows),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
