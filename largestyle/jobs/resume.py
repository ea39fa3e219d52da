"""Before a job resumes: its job.json and checkpoints checked against the render asked for.

Nothing is trusted unchecked: job.json is validated, and the checkpoints' record of the
render they were made for must match it (a damaged job.json is rebuilt only then).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import storage_problem, write_json
from ..core.errors import LargestyleError
from ..engine import events as ev
from . import layout
from .record import changes, problem_with
from .store import DamagedState, JobDirectory


def trust_record(job: JobDirectory, record: dict, emit: ev.Callback) -> bool:
    """Check job.json and the checkpoints against ``record`` before anything is resumed.

    Returns True when the output must be written again (only output settings changed).
    Sets the store's identity, so every checkpoint read later is checked against it.
    Raises for a job made with other settings or inputs, and for damaged state that
    cannot be proven to belong to this render.
    """
    previous, sums = _previous_record(job, record, emit)
    if previous is None:
        _write_record(job, record)
        job.identity = record["identity"]
        return False
    changed = changes(previous, record)
    if changed:
        raise LargestyleError(
            f"job directory {job.path} holds a render with other settings or inputs: changed "
            f"{'; '.join(changed)}. Run with --restart to start over (its checkpoints are deleted), "
            "or give this render another --job-dir")
    if sums is not None and sums["identity"] != previous["identity"]:
        raise DamagedState(f"the checkpoints in job directory {job.path} were made for another render than its "
                           f"{layout.JOB_FILE} describes ({layout.JOB_FILE} was replaced?); "
                           "run with --restart to start over")
    job.identity = previous["identity"]
    rewritten = changes(previous, record, output=True)
    if rewritten:  # the render stands; its output is written again from the last level's checkpoint
        emit(ev.Info("output-settings", f"writing the output again with {'; '.join(rewritten)}"))
        _write_record(job, {**previous, "settings": record["settings"]})
    return bool(rewritten)


def _previous_record(job: JobDirectory, record: dict, emit: ev.Callback) -> tuple[dict | None, dict | None]:
    """(job.json when it is valid, else None; the checkpoints' sums, or None when there are none).

    A damaged job.json is rebuilt only when the checkpoints prove they were made for ``record``.
    """
    path = job.path / layout.JOB_FILE
    has_state = job.has_checkpoints()
    sums = job.sums() if has_state or (job.path / layout.CHECKPOINT_DIR / layout.SUMS_FILE).exists() else None
    previous = _read_record(path) if path.exists() else None
    problem = problem_with(previous) if path.exists() else "it is missing"
    if problem is not None and has_state:
        if sums is None or sums["identity"] != record["identity"]:
            raise DamagedState(f"{layout.JOB_FILE} in job directory {job.path} is damaged ({problem}), so its "
                               "checkpoints cannot be trusted; run with --restart to start over")
        emit(ev.Notice("rebuilt-record", f"{layout.JOB_FILE} in {job.path} was damaged ({problem}); rebuilt it, "
                                         "since its checkpoints were made for exactly this render"))
    return (None if problem is not None else previous), sums


def _read_record(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _write_record(job: JobDirectory, record: dict) -> None:
    try:
        write_json(job.path / layout.JOB_FILE, record)
    except OSError as exc:
        raise LargestyleError(f"cannot write in job directory {job.path}: {storage_problem(exc)}") from None
