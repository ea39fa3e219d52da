"""L-BFGS bookkeeping with its vectors in RAM vs in memory-mapped files, against one VGG-19 evaluation.

Prints JSON. The loss here is a cheap quadratic, so the time is the optimiser's own work
(the two-loop recursion over the history, the line search's vector updates); each round
runs it in RAM and then with ``MappedBuffers`` files, back to back, and the median
per-round ratio is reported. One real loss evaluation at the same size puts it in scale.
The files sit in the page cache unless RAM is short, so this measures the mapping's
overhead, not the disk.

    .venv/bin/python bench/bench_canvas.py [--sizes 1024] [--evaluations 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.engine.buffers import MappedBuffers
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.gatys.objective import LossTerms, Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.gatys.lbfgs import minimize


def quadratic(target: torch.Tensor):
    def value_and_grad(x):
        difference = x - target
        value = float(difference.pow(2).sum())
        return LossTerms(value, value, 0.0, 0.0), 2 * difference
    return value_and_grad


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024")
    parser.add_argument("--evaluations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, default=16)
    args = parser.parse_args()
    config = make_config(device="cpu", weights="random")
    network = Engine(config).network
    generator = torch.Generator().manual_seed(0)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        start, target = (torch.rand(1, 3, size, size, generator=generator) for _ in range(2))
        objective = quadratic(target)
        ram_seconds, mapped_seconds = [], []
        for _ in range(args.rounds):
            ram_seconds.append(timed(lambda: minimize(objective, start, args.evaluations, args.history)))
            with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
                canvases = MappedBuffers(Path(folder))
                mapped_seconds.append(timed(lambda: minimize(
                    objective, start, args.evaluations, args.history,
                    allocate=lambda like: canvases.empty(like.shape, like.dtype, mapped=True))))
                canvases.release()
        vgg = Objective(network, resolve_loss_weights(config),
                        content_targets(network, target, config.content_layers),
                        style_targets(network, target, config.style_layers))
        evaluation = timed(lambda: vgg.value_and_grad(start))
        ram, mapped = statistics.median(ram_seconds), statistics.median(mapped_seconds)
        rows.append({
            "size": size, "history": args.history, "evaluations": args.evaluations,
            "lbfgs_seconds_ram": ram, "lbfgs_seconds_mapped": mapped,
            "mapped_over_ram": statistics.median(m / r for m, r in zip(mapped_seconds, ram_seconds)),
            "vgg_evaluation_seconds": evaluation,
            "lbfgs_per_evaluation_over_vgg_ram": ram / args.evaluations / evaluation,
            "lbfgs_per_evaluation_over_vgg_mapped": mapped / args.evaluations / evaluation,
        })
    print(json.dumps({"device": "cpu", "threads": torch.get_num_threads(), "rounds": args.rounds, "rows": rows},
                     indent=2))


if __name__ == "__main__":
    main()
