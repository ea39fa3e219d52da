"""The ``render`` and ``plan`` commands: one render, or how it would run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config.settings import CONVERGENCE_WINDOW, make_config
from ..core.errors import LargestyleError
from ..network.weights import NO_FETCH_ENV, fetch, find_weights
from .parser import checkpoint_policy, render_options
from .stop import StopRequests


def default_output(content: str, styles: list[str]) -> Path:
    """CONTENT-STYLE.png here; several styles' names joined by +."""
    return Path(f"{Path(content).stem}-{'+'.join(Path(style).stem for style in styles)}.png")


def run_render(args: argparse.Namespace) -> int:
    from ..jobs.job import run_job
    from ..io.write import check_output_path
    from .progress import ProgressPrinter

    config = make_config(**render_options(args))
    output = check_output_path(args.output or default_output(args.content, args.styles), config.bit_depth)
    if config.weights is None:
        fetch_once(quiet=args.quiet)
    with StopRequests() as stop:
        run_job(Path(args.content), tuple(Path(style) for style in args.styles), output, config,
                Path(args.job_dir) if args.job_dir else None, args.restart,
                stop.watch(ProgressPrinter(quiet=args.quiet)), stop, checkpoint_policy(args))
    if not args.quiet:
        print(f"wrote {output}", file=sys.stderr)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    print(plan_text(args.content, args.styles, make_config(**render_options(args))))
    return 0


def plan_text(content_path, style_paths, config, content_size: tuple[int, int] | None = None) -> str:
    """The plan of one render; ``content_size`` is the content's (width, height) when the caller
    has already probed every image (a batch's dry run probes each file once)."""
    from ..engine.buffers import MappedBuffers
    from ..engine.engine import Engine
    from ..core.vgg import halo
    from ..io.read import probe_size
    from ..engine.estimate import describe, seconds_per_pixel
    from ..geometry.printsize import describe as describe_size
    from ..geometry.pyramid import output_frame

    shares = config.blend_weights(len(style_paths))  # refuses a --style-blend of the wrong length first
    if content_size is None:
        width, height = probe_size(content_path, "content", max_pixels=config.max_input_pixels)
        for style_path in style_paths:
            probe_size(style_path, "style", max_pixels=config.max_input_pixels)
    else:
        width, height = content_size
    # Plans as a render would, with a job directory for buffers larger than --max-ram (planning maps nothing).
    engine = Engine(config, buffers=MappedBuffers(Path(".")))
    levels, budget = engine.plan(height, width)
    size = describe_size(*output_frame(config, height, width)[0], config.dpi)
    # The calibration runs (and loads the network) once per device and network in a process.
    return (describe(levels, budget, seconds_per_pixel(engine), halo(engine.layers), engine.memory, config)
            + f"\noutput: {size}" + (f" (print {config.print_size}, {config.print_fit})" if config.print_size else "")
            + f"\n{method_line(config)}"
            + ("\nstyles: " + ", ".join(f"{Path(path).name} {share:.0%}" for path, share in zip(style_paths, shares))
               if len(style_paths) > 1 else ""))


def method_line(config) -> str:
    """How each level is optimised and the output finished, as the options set it."""
    start = {"content": "the content", "noise": f"noise (--seed {config.seed})"}.get(config.init, config.init)
    optimiser = "L-BFGS" if config.optimizer == "lbfgs" else f"Adam (--learning-rate {config.learning_rate:g})"
    stop = (f"ends once it improves by less than {config.tolerance:g} over {CONVERGENCE_WINDOW} evaluations"
            if config.tolerance else "runs all its evaluations (--tolerance 0)")
    finish = [f"--preserve-colors {config.preserve_colors}"] if config.preserve_colors != "none" else []
    finish += [f"--remove-noise {config.remove_noise:g}"] if config.remove_noise else []
    optimiser += ", bf16 convolutions" if config.precision == "bf16" else ""
    return (f"method: {optimiser} from {start}; each level {stop}"
            + (f"; then {', '.join(finish)}" if finish else ""))


def fetch_once(quiet: bool) -> None:
    """Without trained weights, try one download; offline, say so and let the render go on."""
    if find_weights() is not None or os.environ.get(NO_FETCH_ENV) == "1":
        return
    print("largestyle: no trained VGG-19 weights found; fetching them once "
          f"(set {NO_FETCH_ENV}=1 to skip)", file=sys.stderr)
    try:
        path = fetch("torchvision", progress=not quiet)
    except LargestyleError as exc:
        print(f"largestyle: warning: {exc}", file=sys.stderr)
    else:
        print(f"largestyle: saved {path}", file=sys.stderr)
