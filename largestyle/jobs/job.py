"""A render in a job directory: checked, locked, resumed from what the directory holds, recorded.

Running the same render again resumes from the checkpoints; changed settings or inputs
are refused with a list of what changed (see ``resume``). The files are named in
``layout``; the checkpoints are kept by ``store``, progress by ``recorder``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config.settings import RenderConfig
from ..core.atomic import remove_stale_temporaries, storage_problem, write_bytes
from ..core.errors import LargestyleError
from ..core.hashing import sha256_of, stream_sha256
from ..core.pathsafety import check_render_paths
from ..engine import events as ev
from ..engine.buffers import MappedBuffers
from ..engine.checkpoints import CheckpointPolicy, RenderInterrupted
from ..engine.engine import Engine
from ..imaging.finish import check_finishing, finish_output
from ..io.inputs import Inputs, load_inputs, output_alpha, style_roles, style_sources
from ..io.write import check_output_path, save_image

from . import layout
from .lock import JobLock
from .record import job_record
from .recorder import JobRecorder
from .resume import trust_record
from .store import JobDirectory


@dataclass
class _Render:
    """What ``run_job`` checks and builds before it writes anything."""

    job: JobDirectory
    output: Path
    config: RenderConfig
    inputs: Inputs
    engine: Engine
    buffers: MappedBuffers
    record: dict

    @property
    def final(self) -> Path:
        """The output in the job directory, copied to ``output`` when it is done."""
        return self.job.output(self.output.suffix.lower())


def run_job(content: Path, style: Path | Sequence[Path], output: Path, config: RenderConfig,
            job_dir: Path | None = None,
            restart: bool = False, callback: ev.Callback | None = None,
            should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None) -> Path:
    """Render into a job directory, resuming what it holds; returns the output path written.

    ``style`` is one style image or several, blended by ``config.style_blend``.

    Raises ``RenderInterrupted`` after a checkpoint when ``should_stop`` turns true, and
    ``LargestyleError`` for bad input, a job directory made for another render or
    holding damaged state, or a job directory or output that would touch an input.
    """
    early: list = []  # events before the recorder exists, passed on once it does
    sink = {"emit": early.append}
    render = _prepare(content, style, output, config, job_dir, lambda event: sink["emit"](event),
                      should_stop, policy)
    job = render.job
    layout.prepare(job.path)
    with JobLock(job.path) as lock:
        if restart:
            layout.clear(job.path)
        _remove_leftovers(render)
        status = job.status or {}
        finished = status if status.get("state") == "finished" else None  # read before the recorder rewrites it
        recorder = JobRecorder(job, render.output)
        notify = callback or (lambda event: None)

        def both(event):
            recorder(event)
            notify(event)

        sink["emit"] = both
        try:
            if _start(render, lock, render.inputs.messages + early, both):
                finished = None
        except BaseException:
            recorder.close()
            raise
        _finish(render, recorder, finished, both, notify)
    return render.output


def _prepare(content: Path, style, output: Path, config: RenderConfig, job_dir: Path | None,
             emit: ev.Callback, should_stop: Callable[[], bool] | None,
             policy: CheckpointPolicy | None) -> _Render:
    """Everything that can be checked without writing, checked before the job directory is made."""
    check_finishing(config)
    styles = tuple(Path(path) for path in style_sources(style))
    content, output = Path(content), check_output_path(output, config.bit_depth)
    job = JobDirectory(job_dir or layout.default_job_dir(output))
    inputs_by_role = {"content image": content, **style_roles(styles),
                      **{role: Path(path) for role, path in config.input_files().items()}}
    check_render_paths(inputs_by_role, output, job.path)
    inputs = load_inputs(content, styles, config)
    buffers = MappedBuffers(job.path / layout.CANVAS_DIR)
    engine = Engine(config, emit, checkpoints=job, should_stop=should_stop, policy=policy, buffers=buffers)
    engine.network  # loads the weights: their hash is part of the record
    if not job.has_checkpoints():  # a resume keeps the plan it saved
        engine.plan(*inputs.content.shape[-2:], [tuple(image.shape[-2:]) for image in inputs.styles])
    init = config.init_image and _input_sha256(Path(config.init_image), "init")
    record = job_record(content, styles, output, config, engine.weights_info, _input_sha256(content, "content"),
                        [_input_sha256(path, "style") for path in styles], init)
    return _Render(job, output, config, inputs, engine, buffers, record)


def _remove_leftovers(render: _Render) -> None:
    """What a killed run left: temporary files, and the buffers it had mapped."""
    layout.remove_leftovers(render.job.path)
    remove_stale_temporaries(render.output)
    render.buffers.clear()


def _start(render: _Render, lock: JobLock, events: list, emit: ev.Callback) -> bool:
    """Pass on the events so far and check the job directory against the render.

    Returns True when the output must be written again (its old one is removed).
    """
    if lock.stale_pid is not None:
        emit(ev.Notice("stale-lock", f"took over {render.job.path} from process {lock.stale_pid}, "
                                     "which is no longer running"))
    for event in events:
        emit(event)
    if trust_record(render.job, render.record, emit):
        render.final.unlink(missing_ok=True)
        return True
    return False


def _finish(render: _Render, recorder: JobRecorder, finished: dict | None, emit: ev.Callback,
            notify: ev.Callback) -> None:
    """Write the output and copy it where it was asked for; record how the job ended, and its report.

    ``finished`` is the status of a job that had finished before, or None.
    """
    try:
        digest = _final_image(render, finished, emit)
        _copy(render.final, render.output, digest)
        recorder.write_status("finished", output_sha256=digest)
    except RenderInterrupted as exc:
        recorder.write_status("interrupted", str(exc))
        raise
    except BaseException as exc:
        recorder.write_status("failed", str(exc) or type(exc).__name__)
        raise
    finally:
        recorder.close()
        _write_report(render.job, notify)


def _final_image(render: _Render, finished: dict | None, emit: ev.Callback) -> str:
    """The sha256 of the final image: a finished job's own when it is intact, else rendered (again)."""
    final = render.final
    if finished is not None and final.exists() and finished.get("output_sha256") == _sha256_or_none(final):
        emit(ev.Notice("already-finished", f"{render.job.path} is already finished; copying its output"))
        return finished["output_sha256"]
    if finished is not None and final.exists():
        emit(ev.Notice("damaged-output", f"{final} differs from the image the job finished with; "
                                         "writing it again from the checkpoints"))
    config = render.config
    image = finish_output(render.engine.render(render.inputs.content, render.inputs.styles, render.inputs.init),
                          render.inputs.content, config)
    save_image(image, final, alpha=output_alpha(render.inputs, config), bit_depth=config.bit_depth,
               dpi=config.dpi, jpeg_quality=config.jpeg_quality)
    return sha256_of(final)


def _write_report(job: JobDirectory, notify: ev.Callback) -> None:
    from .report import write_report

    try:
        write_report(job.path)
    except Exception as exc:  # a report must never cost the render
        notify(ev.Notice("report", f"could not write {job.path / layout.REPORT_FILE}: {exc}"))


def _input_sha256(path: Path, role: str) -> str:
    """An input's sha256, refusing (never blocking on) a path swapped for a pipe or device since it was read."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(handle, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise LargestyleError(f"cannot read {role} image {path}: it is no longer a regular file")
            return stream_sha256(stream)
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
