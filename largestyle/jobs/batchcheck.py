"""The paths of all a batch's jobs checked together, before the first one runs.

No two jobs share an output or a job directory (x.png and x.jpg both default to x.job);
no output lands on an input of any job, the batch file or its index; and no job
directory is, holds or lies inside any of those files or another job's directory
(--restart empties it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config.settings import make_config
from ..core.pathsafety import resolved
from ..io.inputs import style_roles
from . import layout
from .batchsource import Source
from .jobspec import JobSpec

# A file no job may touch: (what it is, e.g. "style image", the first job naming it or None).
Owner = tuple[str, "JobSpec | None"]


def check_outputs_differ(specs: list[JobSpec], src: Source) -> None:
    """Refuse two renders that write the same output path."""
    seen: dict[Path, JobSpec] = {}
    for spec in specs:
        if spec.output in seen:
            other = seen[spec.output].line
            if other == spec.line:
                raise src.error(spec.line, f"this job writes {spec.output} more than once; "
                                           "put {content}, {style} or varied options in output")
            raise src.error(spec.line, f"output {spec.output} is also written by the job at line {other}")
        seen[spec.output] = spec


def check_paths(specs: list[JobSpec], src: Source, batch_file: Path, index: Path | None) -> None:
    """Refuse paths that would make one job destroy another's input, output or job directory."""
    files = _Files()
    inputs = _inputs(specs)
    if index is not None:  # the index is written over whatever is there
        _check_index(src, files, index, inputs)
    # Files no job may write over, nor keep in (or put around) a job directory.
    protected: dict[Path, Owner] = {resolved(batch_file): ("batch file", None)}
    if index is not None:
        protected.setdefault(resolved(index), ("batch's index", None))
    for path, owner in inputs.items():
        protected.setdefault(path, owner)
    _check_outputs(src, files, specs, protected)
    for spec in specs:
        protected.setdefault(spec.output, ("output", spec))
    job_dirs = _check_job_dirs(src, specs, protected)
    _check_holders(src, protected, job_dirs)


class _Files:
    """The file a path names: its inode where it exists (so hard links match), else its path."""

    def __init__(self):
        self._identities: dict[Path, tuple] = {}

    def identity(self, path: Path) -> tuple:
        if path not in self._identities:
            try:
                info = os.stat(path)
                self._identities[path] = ("inode", info.st_dev, info.st_ino)
            except (OSError, ValueError):
                self._identities[path] = ("path", path)
        return self._identities[path]

    def by_identity(self, owners) -> dict[tuple, tuple[Path, str, JobSpec | None]]:
        """(path, role, job) by identity, of the (path, (role, job)) pairs ``owners``; the last of a file wins."""
        return {self.identity(path): (path, role, spec) for path, (role, spec) in owners}


def _inputs(specs: list[JobSpec]) -> dict[Path, Owner]:
    """Every job's inputs, each with its role and the first job using it."""
    inputs: dict[Path, Owner] = {}
    for spec in specs:
        files = make_config(**spec.options).input_files()  # options were checked with make_config
        named = {"content image": spec.content, **style_roles(spec.styles),
                 **{role: Path(path) for role, path in files.items()}}
        for role, path in named.items():
            inputs.setdefault(path, (role, spec))
    return inputs


def _check_index(src: Source, files: _Files, index: Path, inputs: dict[Path, Owner]) -> None:
    found = files.by_identity(inputs.items()).get(files.identity(resolved(index)))
    if found:
        path, role, spec = found
        raise src.error(_key_line(src, spec, role.split()[0]),
                        f"the batch's index {index} would overwrite the {role} {path}; "
                        "rename the job file (the index is its name with .html)")


def _check_outputs(src: Source, files: _Files, specs: list[JobSpec], protected: dict[Path, Owner]) -> None:
    """No output is a protected file or another job's output (a hard link to it), nor a directory."""
    by_identity = files.by_identity(reversed(protected.items()))  # the first of a file wins
    outputs: dict[tuple, JobSpec] = {}
    for spec in specs:
        line = _key_line(src, spec, "output")
        identity = files.identity(spec.output)
        found = by_identity.get(identity)
        if found:
            path, role, owner = found
            raise src.error(line, f"output {spec.output} is the {role} {path}{_where(owner, spec)}: "
                                  "the render would overwrite it; choose another output")
        if identity in outputs:  # a hard link to another job's output
            raise src.error(line, f"output {spec.output} is the output of the job at line {outputs[identity].line}")
        outputs[identity] = spec
        if spec.output.is_dir():
            raise src.error(line, f"output {spec.output} is a directory")


def _check_job_dirs(src: Source, specs: list[JobSpec], protected: dict[Path, Owner]) -> dict[Path, JobSpec]:
    """Each job's own job directory, by path; none is shared, or is or lies inside a protected file."""
    job_dirs: dict[Path, JobSpec] = {}
    for spec in specs:
        job_dir = resolved(spec.job_dir or layout.default_job_dir(spec.output))
        line = _job_dir_line(src, spec)
        other = job_dirs.get(job_dir)
        if other is not None:
            if spec.job_dir is not None and other.line == spec.line:
                raise src.error(line, f"job_dir {job_dir} would hold several renders of this job; a job directory "
                                      "holds one render: leave out job_dir (each gets "
                                      f"OUTPUT{layout.JOB_DIR_SUFFIX} beside its output)")
            how = "job_dir" if spec.job_dir else f"the default for output {spec.output.name}"
            raise src.error(line, f"job directory {job_dir} ({how}) is also the job directory{_where(other, spec)}; "
                                  "give one of them another output name or its own job_dir")
        job_dirs[job_dir] = spec
        for folder in (job_dir, *job_dir.parents):  # a job directory that is or lies inside a protected file
            if folder in protected:
                role, owner = protected[folder]
                what = "is" if folder == job_dir else "lies inside"
                raise src.error(line, f"job directory {job_dir} {what} the {role} {folder}{_where(owner, spec)}; "
                                      "a job directory must be a folder of its own")
    return job_dirs


def _check_holders(src: Source, protected: dict[Path, Owner], job_dirs: dict[Path, JobSpec]) -> None:
    """No job directory holds a protected file or another job directory."""
    holders = {**protected, **{folder: ("job directory", owner) for folder, owner in job_dirs.items()}}
    for path, (role, owner) in holders.items():
        for folder in path.parents:
            spec = job_dirs.get(folder)
            if spec is not None:
                raise src.error(_job_dir_line(src, spec),
                                f"job directory {folder} holds the {role} {path}{_where(owner, spec)}; "
                                "--restart would delete it: a job directory must be a folder of its own")


def _key_line(src: Source, spec: JobSpec, *keys: str) -> int:
    """The line of the first of ``keys`` in ``spec``'s [[job]], else the [[job]] line."""
    return (src.find(spec.line, *keys) if spec.line in src.header_set else None) or spec.line


def _job_dir_line(src: Source, spec: JobSpec) -> int:
    return _key_line(src, spec, "job_dir") if spec.job_dir else spec.line


def _where(spec: JobSpec | None, here: JobSpec) -> str:
    if spec is None:
        return ""
    return " of this job" if spec.line == here.line else f" of the job at line {spec.line}"
