"""Blend vs exact tiling on the same render: wall time, final loss, seams.

Both optimise the same level from the same start with the same total number of loss
evaluations: exact spends them on the whole level, blend splits them over its tiles
and passes. The final loss is measured on the whole image, untiled. The seam measure
is the mean absolute difference between neighbouring pixels across the blend grid's
tile borders, divided by the same everywhere else (1 = no visible seam). Prints JSON.

    .venv/bin/python bench/bench_tiling.py [--size 384] [--evaluations 48] [--tile 256]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from skimage import data

from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.geometry.pyramid import fit_long_side, resize
from largestyle.geometry.tiling import BlendGrid, shifts_for_passes


def tensor(array) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255)[None]


def seam_ratio(image: torch.Tensor, grid: BlendGrid) -> float:
    """Neighbour differences across tile borders (in image coordinates) over those elsewhere."""
    columns = image[..., :, 1:] - image[..., :, :-1]
    borders = set()
    for start in grid.cols.starts:
        for edge in (start, start + grid.cols.extent):
            x = edge - grid.cols.pad_before
            if 0 < x < image.shape[-1]:
                borders.add(x - 1)
    mask = torch.zeros(columns.shape[-1], dtype=torch.bool)
    mask[sorted(borders)] = True
    magnitude = columns.abs().mean(dim=(0, 1, 2))
    return float(magnitude[mask].mean() / magnitude[~mask].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--evaluations", type=int, default=48)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()

    content, style = tensor(data.chelsea()), tensor(data.immunohistochemistry())
    shape = fit_long_side(*content.shape[-2:], args.size)
    grids = [BlendGrid.plan(*shape, args.tile, shift) for shift in shifts_for_passes(args.tile, args.passes)]
    per_tile = max(1, args.evaluations // sum(len(grid.tiles) for grid in grids))
    grid = grids[-1]  # the last pass's seams are the ones left in the output
    common = dict(target_size=args.size, first_level_factor=1, max_memory="1MB", device="cpu", weights="random")
    runs = {
        "exact": make_config(tiling="exact", iterations=args.evaluations, tile_size=args.tile // 2, **common),
        "blend": make_config(tiling="blend", iterations=per_tile, tile_size=args.tile, passes=args.passes, **common),
    }
    report = {"size": list(shape), "blend_tiles_per_pass": [len(g.tiles) for g in grids],
              "blend_evaluations_per_tile": per_tile,
              "results": {}}
    for name, config in runs.items():
        engine = Engine(config)
        started = time.perf_counter()
        out = engine.render(content[0], style[0])[None]
        seconds = time.perf_counter() - started
        network, cfg = engine.network, engine.config
        level_content = resize(content, shape)
        level_style = resize(style, fit_long_side(*style.shape[-2:], args.size))
        objective = Objective(network, resolve_loss_weights(cfg), content_targets(network, level_content, cfg.content_layers),
                              style_targets(network, level_style, cfg.style_layers))
        terms, _ = objective.value_and_grad(out)
        report["results"][name] = {"seconds": seconds, "final_loss_untiled": terms.total,
                                   "content": terms.content, "style": terms.style, "tv": terms.tv,
                                   "seam_ratio": seam_ratio(out, grid)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
