"""`largestyle batch --dry-run` over many jobs: the cost per job once the device is measured.

Prints JSON. Writes a batch file of N jobs (2 contents x 2 styles x N/4 style weights over
tiny images) and plans it twice in this process: with the calibration cache empty, and
again with it warm. A dry run measures the device once per batch and then only reads
headers and runs the planner, so the theoretical cost per job is the planner's (well
under a millisecond) and the total is one calibration plus N of those.

    .venv/bin/python bench/bench_dryrun.py [--jobs 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from largestyle.cli.main import main


def write_batch(folder: Path, jobs: int) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "s", "t"):
        Image.fromarray(rng.integers(0, 255, (24, 36, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    weights = ", ".join(f"{1 + i / 10:g}" for i in range(max(1, jobs // 4)))
    path = folder / "jobs.toml"
    path.write_text(f'[defaults]\ntarget_size = 64\nweights = "random"\noutput_dir = "out"\n'
                    f'[[job]]\ncontent = ["a.png", "b.png"]\nstyle = ["s.png", "t.png"]\n'
                    f'vary = {{ style_weight = [{weights}] }}\n')
    return path


def dry_run(path: Path) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["batch", str(path), "--dry-run"])
    assert code == 0, code
    return time.perf_counter() - start


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_batch(Path(folder), args.jobs)
        cold = dry_run(path)  # includes the one calibration of this process
        warm = dry_run(path)  # the calibration is kept for the process
    jobs = 4 * max(1, args.jobs // 4)
    print(json.dumps({
        "jobs": jobs, "first_dry_run_s": round(cold, 3), "second_dry_run_s": round(warm, 3),
        "calibration_s": round(cold - warm, 3), "ms_per_job": round(1000 * warm / jobs, 3),
        "theory": "one calibration per process, then a header read and the planner per job (< 1 ms)",
    }, indent=1))


if __name__ == "__main__":
    main_bench()
