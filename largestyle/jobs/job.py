"""A render's job directory: its settings, checkpoints, progress, images and report.

Layout (every file written atomically: temporary file, fsync, rename):

    .largestyle-job   the marker that says this folder is a job directory
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
are refused with a list of what changed. Nothing is trusted unchecked: job.json is
validated, and every checkpoint's sha256 and the render it was made for are recorded
when it is written and compared when it is read. Only the names above are ever deleted
(see ``largestyle.joblayout``).
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import hashlib
import io
import json
import os
import stat
import time
from pathlib import Path
from typing import Callable

import torch

from ..engine import events as ev

from . import layout
from ..core.atomic import atomic_write, read_json, remove_stale_temporaries, storage_problem, write_bytes, write_json
from ..engine.checkpoints import CheckpointPolicy, Checkpoints, RenderInterrupted
from ..engine.buffers import MappedCanvases
from ..config.settings import RenderConfig
from ..engine.engine import Engine
from ..core.errors import LargestyleError
from ..core.faults import kill_point
from ..io.write import check_output_path, save_image
from ..io.inputs import load_inputs, output_alpha
from .record import changes, job_record, problem_with
from ..core.pathsafety import check_render_paths
from ..engine.meter import WorkMeter
from ..network.weightfiles import sha256_of

# status.json is rewritten at most this often during evaluations (and at every level or tile change).
STATUS_INTERVAL = 1.0
SUMS_FILE = "sums.json"  # in checkpoints/: the render they were made for and each file's sha256
RESUME_ADVICE = "free some space (or give the render a --job-dir elsewhere) and run the same command again to resume"


def default_job_dir(output: Path) -> Path:
    """``renders/cat.png`` -> ``renders/cat.job``."""
    return output.with_name(output.stem + ".job")


class JobLock:
    """An exclusive lock on a job directory, released by the kernel if its holder dies.

    ``flock`` on the lock file does the locking; the pid written in it names the holder
    for the message, and a pid left by a killed process marks a stale lock taken over.
    """

    def __init__(self, directory: Path):
        self.path = directory / layout.LOCK_FILE
        self.stale_pid: int | None = None
        self._file = None

    def __enter__(self) -> JobLock:
        try:
            self._file = open(self.path, "a+")
        except OSError as exc:
            raise LargestyleError(f"cannot use job directory {self.path.parent}: {storage_problem(exc)}") from None
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
        try:
            self._file.seek(0)
            self._file.truncate()
        except OSError:
            pass  # a read-only or failing disk: the flock still goes with the file
        self._file.close()  # closing releases the flock


class DamagedState(LargestyleError):
    """A job directory file that fails its check; it is never used."""


class JobDirectory(Checkpoints):
    """Checkpoints in files, each checked against the sha256 recorded when it was written.

    ``identity`` is the render the checkpoints belong to (``jobrecord.identity``); it is
    recorded beside them and a store made for another render refuses to load them.
    """

    def __init__(self, path: Path, identity: str | None = None):
        self.path = Path(path)
        self.identity = identity

    @property
    def _folder(self) -> Path:
        return self.path / layout.CHECKPOINT_DIR

    def _checkpoint(self, name: str) -> Path:
        return self._folder / f"{name}.pt"

    def _damaged(self, what: str, why: str) -> DamagedState:
        return DamagedState(f"{what} in job directory {self.path} is damaged ({why}); it is not used: "
                            "run with --restart to start over")

    def sums(self) -> dict | None:
        """The checkpoints' record: {"identity": ..., "files": {name: [sha256, previous sha256]}}, or None."""
        path = self._folder / SUMS_FILE
        if not path.exists():
            return None
        sums = read_json(path)
        if sums is None or not isinstance(sums.get("identity"), str) or not isinstance(sums.get("files"), dict):
            raise self._damaged(f"{layout.CHECKPOINT_DIR}/{SUMS_FILE}", "not a valid record of the checkpoints")
        return sums

    def has_checkpoints(self) -> bool:
        folder = self._folder
        return folder.is_dir() and any(entry.suffix == ".pt" for entry in folder.iterdir())

    def load(self, name: str):
        path = self._checkpoint(name)
        if not path.exists():
            return None
        shown = f"{layout.CHECKPOINT_DIR}/{path.name}"
        sums = self.sums()
        if sums is None:
            raise self._damaged(shown, f"{layout.CHECKPOINT_DIR}/{SUMS_FILE}, which records its sha256, is missing")
        if self.identity is not None and sums["identity"] != self.identity:
            raise self._damaged(shown, "it was made for another render than job.json describes")
        try:
            actual = sha256_of(path)
        except OSError as exc:
            raise LargestyleError(f"cannot read {path}: {storage_problem(exc)}") from None
        if actual not in sums["files"].get(name, ()):
            raise self._damaged(shown, "its sha256 differs from the one recorded when it was written")
        try:
            # Mapped, not read: a large level's L-BFGS state is paged in as the optimiser copies it.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # its bytes are the ones written, so only a bug or a disk fault gets here
            raise self._damaged(shown, "it cannot be read back") from None

    def save(self, name: str, value) -> None:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        data = buffer.getvalue()
        path = self._checkpoint(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sums = self.sums() or {"identity": self.identity, "files": {}}
            current = sums["files"].get(name, [])[:1]
            with atomic_write(path) as stream:
                stream.write(data[:len(data) // 2])
                kill_point("checkpoint-write")  # a kill (or a full disk) here must leave the previous checkpoint intact
                stream.write(data[len(data) // 2:])
                # Recorded before the rename: whichever file a crash leaves, its sha256 is listed.
                sums["files"][name] = [hashlib.sha256(data).hexdigest()] + current
                write_json(self._folder / SUMS_FILE, sums)
        except OSError as exc:
            raise LargestyleError(f"cannot save a checkpoint in {self._folder}: {storage_problem(exc)}; "
                                  f"the last checkpoint is kept: {RESUME_ADVICE}") from None

    def discard(self, name: str) -> None:
        self._checkpoint(name).unlink(missing_ok=True)

    def finished_level(self, number: int, image: torch.Tensor) -> None:
        super().finished_level(number, image)
        try:
            (self.path / layout.LEVELS_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise LargestyleError(f"cannot write in {self.path}: {storage_problem(exc)}; {RESUME_ADVICE}") from None
        save_image(image[0].cpu(), self.path / layout.LEVELS_DIR / f"level-{number}.png")  # 8-bit previews

    def output(self, suffix: str) -> Path:
        return self.path / f"{layout.OUTPUT_STEM}{suffix}"

    @property
    def record(self) -> dict | None:
        return read_json(self.path / layout.JOB_FILE)

    @property
    def status(self) -> dict | None:
        return read_json(self.path / layout.STATUS_FILE)


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


def run_job(content: Path, style: Path, output: Path, config: RenderConfig, job_dir: Path | None = None,
            restart: bool = False, callback: ev.Callback | None = None,
            should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None) -> Path:
    """Render into a job directory, resuming what it holds; returns the output path written.

    Raises ``RenderInterrupted`` after a checkpoint when ``should_stop`` turns true, and
    ``LargestyleError`` for bad input, a job directory made for another render or
    holding damaged state, or a job directory or output that would touch an input.
    """
    from .report import write_report

    content, style, output = Path(content), Path(style), check_output_path(output, config.bit_depth)
    job = JobDirectory(job_dir or default_job_dir(output))
    inputs_by_role = {"content image": content, "style image": style}
    if config.weights not in (None, "random"):
        inputs_by_role["weights file"] = Path(config.weights)
    check_render_paths(inputs_by_role, output, job.path)
    # Everything that can be checked without writing is checked before the job directory is made.
    inputs = load_inputs(content, style, config)
    early: list = []  # events before the recorder exists, passed on once it does
    sink = {"emit": early.append}
    canvases = MappedCanvases(job.path / layout.CANVAS_DIR)
    engine = Engine(config, lambda event: sink["emit"](event), checkpoints=job, should_stop=should_stop,
                    policy=policy, canvases=canvases)
    engine.network  # loads the weights: their hash is part of the record
    if not job.has_checkpoints():  # a resume keeps the plan it saved
        engine.plan(*inputs.content.shape[-2:], tuple(inputs.style.shape[-2:]))
    record = job_record(content, style, output, config, engine.weights_info,
                        _input_sha256(content, "content"), _input_sha256(style, "style"))
    layout.prepare(job.path)
    with JobLock(job.path) as lock:
        if restart:
            layout.clear(job.path)
        layout.remove_leftovers(job.path)
        remove_stale_temporaries(output)
        canvases.clear()  # buffers of a process that was killed
        status = job.status or {}
        finished = status.get("state") == "finished"  # before the recorder rewrites it
        recorder = JobRecorder(job, output)
        notify = callback or (lambda event: None)

        def both(event):
            recorder(event)
            notify(event)

        sink["emit"] = both
        try:
            if lock.stale_pid is not None:
                both(ev.Notice("stale-lock", f"took over {job.path} from process {lock.stale_pid}, "
                                             "which is no longer running"))
            for event in inputs.messages + early:
                both(event)
            final = job.output(output.suffix.lower())
            if _trust_record(job, record, both):
                finished = False
                final.unlink(missing_ok=True)
        except BaseException:
            recorder.close()
            raise
        try:
            if finished and final.exists() and status.get("output_sha256") == _sha256_or_none(final):
                both(ev.Notice("already-finished", f"{job.path} is already finished; copying its output"))
                digest = status["output_sha256"]
            else:
                if finished and final.exists():
                    both(ev.Notice("damaged-output", f"{final} differs from the image the job finished with; "
                                                     "writing it again from the checkpoints"))
                image = engine.render(inputs.content, inputs.style)
                save_image(image, final, alpha=output_alpha(inputs, config), bit_depth=config.bit_depth,
                           dpi=config.dpi, jpeg_quality=config.jpeg_quality)
                digest = sha256_of(final)
            _copy(final, output, digest)
            recorder.write_status("finished", output_sha256=digest)
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
                notify(ev.Notice("report", f"could not write {job.path / layout.REPORT_FILE}: {exc}"))
    return output


def _trust_record(job: JobDirectory, record: dict, emit: ev.Callback) -> bool:
    """Check job.json and the checkpoints against ``record`` before anything is resumed.

    Returns True when the output must be written again (only output settings changed).
    Sets the store's identity, so every checkpoint read later is checked against it.
    Raises for a job made with other settings or inputs, and for damaged state that
    cannot be proven to belong to this render.
    """
    path = job.path / layout.JOB_FILE
    has_state = job.has_checkpoints()
    sums = job.sums() if has_state or (job.path / layout.CHECKPOINT_DIR / SUMS_FILE).exists() else None
    previous = _read_record(path) if path.exists() else None
    problem = problem_with(previous) if path.exists() else "it is missing"
    if problem is not None and has_state:
        if sums is None or sums["identity"] != record["identity"]:
            raise DamagedState(f"job.json in job directory {job.path} is damaged ({problem}), so its checkpoints "
                               "cannot be trusted; run with --restart to start over")
        emit(ev.Notice("rebuilt-record", f"job.json in {job.path} was damaged ({problem}); rebuilt it, since its "
                                         "checkpoints were made for exactly this render"))
        previous = None
    elif problem is not None:
        previous = None  # nothing was resumed from it: the job starts afresh
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
                           "job.json describes (job.json was replaced?); run with --restart to start over")
    job.identity = previous["identity"]
    rewritten = changes(previous, record, output=True)
    if rewritten:  # the render stands; its output is written again from the last level's checkpoint
        emit(ev.Info("output-settings", f"writing the output again with {'; '.join(rewritten)}"))
        _write_record(job, {**previous, "settings": record["settings"]})
    return bool(rewritten)


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


def _input_sha256(path: Path, role: str) -> str:
    """An input's sha256, refusing (never blocking on) a path swapped for a pipe or device since it was read."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(handle, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise LargestyleError(f"cannot read {role} image {path}: it is no longer a regular file")
            digest = hashlib.sha256()
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
            return digest.hexdigest()
    except OSError as exc:
        raise LargestyleError(f"cannot read {role} image {path}: {storage_problem(exc)}") from None


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None


def _copy(source: Path, target: Path, digest: str) -> None:
    """The job's output to where the user asked for it, as the bytes that were checked."""
    try:
        data = source.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise LargestyleError(f"{source} changed while it was being copied; run the same command again")
        write_bytes(target, data)
    except OSError as exc:
        raise LargestyleError(f"cannot write {target}: {storage_problem(exc)}; "
                              "free some space or choose another -o, and run the same command again") from None
