"""Runs a batch file's renders one after another, each in its own job directory.

Finished jobs are skipped (unless their output was changed or removed since: those run
again), a partial one resumes, a failing one is recorded with its message and the batch
goes on; a stop request ends the batch after a checkpoint.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..config.settings import make_config
from ..core.errors import LargestyleError
from ..engine import events as ev
from ..engine.checkpoints import CheckpointPolicy, RenderInterrupted
from ..engine.memory import is_out_of_memory
from . import layout
from .jobspec import JobSpec
from .job import run_job
from .recorder import output_intact
from .store import JobDirectory


@dataclass
class Outcome:
    name: str
    status: str  # finished, skipped, failed, interrupted, or not run (after a stop)
    seconds: float | None
    output: str | None
    job_dir: str
    message: str | None = None


def job_dir_of(spec: JobSpec) -> Path:
    return spec.job_dir or layout.default_job_dir(spec.output)


def is_finished(spec: JobSpec) -> bool:
    """Whether the job finished and its output is still the image it wrote (a damaged one runs again)."""
    return output_intact(job_dir_of(spec), spec.output)


def state_of(spec: JobSpec, restart: bool = False) -> str:
    """What running the batch would do with this job, in words (for --dry-run)."""
    job = JobDirectory(job_dir_of(spec))
    status = job.status or {}
    if restart and job.path.exists():
        return "would start over (--restart)"
    if is_finished(spec):
        return "finished, would be skipped"
    if status.get("state") == "finished":
        return "finished, but its output is missing or changed: would run again"
    return "would resume" if (job.path / layout.JOB_FILE).exists() else "would run"


def input_problem(path: Path, role: str) -> str | None:
    """Why an input image cannot be read, found without opening it (a pipe would block), or None."""
    fail = f"cannot read {role} image {path}"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{role} image not found: {path}"
    except (OSError, ValueError) as exc:
        return f"{fail}: {getattr(exc, 'strerror', None) or exc}"
    if stat.S_ISDIR(info.st_mode):
        return f"{fail}: it is a directory, not an image file"
    if not stat.S_ISREG(info.st_mode):
        return f"{fail}: not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return f"{fail}: permission denied; check the file's permissions"
    return None


def run_batch(specs: list[JobSpec], callback: Callable[[JobSpec], ev.Callback] | None = None,
              should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None,
              restart: bool = False) -> list[Outcome]:
    """Each job's outcome, in order; ``callback(spec)`` gives the progress callback of a job."""
    outcomes = []
    stopped = False
    for spec in specs:
        job_dir = job_dir_of(spec)
        outcome = Outcome(spec.name, "", None, str(spec.output), str(job_dir))
        outcomes.append(outcome)
        if stopped:
            outcome.status = "not run"
            continue
        if is_finished(spec) and not restart:
            outcome.status = "skipped"
            continue
        started = time.monotonic()
        try:
            for path, role in spec.images():
                problem = input_problem(path, role)
                if problem:
                    raise LargestyleError(problem)
            try:  # a batch's output_dir is made for it
                spec.output.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LargestyleError(f"cannot create {spec.output.parent}: {exc.strerror or exc}")
            run_job(spec.content, spec.styles, spec.output, make_config(**spec.options), spec.job_dir,
                    restart, callback(spec) if callback else None, should_stop, policy)
            outcome.status = "finished"
        except RenderInterrupted as exc:
            outcome.status, outcome.message, stopped = "interrupted", str(exc), True
        except LargestyleError as exc:
            outcome.status, outcome.message = "failed", str(exc)
        except (MemoryError, RuntimeError) as exc:
            outcome.status = "failed"
            outcome.message = "out of memory" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - one job's bug must not end the night's batch
            outcome.status, outcome.message = "failed", f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.monotonic() - started
    return outcomes


def summary_table(outcomes: list[Outcome]) -> str:
    from ..core.units import format_duration

    rows = [("job", "status", "time", "output")] + [
        (o.name, o.status + (f": {o.message}" if o.message else ""),
         format_duration(o.seconds) if o.seconds is not None else "-", o.output or "-") for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
                     for row in rows)


def index_entries(outcomes: list[Outcome]) -> list[dict]:
    return [asdict(outcome) for outcome in outcomes]
