"""How much --tolerance saves, and what it costs in final loss: the figures behind its default.

For three content/style pairs from scikit-image's photos (the demo's, and two more) at two
sizes, one level is optimised to its full budget and every loss evaluation is recorded. The
stopping rule (``largestyle.gatys.evaluator.Evaluator``) is a function of the loss sequence
alone, and a run stopped by it evaluates exactly the same points up to the stop (the
optimiser is deterministic: tests/engine/test_convergence.py), so one full run gives, for
every tolerance, where the level would stop, the evaluations and seconds saved, and the
final loss relative to the full budget's. Sizes stay under 448 px so each render is one
level, where this is exact; with several levels an early stop also changes the next
level's start, which this does not model.

Prints JSON; the chosen tolerance is the largest whose final loss stays within 1% of the
full budget's in every case.

With ``--pyramid-size N`` it also renders each pair with the default settings at N px (two
levels or more) and reports the share of each level's cap that the default tolerance used:
``largestyle plan`` estimates times from these shares (``config.settings.EXPECTED_SHARE``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage import data

from largestyle.config.settings import CONVERGENCE_WINDOW, RenderConfig, make_config
from largestyle.engine import events as ev
from largestyle.engine.engine import Engine

TOLERANCES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
WITHIN = 1.01  # the final loss may be at most 1% above the full budget's


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"chelsea-painting": (data.chelsea(), demo_painting()),
            "astronaut-hubble": (data.astronaut(), data.hubble_deep_field()),
            "coffee-immunohistochemistry": (data.coffee(), data.immunohistochemistry())}


def demo_painting() -> np.ndarray:
    """The demo's style image, as examples/prepare.py makes it."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "prepare.py"
    spec = importlib.util.spec_from_file_location("prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return np.asarray(module.painting())


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float() / 255


def full_run(content, style, size: int, iterations: int) -> tuple[list[float], list[float]]:
    """Every evaluation's loss and the seconds it took, over one level's full budget."""
    losses, seconds, last = [], [], [time.perf_counter()]

    def record(event):
        if isinstance(event, ev.Evaluation):
            now = time.perf_counter()
            losses.append(event.loss.total)
            seconds.append(now - last[0])
            last[0] = now

    config = make_config(target_size=size, iterations=iterations, first_level_factor=1, weights="random")
    Engine(config, record).render(tensor(content), tensor(style))
    return losses, seconds


def pyramid_shares(content, style, size: int) -> list[dict]:
    """Evaluations each level of a default render used, against its cap."""
    used, caps = {}, {}

    def record(event):
        if isinstance(event, ev.RenderStarted):
            caps.update({level.index: level.total_evaluations for level in event.levels})
        if isinstance(event, ev.Evaluation):
            used[event.level] = used.get(event.level, 0) + 1

    Engine(make_config(target_size=size, weights="random"), record).render(tensor(content), tensor(style))
    return [{"level": index + 1, "cap": cap, "used": used.get(index, 0), "share": round(used.get(index, 0) / cap, 3)}
            for index, cap in sorted(caps.items())]


def stop_point(losses: list[float], tolerance: float, window: int = CONVERGENCE_WINDOW) -> int:
    """Evaluations a level with this tolerance uses: the Evaluator's rule applied to the recorded losses."""
    best = np.minimum.accumulate(losses)
    for n in range(window + 1, len(best) + 1):
        start, now = best[n - 1 - window], best[n - 1]
        if start - now <= tolerance * abs(start):
            return n
    return len(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--iterations", type=int, default=300, help="the full budget (the default first level's)")
    parser.add_argument("--pyramid-size", type=int, default=512,
                        help="also render each pair at this size with the default settings (0: skip)")
    args = parser.parse_args()
    cases, worst = [], {t: 0.0 for t in TOLERANCES}
    for name, (content, style) in pairs().items():
        for size in (int(text) for text in args.sizes.split(",") if text):
            losses, seconds = full_run(content, style, size, args.iterations)
            best = np.minimum.accumulate(losses)
            rows = []
            for tolerance in TOLERANCES:
                n = stop_point(losses, tolerance)
                ratio = float(best[n - 1] / best[-1])
                worst[tolerance] = max(worst[tolerance], ratio)
                rows.append({"tolerance": tolerance, "evaluations": n, "saved_evaluations": len(losses) - n,
                             "saved_seconds": round(sum(seconds[n:]), 2), "final_loss_ratio": round(ratio, 5)})
            cases.append({"pair": name, "size": size, "budget": len(losses), "seconds": round(sum(seconds), 2),
                          "by_tolerance": rows})
    chosen = max((t for t in TOLERANCES if worst[t] <= WITHIN), default=0.0)
    pyramid = {name: pyramid_shares(content, style, args.pyramid_size)
               for name, (content, style) in pairs().items()} if args.pyramid_size else {}
    shares = {position: [level["share"] for levels in pyramid.values() for level in levels
                         if (level["level"] == 1) == (position == "first")] for position in ("first", "later")}
    print(json.dumps({"window": CONVERGENCE_WINDOW, "within": WITHIN, "cases": cases,
                      "pyramid": {"size": args.pyramid_size, "tolerance": RenderConfig.tolerance, "renders": pyramid,
                                  "mean_share": {k: round(float(np.mean(v)), 3) for k, v in shares.items() if v}},
                      "worst_final_loss_ratio": {str(t): round(r, 5) for t, r in worst.items()},
                      "chosen_tolerance": chosen,
                      "theory": "a stopped run evaluates the same points as the full run up to its stop, so "
                                "its final loss is the full run's best loss at that evaluation"}, indent=1))


if __name__ == "__main__":
    main()
