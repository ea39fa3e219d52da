"""Batch files: many renders described in one TOML file.

A ``[defaults]`` table holds render options shared by every job; each ``[[job]]``
names its content and style images (a list of either expands), an output path or
template, and its own options. ``vary`` expands a job over values of any render
option. Everything is checked before anything renders, so a typo in the last job
fails in seconds rather than after hours; every error names the file and line.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import make_config, option_fields
from .errors import LargestyleError

# Job keys that describe the job itself rather than the render; they never reach make_config.
JOB_KEYS = ("content", "style", "output", "output_dir", "job_dir", "vary")
OPTION_NAMES = tuple(f.name for f in option_fields())

_JOB_HEADER = re.compile(r"^\s*\[\[\s*job\s*\]\]")
_DEFAULTS_HEADER = re.compile(r"^\s*\[\s*defaults\s*\]")
# A table header on its own line; stricter than "starts with [" so that a
# multi-line array's "[1, 2]," rows do not end a block.
_ANY_HEADER = re.compile(r"^\s*\[\[?\s*[\w.\"' -]+\s*\]\]?\s*(#.*)?$")
_JOB_SUBTABLE = re.compile(r"^\s*\[\s*job\s*\.")


@dataclass(frozen=True)
class JobSpec:
    """One render of a batch, fully resolved and validated."""

    name: str            # unique within the batch
    content: Path
    style: Path
    output: Path
    options: dict        # keyword arguments for make_config
    job_dir: Path | None
    line: int            # line of the job's [[job]] header


class _Source:
    """The batch file's text, for turning problems into ``file:line: problem``."""

    def __init__(self, shown: str, text: str):
        self.shown = shown
        self.lines = text.splitlines()
        self.job_headers = [n for n, line in enumerate(self.lines, 1) if _JOB_HEADER.match(line)]
        self.defaults_header = next(
            (n for n, line in enumerate(self.lines, 1) if _DEFAULTS_HEADER.match(line)), None)

    def error(self, line: int, problem: str) -> LargestyleError:
        return LargestyleError(f"{self.shown}:{line}: {problem}")

    def job_line(self, index: int) -> int:
        # Jobs written as an inline array have no headers; line 1 is the best we can say.
        return self.job_headers[index] if index < len(self.job_headers) else 1

    def find(self, header: int | None, *keys: str) -> int | None:
        """Line of the first of ``keys`` (dotted, e.g. 'vary.style_weight') set in the block under ``header``."""
        if header is None:
            return None
        in_job = bool(_JOB_HEADER.match(self.lines[header - 1]))
        block = []
        for number in range(header + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if _ANY_HEADER.match(line) and not (in_job and _JOB_SUBTABLE.match(line)):
                break  # [job.vary] and the like still belong to the job
            block.append((number, line))
        for key in keys:
            pattern = re.compile(r"^\s*" + r"\s*\.\s*".join(map(re.escape, key.split("."))) + r"\s*=")
            for number, line in block:
                if pattern.match(line):
                    return number
        return None


def load_batch(path) -> list[JobSpec]:
    """Read, expand and validate a batch file; raises LargestyleError naming file and line."""
    shown = str(path)
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LargestyleError(f"{shown}: batch file not found") from None
    except UnicodeDecodeError:
        raise LargestyleError(f"{shown}: cannot read batch file: not UTF-8 text") from None
    except OSError as error:
        raise LargestyleError(f"{shown}: cannot read batch file: {error.strerror or error}") from None
    src = _Source(shown, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        at = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(at.group(1)) if at else max(len(src.lines), 1)  # "(at end of document)"
        problem = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise src.error(line, f"invalid TOML: {problem}") from None

    base = file.absolute().parent
    defaults = _check_defaults(data, src)
    jobs = data.get("job")
    if not isinstance(jobs, list) or not jobs:
        line = _top_line(src, "job") if "job" in data else max(len(src.lines), 1)
        problem = "[job] must be written [[job]]" if isinstance(jobs, dict) else "no [[job]] in batch file"
        raise src.error(line, problem)

    specs: list[JobSpec] = []
    for index, job in enumerate(jobs):
        specs += _expand(job, index, src, defaults, base)

    seen: dict[Path, JobSpec] = {}
    names: set[str] = set()
    for spec_index, spec in enumerate(specs):
        if spec.output in seen:
            other = seen[spec.output].line
            if other == spec.line:
                raise src.error(spec.line, f"this job writes {spec.output} more than once; "
                                           "put {content}, {style} or varied options in output")
            raise src.error(spec.line, f"output {spec.output} is also written by the job at line {other}")
        seen[spec.output] = spec
        # The output stem is the natural name; another folder may hold the same stem.
        name, count = spec.name, 1
        while name in names:
            count += 1
            name = f"{spec.name}-{count}"
        names.add(name)
        if name != spec.name:
            specs[spec_index] = JobSpec(name, spec.content, spec.style, spec.output, spec.options,
                                        spec.job_dir, spec.line)
    return specs


def _top_line(src: _Source, key: str) -> int:
    pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*[\].]|{re.escape(key)}\s*[.=])")
    return next((n for n, line in enumerate(src.lines, 1) if pattern.match(line)), 1)


def _unknown(key: str, known) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown option {key!r}" + (f" (did you mean {close[0]}?)" if close else "")


