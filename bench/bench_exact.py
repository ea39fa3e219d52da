"""Seconds per loss evaluation, exact-tiled vs untiled, next to the theoretical ratio.

Prints JSON. Each round times the untiled evaluation, the tiled one with cached content
targets and the tiled one recomputing them, back to back on the same image; the medians
of the per-round ratios are reported.

    .venv/bin/python bench/bench_exact.py [--sizes 512,1024] [--cores 256,512] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.engine.planner import FORWARD_SHARE
from largestyle.gatys.windowed import TiledObjective
from largestyle.core.vgg import halo
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--cores", default="256,512")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = make_config(device="cpu", weights="random")
    engine = Engine(config)
    network = engine.network
    context = halo(engine.layers)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        image, content, style = (torch.rand(1, 3, size, size, generator=generator) for _ in range(3))
        targets = style_targets(network, style, config.style_layers)
        whole = Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers), targets)
        whole.value_and_grad(image)  # warm-up
        for core in (int(c) for c in args.cores.split(",")):
            if core >= size:
                continue
            tiled = TiledObjective(network, resolve_loss_weights(config), content, targets, core)
            recomputing = TiledObjective(network, resolve_loss_weights(config), content, targets, core, cache_content=False)
            ratios, recompute_ratios = [], []
            for _ in range(args.rounds):
                untiled = seconds(lambda: whole.value_and_grad(image))
                cached = seconds(lambda: tiled.value_and_grad(image))
                ratios.append(cached / untiled)
                recompute_ratios.append(seconds(lambda: recomputing.value_and_grad(image)) / cached)
            windows = sum((b - t) * (r - l) for t, l, b, r in (tile.window for tile in tiled.tiles))
            rows.append({
                "size": size, "core": core, "halo": context, "windows": len(tiled.tiles),
                "tiled_over_untiled": statistics.median(ratios),
                "recomputed_content_over_cached": statistics.median(recompute_ratios),
                "theory_unclipped": (1 + 2 * context / core) ** 2 * (1 + FORWARD_SHARE),
                "theory_with_clipped_halos": windows / size ** 2 * (1 + FORWARD_SHARE),
            })
    print(json.dumps({"device": "cpu", "threads": torch.get_num_threads(), "rounds": args.rounds, "rows": rows},
                     indent=2))


if __name__ == "__main__":
    main()
