"""The names largestyle writes in a job directory, and the only ones it ever deletes.

    .largestyle-job   the marker that says this folder is a job directory
    job.json          every setting, input sha256s, weights flavour and sha256, version
    status.json       state, percent, level, tile, ETA, last loss (for other programs to watch)
    events.jsonl      every progress event, one JSON object per line
    lock              the pid of the process using the directory
    checkpoints/      plan, finished levels, in-level progress (torch files, plain values), sums.json
    canvases/         memory-mapped buffers of a level larger than --max-ram, while it runs
    levels/level-N.png  each finished level's image
    output.EXT        the final image (also copied to the requested output path)
    report.html       inputs, level images, loss curves, timings, settings (images in report/)

Every file is written atomically (temporary file, fsync, rename).

A job directory carries a marker file that says it is one. A folder without it is
taken only when it is new or empty (or holds nothing but a job's own files, as made
before the marker existed); any other folder is the user's and is refused.
Clearing (``--restart``) and the clean-up of a killed run's leftovers remove only
these names, never follow a symbolic link, and never leave the job directory.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..core.atomic import TEMPORARY_SUFFIX, is_temporary_of, read_json, remove_stale_temporaries, storage_problem
from ..config.settings import OUTPUT_SUFFIXES
from ..core.errors import LargestyleError

MARKER_FILE = ".largestyle-job"
MARKER_TEXT = "This folder is a largestyle job directory: largestyle writes and deletes the files in it.\n"
JOB_DIR_SUFFIX = ".job"  # the default job directory of renders/cat.png is renders/cat.job
JOB_FILE, STATUS_FILE, EVENTS_FILE, LOCK_FILE = "job.json", "status.json", "events.jsonl", "lock"
REPORT_FILE, OUTPUT_STEM = "report.html", "output"
CHECKPOINT_DIR, LEVELS_DIR, CANVAS_DIR, REPORT_DIR = "checkpoints", "levels", "canvases", "report"
# In checkpoints/: one file a checkpoint, and the render they were made for with each file's sha256.
CHECKPOINT_SUFFIX, SUMS_FILE = ".pt", "sums.json"
# In levels/: each finished level's image, numbered from 1.
LEVEL_IMAGE = re.compile(r"level-(\d+)\.png")
# In report/: the final image's preview and the loss plot (thumbnails are named below).
REPORT_OUTPUT, REPORT_LOSS = "output.jpg", "loss.png"

# Files at the top of a job directory, and the file names each of its folders may hold.
TOP_FILES = (JOB_FILE, STATUS_FILE, EVENTS_FILE, REPORT_FILE) + tuple(OUTPUT_STEM + s for s in OUTPUT_SUFFIXES)
FOLDER_FILES = {
    CHECKPOINT_DIR: re.compile(r"[\w-]+" + re.escape(CHECKPOINT_SUFFIX) + "|" + re.escape(SUMS_FILE)),
    LEVELS_DIR: LEVEL_IMAGE,
    CANVAS_DIR: re.compile(r"canvas-\w+\.f32"),
    REPORT_DIR: re.compile(r"[\w-]+\.(png|jpg)"),
}
# Kept by a clear: the lock is held by the clearing process, the marker says what the folder is.
KEPT = (LOCK_FILE, MARKER_FILE)


def default_job_dir(output: Path) -> Path:
    """``renders/cat.png`` -> ``renders/cat.job``."""
    return output.with_name(output.stem + JOB_DIR_SUFFIX)


def level_image(number: int) -> str:
    """The name in levels/ of level ``number`` (from 1)."""
    return f"level-{number}.png"


def level_thumbnail(number: int) -> str:
    """The name in report/ of level ``number``'s thumbnail."""
    return f"level-{number}.jpg"


def input_thumbnail(role: str, sha256) -> str:
    """The name in report/ of an input's thumbnail: by its sha256, so a changed input gets a new one."""
    return f"{role}-{sha256[:12]}.jpg" if isinstance(sha256, str) and sha256 else f"{role}.jpg"


