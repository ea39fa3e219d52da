"""A render's progress on disk: every event appended to events.jsonl, status.json kept current."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from pathlib import Path

from ..core.atomic import storage_problem, write_json
from ..core.hashing import sha256_of
from ..core.errors import LargestyleError
from ..core.faults import kill_point
from ..engine import events as ev
from ..engine.meter import WorkMeter
from . import layout
from .store import RESUME_ADVICE, JobDirectory

# status.json is rewritten at most this often during evaluations (and at every level or tile change).
STATUS_INTERVAL = 1.0


def output_intact(job_dir: Path, output: Path) -> bool:
    """Whether ``output`` holds exactly the image the job in ``job_dir`` finished with.

    The sha256 recorded in status.json when the job finished is compared with the file's.
    """
    status = JobDirectory(job_dir).status or {}
    recorded = status.get("output_sha256")
    if status.get("state") != "finished" or not isinstance(recorded, str):
        return False
    try:
        return sha256_of(output) == recorded
    except (OSError, ValueError):
        return False


def event_to_plain(event) -> dict:
    return {"event": type(event).__name__, "time": time.time(), **dataclasses.asdict(event)}


class JobRecorder:
    """An event callback that appends events.jsonl and keeps status.json current.

    A write that fails (a full or read-only disk) stops the render with one line; the
    checkpoints already saved are intact, so the same command resumes later.
    """

    def __init__(self, job: JobDirectory, output: Path):
        self.job, self.output = job, output
        try:
            self.events = open(job.path / layout.EVENTS_FILE, "a")
        except OSError as exc:
            raise self._failed(exc) from None
        self.meter = WorkMeter()
        self.status = {"state": "running", "percent": 0.0, "level": None, "levels": None, "tile": None,
                       "eta_seconds": None, "last_loss": None, "evaluations": 0, "pid": os.getpid(),
                       "message": None, "output": str(output), "output_sha256": None}
        self._written = 0.0

    def _failed(self, exc: OSError) -> LargestyleError:
        return LargestyleError(f"cannot write in job directory {self.job.path}: {storage_problem(exc)}; "
                               f"the last checkpoint is kept: {RESUME_ADVICE}")

    def __call__(self, event) -> None:
        try:
            self.events.write(json.dumps(event_to_plain(event), default=str) + "\n")
            self.events.flush()
        except OSError as exc:
            raise self._failed(exc) from None
        force = True
        if isinstance(event, ev.RenderStarted):
            self.meter.total = max(1, event.total_work)
            self.status["levels"] = len(event.levels)
        elif isinstance(event, ev.LevelStarted):
            self.status.update(level=event.level.index + 1, tile=None)
        elif isinstance(event, ev.TileStarted):
            self.status["tile"] = f"pass {event.pass_index + 1}/{event.passes} tile {event.tile + 1}/{event.tiles}"
        elif isinstance(event, ev.Resumed):
            self.meter.restore(event.work)
            self.status["evaluations"] += event.evaluations
        elif isinstance(event, ev.Evaluation):
            self.meter.advance(event.work)
            self.status["evaluations"] += 1
            self.status["last_loss"] = dataclasses.asdict(event.loss)
            force = False
            kill_point("evaluation")
        elif isinstance(event, ev.OptimisationFinished):
            self.meter.advance(event.skipped * event.work)
        if isinstance(event, ev.TileStarted):
            kill_point("tile")
        self.write_status(force=force)

    def write_status(self, state: str | None = None, message: str | None = None, force: bool = True,
                     output_sha256: str | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._written < STATUS_INTERVAL:
            return
        self._written = now
        if state is not None:
            self.status.update(state=state, message=message)
        if state == "finished":
            self.meter.done = self.meter.total
            self.status["output_sha256"] = output_sha256
        self.status.update(percent=round(100 * self.meter.fraction, 2), eta_seconds=self.meter.eta(),
                           updated=datetime.datetime.now().isoformat(timespec="seconds"))
        try:
            write_json(self.job.path / layout.STATUS_FILE, self.status)
        except OSError as exc:
            if state in ("failed", "interrupted"):
                return  # the failure being recorded is what the user will see
            raise self._failed(exc) from None

    def close(self) -> None:
        try:
            self.events.close()
        except OSError:
            pass
