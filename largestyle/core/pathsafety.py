"""Which paths a render may write: never an input, never a folder that holds one.

Paths are compared as the file system sees them: ``..`` and symbolic links are
resolved, and an existing file is also compared by identity (device and inode), so
a hard link to an input counts as the input.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LargestyleError


def resolved(path) -> Path:
    """``path`` made absolute with ``..`` and symbolic links resolved (it need not exist)."""
    try:
        return Path(os.path.realpath(Path(path).expanduser()))
    except (OSError, RuntimeError, ValueError):  # a symlink loop on an old Python, a NUL byte
        return Path(os.path.abspath(Path(path).expanduser()))


def same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` name one file: the same resolved path, or the same inode."""
    if resolved(a) == resolved(b):
        return True
    try:
        first, second = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def is_within(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or somewhere below it, after resolving both."""
    path, folder = resolved(path), resolved(folder)
    return path == folder or folder in path.parents


def check_render_paths(inputs: dict[str, Path], output: Path, job_dir: Path) -> None:
    """Refuse, before anything is written, an output or job directory that would touch an input.

    ``inputs`` maps a role ("content image", "weights file", ...) to its path. The
    output may not be an input; the job directory may not be, hold or lie inside the
    output or an input (``--restart`` empties it).
    """
    for role, path in inputs.items():
        if same_file(output, path):
            raise LargestyleError(
                f"output {output} is the {role} {path}: the render would overwrite it; choose another -o")
    for role, path in {**inputs, "output": output}.items():
        shown = f"the {role} {path}" if role != "output" else f"the output {path}"
        if resolved(path) == resolved(job_dir):
            raise LargestyleError(f"job directory {job_dir} is {shown}; give --job-dir a folder of its own")
        if is_within(path, job_dir):
            raise LargestyleError(
                f"job directory {job_dir} holds {shown}; a job directory must be a folder of its own "
                "(leave out --job-dir to use OUTPUT.job beside the output)")
        if is_within(job_dir, path):
            raise LargestyleError(
                f"job directory {job_dir} is, or lies inside, {shown}; give --job-dir a folder of its own")
