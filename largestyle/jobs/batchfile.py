"""Batch files: many renders described in one TOML file.

A ``[defaults]`` table holds render options shared by every job; each ``[[job]]``
names its content and style images (a list of either expands), an output path or
template, and its own options. ``vary`` expands a job over values of any render
option. Everything is checked before anything renders, so a typo in the last job
fails in seconds rather than after hours; every error names the file and line.

The file is read within limits (``batchread``, ``batchlimits``), its jobs expanded
(``expand``), and the paths of all jobs checked together (``batchcheck``).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from ..core.errors import LargestyleError
from ..core.pathsafety import same_file
from . import batchlimits
from .batchcheck import check_outputs_differ, check_paths
from .batchread import check_shape, read_text
from .batchsource import Source, bounded
from .spelling import respelled
from .expand import check_defaults, expand_job
from .jobspec import JobSpec

INDEX_SUFFIX = ".html"


def index_path(path) -> Path:
    """Where ``largestyle batch`` writes a batch file's index page: the file with suffix .html."""
    return Path(path).expanduser().with_suffix(INDEX_SUFFIX)


def load_batch(path) -> list[JobSpec]:
    """Read, expand and validate a batch file; raises LargestyleError naming file and line."""
    shown = bounded(str(path))
    file = Path(path).expanduser()
    text = read_text(file, shown)
    index = _index_of(file, shown)
    src = Source(shown, text)
    check_shape(text, src)
    data = respelled(_parse(text, src), src)
    base = file.absolute().parent
    defaults = check_defaults(data, src)
    specs = _expand(data, src, defaults, base)
    check_outputs_differ(specs, src)
    specs = _unique_names(specs)
    check_paths(specs, src, file, index)
    return specs


def _index_of(file: Path, shown: str) -> Path | None:
    """Where the batch's index goes, refused where it would be the batch file or a directory."""
    try:
        index = index_path(file)
    except ValueError:  # a name with no stem, such as "/"; read_text has refused those already
        return None
    if same_file(index, file):
        raise LargestyleError(bounded(f"{shown}: the batch's index is written to {index}, which is this file; "
                                      "give the job file another name, e.g. jobs.toml"))
    if index.is_dir():
        raise LargestyleError(bounded(f"{shown}: the batch's index is written to {index}, which is a directory; "
                                      "give the job file another name"))
    return index


def _parse(text: str, src: Source) -> dict:
    """The TOML of a batch file whose shape was checked; its errors name the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        at = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(at.group(1)) if at else max(len(src.lines), 1)  # "(at end of document)"
        problem = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise src.error(line, f"invalid TOML: {problem}") from None
    except RecursionError:  # check_shape keeps nesting far below this; a last resort
        raise src.error(1, f"brackets nested too deep; at most {batchlimits.MAX_NESTING} levels") from None


def _expand(data: dict, src: Source, defaults: dict, base: Path) -> list[JobSpec]:
    """The renders of every [[job]], in order, at most MAX_JOBS of them."""
    jobs = data.get("job")
    if not isinstance(jobs, list) or not jobs:
        line = src.top_line("job") if "job" in data else max(len(src.lines), 1)
        problem = "[job] must be written [[job]]" if isinstance(jobs, dict) else "no [[job]] in batch file"
        raise src.error(line, problem)
    specs: list[JobSpec] = []
    for index, job in enumerate(jobs):
        specs += expand_job(job, index, src, defaults, base, batchlimits.MAX_JOBS - len(specs))
    return specs


def _unique_names(specs: list[JobSpec]) -> list[JobSpec]:
    """The specs, each named by its output's stem, with -2, -3... where another folder holds the same stem."""
    names: set[str] = set()
    named = []
    for spec in specs:
        name, count = spec.name, 1
        while name in names:
            count += 1
            name = f"{spec.name}-{count}"
        names.add(name)
        named.append(spec if name == spec.name else dataclasses.replace(spec, name=name))
    return named
