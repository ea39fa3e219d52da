"""A render's job directory: its settings, checkpoints, progress, images and report.

Layout (every file written atomically: temporary file, fsync, rename):

    job.json          every setting, input sha256s, weights flavour and sha256, version
    status.json       state, percent, level, tile, ETA, last loss (for other programs to watch)
    events.jsonl      every progress event, one JSON object per line
    lock              the pid of the process using the directory
    checkpoints/      plan, finished levels, in-level progress (torch files, plain values)
    canvases/         memory-mapped buffers of a level larger than --max-ram, while it runs
    levels/level-N.png  each finished level's image
    output.EXT        the final image (also copied to the requested output path)
    report.html       inputs, level images, loss curves, timings, settings

Running the same render again resumes from the checkpoints; changed settings or inputs
are refused with a list of what changed.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from . import __version__, events as ev
from .atomic import atomic_write, read_json, write_bytes, write_json
from .checkpoints import CheckpointPolicy, Checkpoints, RenderInterrupted
from .canvas import MappedCanvases
from .config import RenderConfig, output_only
from .engine import Engine
from .errors import LargestyleError
from .faults import kill_point
from .imagesave import check_output_path, save_image
from .inputs import load_inputs, output_alpha
from .progress import WorkMeter
from .weightfiles import sha256_of

JOB_FILE, STATUS_FILE, EVENTS_FILE, LOCK_FILE = "job.json", "status.json", "events.jsonl", "lock"
CHECKPOINT_DIR, LEVELS_DIR, CANVAS_DIR, OUTPUT_STEM = "checkpoints", "levels", "canvases", "output"
DEFAULT_SETTINGS = json.loads(json.dumps(RenderConfig().to_dict()))
# status.json is rewritten at most this often during evaluations (and at every level or tile change).
STATUS_INTERVAL = 1.0


def default_job_dir(output: Path) -> Path:
    """``renders/cat.png`` -> ``renders/cat.job``."""
    return output.with_name(output.stem + ".job")


class JobLock:
    """An exclusive lock on a job directory, released by the kernel if its holder dies.

    ``flock`` on the lock file does the locking; the pid written in it names the holder
    for the message, and a pid left by a killed process marks a stale lock taken over.
    """

    def __init__(self, directory: Path):
        self.path = directory / LOCK_FILE
        self.stale_pid: int | None = None
        self._file = None

    def __enter__(self) -> JobLock:
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = self.path.read_text().strip() or "unknown"
            raise LargestyleError(
                f"job directory {self.path.parent} is in use by process {holder}; wait for it to finish "
                "or stop it, or give this render another --job-dir")
        self._file.seek(0)
        previous = self._file.read().strip()
        if previous.isdigit() and int(previous) != os.getpid():
            self.stale_pid = int(previous)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.close()  # closing releases the flock


class JobDirectory(Checkpoints):
    """Checkpoints in files, plus the job's record, events and status."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _checkpoint(self, name: str) -> Path:
        return self.path / CHECKPOINT_DIR / f"{name}.pt"

    def load(self, name: str):
        path = self._checkpoint(name)
        if not path.exists():
            return None
        try:
            # Mapped, not read: a large level's L-BFGS state is paged in as the optimiser copies it.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # atomic writes make this unlikely: a disk fault or a hand edit
            raise LargestyleError(f"checkpoint {path} cannot be read ({exc}); run with --restart to start over")

    def save(self, name: str, value) -> None:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        data = buffer.getvalue()
        path = self._checkpoint(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as stream:
            stream.write(data[:len(data) // 2])
            kill_point("checkpoint-write")  # a kill here must leave the previous checkpoint intact
            stream.write(data[len(data) // 2:])

    def discard(self, name: str) -> None:
        self._checkpoint(name).unlink(missing_ok=True)

    def finished_level(self, number: int, image: torch.Tensor) -> None:
        super().finished_level(number, image)
        (self.path / LEVELS_DIR).mkdir(exist_ok=True)
        save_image(image[0].cpu(), self.path / LEVELS_DIR / f"level-{number}.png")  # 8-bit previews

    def output(self, suffix: str) -> Path:
        return self.path / f"{OUTPUT_STEM}{suffix}"

    def clear(self) -> None:
        """Everything but the lock: what --restart removes."""
        for child in self.path.iterdir():
            if child.name == LOCK_FILE:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()

    @property
    def record(self) -> dict | None:
        return read_json(self.path / JOB_FILE)

    @property
    def status(self) -> dict | None:
        return read_json(self.path / STATUS_FILE)


def event_to_plain(event) -> dict:
    return {"event": type(event).__name__, "time": time.time(), **dataclasses.asdict(event)}


class JobRecorder:
    """An event callback that appends events.jsonl and keeps status.json current."""

    def __init__(self, job: JobDirectory, output: Path):
        self.job, self.output = job, output
        self.events = open(job.path / EVENTS_FILE, "a")
        self.meter = WorkMeter()
        self.status = {"state": "running", "percent": 0.0, "level": None, "levels": None, "tile": None,
                       "eta_seconds": None, "last_loss": None, "evaluations": 0, "pid": os.getpid(),
                       "message": None, "output": str(output)}
        self._written = 0.0

    def __call__(self, event) -> None:
        self.events.write(json.dumps(event_to_plain(event), default=str) + "\n")
        self.events.flush()
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

    def write_status(self, state: str | None = None, message: str | None = None, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._written < STATUS_INTERVAL:
            return
        self._written = now
        if state is not None:
            self.status.update(state=state, message=message)
        if state == "finished":
            self.meter.done = self.meter.total
        self.status.update(percent=round(100 * self.meter.fraction, 2), eta_seconds=self.meter.eta(),
                           updated=datetime.datetime.now().isoformat(timespec="seconds"))
        write_json(self.job.path / STATUS_FILE, self.status)

    def close(self) -> None:
        self.events.close()


def job_record(content: Path, style: Path, output: Path, config: RenderConfig, engine: Engine) -> dict:
    """What identifies a render: a resume must match it exactly."""
    info = engine.weights_info
    return {
        "version": __version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "content": {"path": str(content.resolve()), "sha256": sha256_of(content)},
        "style": {"path": str(style.resolve()), "sha256": sha256_of(style)},
        "output": str(output.resolve()),
        "settings": json.loads(json.dumps(config.to_dict())),
        "weights": {"flavour": info.flavour if info else None, "sha256": info.sha256 if info else None,
                    "path": str(info.path) if info and info.path else None},
    }


def changes(old: dict, new: dict, output: bool = False) -> list[str]:
    """What differs between two job records, in words; paths may move, contents may not.

    Settings that only change how the output file is written are left out, or with
    ``output`` are the only ones compared.
    """
    found = []
    for role in ("content", "style") if not output else ():
        if old.get(role, {}).get("sha256") != new[role]["sha256"]:
            found.append(f"the {role} image ({new[role]['path']})")
    for name, value in new["settings"].items():
        if output_only(name, new["settings"]) != output:
            continue
        # A setting added since the job was made counts as its default there.
        was = old.get("settings", {}).get(name, DEFAULT_SETTINGS.get(name))
        if was != value:
            found.append(f"--{name.replace('_', '-')} (was {was}, now {value})")
    for name in ("flavour", "sha256") if not output else ():
        if old.get("weights", {}).get(name) != new["weights"][name]:
            found.append(f"the weights' {name}")
    if old.get("version") != new["version"] and not output:
        found.append(f"the largestyle version (was {old.get('version')}, now {new['version']})")
    return found


def run_job(content: Path, style: Path, output: Path, config: RenderConfig, job_dir: Path | None = None,
            restart: bool = False, callback: ev.Callback | None = None,
            should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None) -> Path:
    """Render into a job directory, resuming what it holds; returns the output path written.

    Raises ``RenderInterrupted`` after a checkpoint when ``should_stop`` turns true, and
    ``LargestyleError`` for bad input or a job directory made for another render.
    """
    from .report import write_report

    content, style, output = Path(content), Path(style), check_output_path(output, config.bit_depth)
    job = JobDirectory(job_dir or default_job_dir(output))
    try:
        job.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LargestyleError(f"cannot create job directory {job.path}: {exc.strerror or exc}")
    with JobLock(job.path) as lock:
        if restart:
            job.clear()
        finished = (job.status or {}).get("state") == "finished"  # before the recorder rewrites it
        inputs = load_inputs(content, style, config)
        recorder = JobRecorder(job, output)
        notify = callback or (lambda event: None)

        def both(event):
            recorder(event)
            notify(event)

        if lock.stale_pid is not None:
            both(ev.Notice("stale-lock", f"took over {job.path} from process {lock.stale_pid}, "
                                         "which is no longer running"))
        for message in inputs.messages:
            both(message)
        canvases = MappedCanvases(job.path / CANVAS_DIR)
        canvases.clear()  # buffers of a process that was killed
        engine = Engine(config, both, checkpoints=job, should_stop=should_stop, policy=policy, canvases=canvases)
        engine.network  # loads the weights: their hash is part of the record
        record, previous = job_record(content, style, output, config, engine), job.record
        final = job.output(output.suffix.lower())
        if previous is not None:
            changed = changes(previous, record)
            if changed:
                recorder.close()
                raise LargestyleError(
                    f"job directory {job.path} holds a render with other settings or inputs: changed "
                    f"{'; '.join(changed)}. Run with --restart to start over (its checkpoints are deleted), "
                    "or give this render another --job-dir")
            rewritten = changes(previous, record, output=True)
            if rewritten:  # the render stands; its output is written again from the last level's checkpoint
                both(ev.Info("output-settings", f"writing the output again with {'; '.join(rewritten)}"))
                final.unlink(missing_ok=True)
                write_json(job.path / JOB_FILE, {**previous, "settings": record["settings"]})
        else:
            write_json(job.path / JOB_FILE, record)
        try:
            if finished and final.exists():
                both(ev.Notice("already-finished", f"{job.path} is already finished; copying its output"))
            else:
                image = engine.render(inputs.content, inputs.style)
                save_image(image, final, alpha=output_alpha(inputs, config), bit_depth=config.bit_depth,
                           dpi=config.dpi, jpeg_quality=config.jpeg_quality)
            _copy(final, output)
            recorder.write_status("finished")
        except RenderInterrupted as exc:
            recorder.write_status("interrupted", str(exc))
            raise
        except BaseException as exc:
            recorder.write_status("failed", str(exc) or type(exc).__name__)
            raise
        finally:
            recorder.close()
            try:
                write_report(job.path)
            except Exception as exc:  # a report must never cost the render
                notify(ev.Notice("report", f"could not write {job.path / 'report.html'}: {exc}"))
    return output


def _copy(source: Path, target: Path) -> None:
    try:
        write_bytes(target, source.read_bytes())
    except OSError as exc:
        raise LargestyleError(f"cannot write {target}: {exc.strerror or exc}")
