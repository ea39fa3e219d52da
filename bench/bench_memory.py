"""Measured peak memory of optimising an image, against the engine's estimate.

Each size runs in its own process so that peak RSS (CPU) or peak allocated memory
(CUDA) belongs to that size alone. Prints JSON.

    .venv/bin/python bench/bench_memory.py [--sizes 256,512] [--device cpu]
    .venv/bin/python bench/bench_memory.py --tiling exact --tile 128 --sizes 384,512,768

With --tiling, each size is a one-level render tiled at a fixed tile (exact: core)
size. The row also gives the measured peak minus the model's whole-level buffers (the
exact level buffers, or the blend canvases): the tile's part, which should stay flat
as the image grows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

# Enough evaluations for the L-BFGS history to fill up, as in a real render.
EVALUATIONS = 40


def peak_since(start, cuda: bool) -> int:
    if cuda:
        return torch.cuda.max_memory_allocated() - start
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start


def measure_tiled(size: int, device: str, tiling: str, tile: int) -> dict:
    from largestyle.config.settings import make_config
    from largestyle.engine.engine import Engine

    config = make_config(device=device, target_size=size, tiling=tiling, tile_size=tile, max_memory="1MB",
                         iterations=EVALUATIONS // 4, first_level_factor=1, passes=1, weights="random")
    engine = Engine(config)
    engine.network, engine.memory  # load and calibrate before measuring
    content, style = torch.rand(3, size, size), torch.rand(3, size, size)
    cuda = engine.device.type == "cuda"
    start = torch.cuda.memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    engine.render(content, style)
    measured = peak_since(start, cuda)
    level = engine.memory.level_bytes(size, size) if tiling == "exact" else engine.memory.canvas_bytes(size, size)
    return {"size": size, "tiling": tiling, "tile": tile, "measured_bytes": measured,
            "model_level_buffers": level, "measured_minus_level_buffers": measured - level}


def measure(size: int, device: str) -> dict:
    from largestyle.config.settings import make_config
    from largestyle.engine.engine import Engine
    from largestyle.engine.memory import MemoryModel
    from largestyle.gatys.lossweights import resolve_loss_weights
    from largestyle.gatys.objective import Objective
    from largestyle.gatys.targets import content_targets, style_targets
    from largestyle.gatys.lbfgs import minimize

    config = make_config(device=device)
    engine = Engine(config)
    network = engine.network
    image = torch.rand(1, 3, size, size, device=engine.device)
    objective = Objective(network, resolve_loss_weights(config), content_targets(network, image, config.content_layers),
                          style_targets(network, image, config.style_layers))
    cuda = engine.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    minimize(objective.value_and_grad, image, EVALUATIONS, config.history_size)
    measured = peak_since(start, cuda)
    model = MemoryModel(engine.layers, config.pooling, engine.device, config.history_size,
                        content_layers=config.content_layers)
    return {"size": size, "measured_bytes": measured, "estimated_bytes": model.optimise_bytes(size, size),
            "estimated_per_pixel": model.per_pixel, "saved_activations_per_pixel": model.activation_per_pixel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiling", choices=("exact", "blend"))
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        row = measure_tiled(args.one, args.device, args.tiling, args.tile) if args.tiling else \
            measure(args.one, args.device)
        print(json.dumps(row))
        return
    rows = []
    extra = ["--tiling", args.tiling, "--tile", str(args.tile)] if args.tiling else []
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--device", args.device, *extra],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    if args.tiling:
        print(json.dumps({"device": args.device, "rows": rows}, indent=2))
        return
    (a, b) = rows[0], rows[-1]
    pixels = b["size"] ** 2 - a["size"] ** 2
    slope = (b["measured_bytes"] - a["measured_bytes"]) / pixels if pixels else None
    print(json.dumps({"device": args.device, "rows": rows, "measured_per_pixel_slope": slope,
                      "estimate_over_measured_slope": rows[0]["estimated_per_pixel"] / slope if slope else None},
                     indent=2))


if __name__ == "__main__":
    main()
