"""Effect of transparent huge pages (THP_MEM_ALLOC_ENABLE=1) on a CPU loss evaluation.

PyTorch's CPU allocator returns large buffers to the OS and faults them back on
every evaluation; with huge pages those faults mostly disappear. largestyle sets
the variable when it is imported, so this compares fresh processes with it set to
1 and 0, alternating, and prints JSON with the median time ratio per size.

    .venv/bin/python bench/bench_hugepages.py [--sizes 512,1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import sys, time, torch
from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
size, repeat = int(sys.argv[1]), int(sys.argv[2])
config = make_config(device="cpu")
engine = Engine(config)
network = engine.network
image = torch.rand(1, 3, size, size)
objective = Objective(network, resolve_loss_weights(config), content_targets(network, image, config.content_layers),
                      style_targets(network, image, config.style_layers))
objective.value_and_grad(image)
start = time.perf_counter()
for _ in range(repeat):
    objective.value_and_grad(image)
print((time.perf_counter() - start) / repeat)
"""


def evaluation_seconds(size: int, huge_pages: bool, repeat: int) -> float:
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1" if huge_pages else "0"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(repeat)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="evaluations timed per process")
    args = parser.parse_args()
    report = {}
    for size in (int(s) for s in args.sizes.split(",")):
        rows = []
        for _ in range(args.rounds):
            off = evaluation_seconds(size, False, args.repeat)
            on = evaluation_seconds(size, True, args.repeat)
            rows.append({"off_s": off, "on_s": on, "on_over_off": on / off})
        report[str(size)] = {"rounds": rows,
                             "median_on_over_off": statistics.median(r["on_over_off"] for r in rows)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