def _check_defaults(data: dict, src: _Source) -> dict:
    for key in data:
        if key not in ("defaults", "job"):
            raise src.error(_top_line(src, key), f"unknown table or key {key!r}; expected [defaults] and [[job]]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise src.error(_top_line(src, "defaults"), "defaults must be a table: [defaults]")
    for key, value in defaults.items():
        line = src.find(src.defaults_header, key) or src.defaults_header or _top_line(src, "defaults")
        if key in JOB_KEYS and key != "output_dir":
            raise src.error(line, f"{key} belongs in a [[job]], not in [defaults]")
        if key not in OPTION_NAMES and key != "output_dir":
            raise src.error(line, _unknown(key, OPTION_NAMES + ("output_dir",)))
        if key == "output_dir" and not isinstance(value, str):
            raise src.error(line, "output_dir must be a string")
    return defaults


def _name_value(value) -> str:
    """An option value as it appears in file names: 10.0 -> '10', lists joined by commas."""
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, (list, tuple)):
        text = ",".join(_name_value(v) for v in value)
    else:
        text = str(value)
    return _safe(text)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]", "-", text)


def _expand(job, index: int, src: _Source, defaults: dict, base: Path) -> list[JobSpec]:
    header = src.job_line(index)
    in_job = header if index < len(src.job_headers) else None

    def fail(problem: str, *keys: str) -> LargestyleError:
        return src.error(src.find(in_job, *keys) or header, problem)

    if not isinstance(job, dict):
        raise fail("a job must be a table: [[job]]")
    for key in job:
        if key not in JOB_KEYS and key not in OPTION_NAMES:
            raise fail(_unknown(key, JOB_KEYS + OPTION_NAMES), key)

    def resolve(text: str) -> Path:
        return (base / Path(text).expanduser()).resolve()

    def paths(key: str) -> list[Path]:
        if key not in job:
            raise fail(f"job has no {key}")
        value = job[key]
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise fail(f"{key} must be a path or a non-empty list of paths", key)
        return [resolve(v) for v in value]

    contents, styles = paths("content"), paths("style")
    for key in ("output", "output_dir", "job_dir"):
        if key in job and not isinstance(job[key], str):
            raise fail(f"{key} must be a string", key)

    vary = job.get("vary", {})
    if not isinstance(vary, dict):
        raise fail("vary must be a table of option = [values], e.g. vary = { style_weight = [1.0, 10.0] }", "vary")
    for key, values in vary.items():
        where = (f"vary.{key}", key, "vary")
        if key not in OPTION_NAMES:
            raise fail(_unknown(key, OPTION_NAMES), *where)
        if key in job:
            raise fail(f"{key} is both set and varied in this job", key)
        if not isinstance(values, list) or not values:
            raise fail(f"vary.{key} must be a non-empty list of values", *where)

    def option_line(key: str) -> int:
        # The value may come from the job, its vary table or [defaults].
        line = src.find(in_job, key, f"vary.{key}")
        if line is None and key in vary:
            line = src.find(in_job, "vary")
        if line is None and key in defaults:
            line = src.find(src.defaults_header, key)
        return line or header

    options = {k: v for k, v in defaults.items() if k != "output_dir"}
    options.update({k: v for k, v in job.items() if k not in JOB_KEYS})
    output_dir = job.get("output_dir", defaults.get("output_dir"))
    if "output" not in job and output_dir is None:
        raise fail("job needs output or output_dir (here or in [defaults])")
    job_dir = resolve(job["job_dir"]) if "job_dir" in job else None

    specs = []
    for content, style, *values in itertools.product(contents, styles, *vary.values()):
        varied = dict(zip(vary, values))
        render_options = {**options, **varied}
        problem, key = _validate(render_options)
        if problem:
            raise src.error(option_line(key) if key else header, problem)
        stems = {"content": _safe(content.stem), "style": _safe(style.stem)}
        if "output" in job:
            fields = {k: _name_value(v) for k, v in render_options.items()} | stems
            try:
                name = job["output"].format(**fields)
            except KeyError as error:
                raise fail(f"output uses unknown placeholder {{{error.args[0]}}}; "
                           "use {content}, {style} or a render option", "output") from None
            except (IndexError, ValueError, AttributeError) as error:
                raise fail(f"bad output template: {error}", "output") from None
            output = resolve(name)
        else:
            name = "_".join([stems["content"], stems["style"]]
                            + [f"{k}-{_name_value(v)}" for k, v in varied.items()]) + ".png"
            output = resolve(output_dir) / name
        specs.append(JobSpec(output.stem, content, style, output, render_options, job_dir, header))
    return specs


def _validate(options: dict) -> tuple[str | None, str | None]:
    """(problem, offending key) from make_config, or (None, None) if the options are fine."""
    try:
        make_config(**options)
        return None, None
    except LargestyleError as error:
        problem = str(error)
    except (TypeError, ValueError):  # e.g. a string where a number belongs
        problem = None
    # Messages name options as --target-size (or --tiling); find which key that is.
    key = next((k for k in options
                if re.search(rf"--({re.escape(k)}|{re.escape(k.replace('_', '-'))})(?![\w-])", problem or "")),
               None)
    if key is None:  # the message names no option: the culprit is the key whose removal fixes it...
        key = next((k for k in options if not _rejects({n: v for n, v in options.items() if n != k})), None)
    if key is None:  # ...or, with several bad keys, the first that fails on its own
        key = next((k for k in options if _rejects({k: options[k]})), None)
    if problem is None:
        problem = f"bad value for {key}: {options[key]!r}" if key else "bad option values"
    return problem, key


def _rejects(options: dict) -> bool:
    try:
        make_config(**options)
        return False
    except (LargestyleError, TypeError, ValueError):
        return True
