"""The ``batch`` command: every render of a job file, or with --dry-run each one's plan."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.settings import make_config
from ..core.atomic import remove_stale_temporaries
from ..core.errors import LargestyleError
from .exits import EXIT_FAILED_JOBS, EXIT_INTERRUPTED
from .parser import checkpoint_policy
from .render import plan_text
from .stop import StopRequests


def run_batch(args: argparse.Namespace) -> int:
    from ..jobs.batchfile import load_batch

    specs = load_batch(args.jobs)  # every job's settings and paths, checked together
    if args.dry_run:
        return dry_run(specs, args.restart)
    return _run_jobs(specs, args)


class _Probes:
    """Each input's (width, height), or why it cannot be read, probed once per path, role and pixel limit."""

    def __init__(self):
        self.found: dict[tuple, tuple[int, int] | str] = {}  # (path, role, max pixels) -> size or problem

    def __call__(self, path: Path, role: str, max_pixels: int) -> tuple[int, int] | str:
        from ..io.read import probe_size
        from ..jobs.batch import input_problem

        key = (path, role, max_pixels)
        if key not in self.found:
            problem = input_problem(path, role)  # without opening: a pipe would block
            try:
                self.found[key] = problem or probe_size(path, role, max_pixels=max_pixels)
            except LargestyleError as exc:
                self.found[key] = str(exc)
        return self.found[key]


def dry_run(specs, restart: bool) -> int:
    """Print each job and its plan, then the inputs that would make jobs fail."""
    from ..jobs.batch import state_of

    probe = _Probes()
    unplanned = 0
    unreadable: dict[str, int] = {}  # problem -> jobs it stops
    for number, spec in enumerate(specs, 1):
        print(f"[{number}/{len(specs)}] {spec.name}: {spec.content} in the style of {spec.styles_text} -> "
              f"{spec.output} ({state_of(spec, restart)})")
        try:
            print(_plan_of(spec, probe, unreadable))
        except LargestyleError as exc:
            unplanned += 1
            print(f"cannot plan: {exc}")
    if unreadable:
        print("missing or unreadable inputs (their jobs would fail):")
        for problem, count in unreadable.items():
            print(f"  {problem} ({count} job{'s' if count != 1 else ''})")
    return EXIT_FAILED_JOBS if unplanned else 0


def _plan_of(spec, probe: _Probes, unreadable: dict[str, int]) -> str:
    """One job's plan; its inputs' problems are counted in ``unreadable`` and raised together."""
    config = make_config(**spec.options)
    sizes = [probe(path, role, config.max_input_pixels)
             for path, role in spec.images()]
    problems = [size for size in sizes if isinstance(size, str)]
    for problem in problems:
        unreadable[problem] = unreadable.get(problem, 0) + 1
    if problems:
        raise LargestyleError("; ".join(problems))
    return plan_text(spec.content, spec.styles, config, content_size=sizes[0])


def _run_jobs(specs, args: argparse.Namespace) -> int:
    from ..jobs.batch import run_batch as run_jobs, summary_table
    from ..jobs.batchfile import index_path
    from .progress import ProgressPrinter

    def progress(spec):
        print(f"largestyle: job {spec.name}: {spec.content} in the style of {spec.styles_text} -> {spec.output}",
              file=sys.stderr)
        return stop.watch(ProgressPrinter(quiet=args.quiet))

    remove_stale_temporaries(index_path(args.jobs))  # the index of a batch that was killed while writing it
    with StopRequests() as stop:
        outcomes = run_jobs(specs, progress, stop, checkpoint_policy(args), args.restart)
    index = _write_index(index_path(args.jobs), outcomes)
    print(summary_table(outcomes))
    if index is not None:
        print(f"index: {index}")
    if any(outcome.status == "interrupted" for outcome in outcomes):
        print("largestyle: batch stopped; progress is saved: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED_JOBS if any(outcome.status == "failed" for outcome in outcomes) else 0


def _write_index(path: Path, outcomes):
    """The batch's index written at ``path``; None, with a warning, when it cannot be written."""
    from ..jobs.batch import index_entries
    from ..jobs.report import write_index

    try:
        return write_index(path, index_entries(outcomes))
    except OSError as exc:  # the renders stand; only their overview is missing
        print(f"largestyle: warning: cannot write the index {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
