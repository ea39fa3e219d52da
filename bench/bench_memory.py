"""Measured peak memory of optimising an image whole, against the engine's estimate.

Each size runs in its own process so that peak RSS (CPU) or peak allocated memory
(CUDA) belongs to that size alone. Prints JSON.

    .venv/bin/python bench/bench_memory.py [--sizes 256,512] [--device cpu]
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


def measure(size: int, device: str) -> dict:
    from largestyle.config import make_config
    from largestyle.engine import Engine
    from largestyle.memory import MemoryModel
    from largestyle.objective import Objective, content_targets, style_targets
    from largestyle.optimize import minimize

    config = make_config(device=device)
    engine = Engine(config)
    network = engine.network
    image = torch.rand(1, 3, size, size, device=engine.device)
    objective = Objective(network, config, content_targets(network, image, config.content_layers),
                          style_targets(network, image, config.style_layers))
    cuda = engine.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    minimize(objective.value_and_grad, image, EVALUATIONS, config.history_size)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = MemoryModel(engine.layers, config.pooling, engine.device, config.history_size)
    return {"size": size, "measured_bytes": peak - before, "estimated_bytes": model.optimise_bytes(size, size),
            "estimated_per_pixel": model.per_pixel, "saved_activations_per_pixel": model.activation_per_pixel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.device)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--device", args.device],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    (a, b) = rows[0], rows[-1]
    pixels = b["size"] ** 2 - a["size"] ** 2
    slope = (b["measured_bytes"] - a["measured_bytes"]) / pixels if pixels else None
    print(json.dumps({"device": args.device, "rows": rows, "measured_per_pixel_slope": slope,
                      "estimate_over_measured_slope": rows[0]["estimated_per_pixel"] / slope if slope else None},
                     indent=2))


if __name__ == "__main__":
    main()