def _is_ours(name: str, pattern: re.Pattern | None = None, names: tuple[str, ...] = ()) -> bool:
    """A file name largestyle writes: one of ``names``, a match of ``pattern``, or a temporary of either."""
    if name in names or (pattern is not None and pattern.fullmatch(name)):
        return True
    match = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX), name)
    return match is not None and is_temporary_of(name, match[1]) and _is_ours(match[1], pattern, names)


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def is_job_directory(folder: Path) -> bool:
    marker = Path(folder) / MARKER_FILE
    try:
        return stat.S_ISREG(os.lstat(marker).st_mode)
    except OSError:
        return False


def _foreign(folder: Path) -> list[str]:
    """Names in ``folder`` that no job writes (symbolic links count as foreign)."""
    found = []
    for entry in _entries(folder):
        if entry.is_symlink():
            found.append(entry.name)
        elif entry.is_dir():
            pattern = FOLDER_FILES.get(entry.name)
            if pattern is None:
                found.append(entry.name)
            else:
                found += [f"{entry.name}/{inner.name}" for inner in _entries(Path(entry.path))
                          if inner.is_symlink() or not inner.is_file() or not _is_ours(inner.name, pattern)]
        elif not _is_ours(entry.name, names=TOP_FILES + KEPT):
            found.append(entry.name)
    return found


def prepare(folder: Path, shown: str | None = None) -> None:
    """Make ``folder`` a job directory, or refuse a folder that belongs to the user.

    New or empty folders get the marker; so does a folder made by an earlier version
    that holds a valid job.json and nothing but a job's own files. Anything else that
    exists is refused with one line. The marker is written first, so an unwritable or
    read-only location fails here, before any work.
    """
    folder = Path(folder)
    shown = shown or str(folder)
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise LargestyleError(f"cannot use job directory {shown}: {exc.strerror or exc}") from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise LargestyleError(f"cannot use job directory {shown}: it exists and is not a folder; "
                              "give --job-dir a new or empty folder")
    if info is not None and not is_job_directory(folder):
        foreign = _foreign(folder)
        legacy = read_json(folder / JOB_FILE) is not None
        bare = all(entry.name in KEPT for entry in _entries(folder))
        if foreign or not (legacy or bare):
            example = f" such as {foreign[0]!r}" if foreign else ""
            raise LargestyleError(
                f"job directory {shown} already exists and is not a largestyle job directory (it holds files of "
                f"its own{example}); give --job-dir a new or empty folder, so nothing of yours is overwritten")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not is_job_directory(folder):
            (folder / MARKER_FILE).write_text(MARKER_TEXT)
    except OSError as exc:
        raise LargestyleError(f"cannot use job directory {shown}: {storage_problem(exc)}; "
                              "give --job-dir a writable folder") from None


def clear(folder: Path) -> None:
    """Remove every file a job writes (``--restart``), keeping the lock and the marker.

    Only largestyle's own names are removed; a symbolic link is removed as a link,
    never followed; anything else in the folder stays.
    """
    folder = Path(folder)
    if not is_job_directory(folder):
        raise LargestyleError(f"{folder} is not a largestyle job directory; nothing was deleted")
    for entry in _entries(folder):
        if entry.name in KEPT:
            continue
        if entry.is_symlink():
            if _is_ours(entry.name, names=TOP_FILES) or entry.name in FOLDER_FILES:
                os.unlink(entry.path)
        elif entry.is_dir() and entry.name in FOLDER_FILES:
            pattern = FOLDER_FILES[entry.name]
            for inner in _entries(Path(entry.path)):
                if _is_ours(inner.name, pattern) and (inner.is_symlink() or inner.is_file()):
                    os.unlink(inner.path)
            try:
                os.rmdir(entry.path)
            except OSError:
                pass  # something of the user's is in it: it stays
        elif entry.is_file() and _is_ours(entry.name, names=TOP_FILES):
            os.unlink(entry.path)


def remove_leftovers(folder: Path) -> None:
    """Temporary files of a killed run in the job directory and its folders (not those still being written)."""
    folder = Path(folder)
    for name in TOP_FILES:
        remove_stale_temporaries(folder / name)
    for sub, pattern in FOLDER_FILES.items():
        path = folder / sub
        if path.is_symlink() or not path.is_dir():
            continue
        for entry in _entries(path):
            match = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX), entry.name)
            if match and pattern.fullmatch(match[1]):
                remove_stale_temporaries(path / match[1])
