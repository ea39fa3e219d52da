"""Batch files: many renders described in one TOML file.

A ``[defaults]`` table holds render options shared by every job; each ``[[job]]``
names its content and style images (a list of either expands), an output path or
template, and its own options. ``vary`` expands a job over values of any render
option. Everything is checked before anything renders, so a typo in the last job
fails in seconds rather than after hours; every error names the file and line.

The paths of all jobs are checked together as well: no output may land on an input
(of any job), the batch file or its index, no two jobs may share an output or a job
directory, and no job directory may hold or lie inside any of those files.

A batch file is read with limits, so that a damaged or hostile one is refused in
one line rather than exhausting memory or time: at most ``MAX_FILE_BYTES``, brackets
nested at most ``MAX_NESTING`` deep, keys of at most ``MAX_KEY_PARTS`` dotted parts,
and at most ``MAX_JOBS`` renders once lists and ``vary`` are expanded.
"""

from __future__ import annotations

import difflib
import errno
import itertools
import math
import os
import re
import reprlib
import stat
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config.settings import OUTPUT_SUFFIXES, make_config, option_fields
from ..core.errors import LargestyleError, one_line
from ..io.write import JPEG_SUFFIXES

# Job keys that describe the job itself rather than the render; they never reach make_config.
JOB_KEYS = ("content", "style", "output", "output_dir", "job_dir", "vary")
OPTION_NAMES = tuple(f.name for f in option_fields())

_JOB_HEADER = re.compile(r"^\s*\[\[\s*job\s*\]\]")
_DEFAULTS_HEADER = re.compile(r"^\s*\[\s*defaults\s*\]")
# A table header on its own line; stricter than "starts with [" so that a
# multi-line array's "[1, 2]," rows do not end a block.
_ANY_HEADER = re.compile(r"^\s*\[\[?\s*[\w.\"' -]+\s*\]\]?\s*(#.*)?$")
_JOB_SUBTABLE = re.compile(r"^\s*\[\s*job\s*\.")

# Limits on what a batch file may ask for (see the module's docstring).
MAX_FILE_BYTES = 16 * 2**20
MAX_JOBS = 10_000
MAX_NESTING = 32
MAX_KEY_PARTS = 32
MAX_LIST_VALUES = 64      # items of one list-valued option (there are 16 layers)
MAX_PROBLEM_CHARS = 2000  # an error message is one line of reasonable length
INDEX_SUFFIX = ".html"

# What the nesting scan stops at: string and comment openers, brackets, and key punctuation.
_SCAN_TOKEN = re.compile(r'"""|\'\'\'|["\'#\[\]{}.=,\n]')
_BASIC_STRING_REST = re.compile(r'(?:[^"\\\n]|\\.)*"')
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 8
_SHORT.maxlevel = 3


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
        # Lines as TOML counts them (split at newlines only), so that its line numbers match ours.
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.job_headers = [n for n, line in enumerate(self.lines, 1) if _JOB_HEADER.match(line)]
        self.header_set = set(self.job_headers)
        self.defaults_header = next(
            (n for n, line in enumerate(self.lines, 1) if _DEFAULTS_HEADER.match(line)), None)

    def error(self, line: int, problem: str) -> LargestyleError:
        return LargestyleError(_one_line(f"{self.shown}:{line}: {problem}"))

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


def index_path(path) -> Path:
    """Where ``largestyle batch`` writes a batch file's index page: the file with suffix .html."""
    return Path(path).expanduser().with_suffix(INDEX_SUFFIX)


def load_batch(path) -> list[JobSpec]:
    """Read, expand and validate a batch file; raises LargestyleError naming file and line."""
    shown = _one_line(str(path))
    file = Path(path).expanduser()
    text = _read(file, shown)
    try:
        index = index_path(file)
    except ValueError:  # a name with no stem, such as "/"; _read has refused those already
        index = None
    if index is not None and _same_file(index, file):
        raise LargestyleError(_one_line(f"{shown}: the batch's index is written to {index}, which is this file; "
                                        "give the job file another name, e.g. jobs.toml"))
    if index is not None and index.is_dir():
        raise LargestyleError(_one_line(f"{shown}: the batch's index is written to {index}, which is a directory; "
                                        "give the job file another name"))
    src = _Source(shown, text)
    _check_shape(text, src)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        at = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(at.group(1)) if at else max(len(src.lines), 1)  # "(at end of document)"
        problem = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise src.error(line, f"invalid TOML: {problem}") from None
    except RecursionError:  # _check_shape keeps nesting far below this; a last resort
        raise src.error(1, f"brackets nested too deep; at most {MAX_NESTING} levels") from None

    base = file.absolute().parent
    defaults = _check_defaults(data, src)
    jobs = data.get("job")
    if not isinstance(jobs, list) or not jobs:
        line = _top_line(src, "job") if "job" in data else max(len(src.lines), 1)
        problem = "[job] must be written [[job]]" if isinstance(jobs, dict) else "no [[job]] in batch file"
        raise src.error(line, problem)

    specs: list[JobSpec] = []
    for index_, job in enumerate(jobs):
        specs += _expand(job, index_, src, defaults, base, MAX_JOBS - len(specs))

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
    _check_paths(specs, src, file, index)
    return specs


def _one_line(text: str) -> str:
    """``text`` with control characters escaped (a path may hold a newline) and cut to a sane length."""
    text = one_line(text)
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS] + "..."


def _short(value) -> str:
    """A value as it may appear in an error: bounded in length and depth."""
    return _SHORT.repr(value)


def _read(file: Path, shown: str) -> str:
    """The batch file's text: a regular file of at most MAX_FILE_BYTES of UTF-8 without NUL bytes.

    The file is examined before it is opened, and opened without blocking, so that a FIFO
    or device named by mistake is refused rather than waited on.
    """
    def refuse(problem: str) -> LargestyleError:
        return LargestyleError(f"{shown}: {problem}")

    def cannot(error: OSError) -> LargestyleError:
        if isinstance(error, FileNotFoundError):
            return refuse("batch file not found")
        if error.errno == errno.ELOOP:
            return refuse("cannot read batch file: a loop of symbolic links")
        return refuse(f"cannot read batch file: {error.strerror or error}")

    def check(info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode):
            raise refuse("cannot read batch file: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("cannot read batch file: not a regular file (a pipe, socket or device)")
        if info.st_size > MAX_FILE_BYTES:
            raise refuse(f"batch file is {info.st_size:,} bytes; at most {MAX_FILE_BYTES:,} "
                         f"({MAX_FILE_BYTES // 2**20} MiB) are read: split it into several files")

    try:
        check(os.stat(file))
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise cannot(error) from None
    except ValueError:  # a NUL character in the name
        raise refuse("cannot read batch file: the name holds a NUL character") from None
    with os.fdopen(descriptor, "rb") as stream:
        try:
            check(os.fstat(descriptor))  # the same file as examined: it may have been swapped since
            data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise cannot(error) from None
    if len(data) > MAX_FILE_BYTES:  # it grew while being read
        raise refuse(f"batch file is over {MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES // 2**20} MiB), the most "
                     "that is read: split it into several files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LargestyleError(f"{shown}:{line}: cannot read batch file: not UTF-8 text "
                              f"(byte 0x{data[error.start]:02x}); save it as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte order mark some editors write
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise LargestyleError(f"{shown}:{line}: holds a NUL byte; a batch file is TOML text")
    return text


def _same_file(a: Path, b: Path) -> bool:
    from ..core.pathsafety import same_file

    return same_file(a, b)


def _check_shape(text: str, src: _Source) -> None:
    """Refuse, before parsing, what would make the TOML parser recurse or grow without bound.

    Brackets ([ ] and { }) outside strings and comments may nest MAX_NESTING deep, a key
    may have MAX_KEY_PARTS dotted parts (the parser's cost grows with their square), and
    there may be MAX_JOBS [[job]] tables.
    """
    if len(src.job_headers) > MAX_JOBS:
        raise src.error(src.job_headers[MAX_JOBS],
                        f"more than {MAX_JOBS:,} [[job]] tables; a batch file makes at most {MAX_JOBS:,} renders")
    if text.count("[") + text.count("{") <= MAX_NESTING and text.count(".") < MAX_KEY_PARTS:
        return  # too few brackets or dots to exceed either limit
    depth = dots = 0
    position, end = 0, len(text)

    def line_at(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    while position < end:
        token = _SCAN_TOKEN.search(text, position)
        if token is None:
            return
        kind, position = token.group(), token.end()
        if kind in ('"""', "'''"):
            close = position
            while True:  # the first unescaped closing triple; up to two more quotes belong to the string
                close = text.find(kind, close)
                if close < 0:
                    return  # unterminated: the parser reports it
                escapes = 0
                while close - escapes > position and text[close - escapes - 1] == "\\":
                    escapes += 1
                if kind == "'''" or escapes % 2 == 0:
                    break
                close += 1
            position = close + 3
            while position < end and position < close + 5 and text[position] == kind[0]:
                position += 1
        elif kind == '"':
            rest = _BASIC_STRING_REST.match(text, position)
            newline = text.find("\n", position)
            # Unterminated: skip to the line's end (the parser reports it).
            position = rest.end() if rest else newline if newline >= 0 else end
        elif kind == "'":
            close, newline = text.find("'", position), text.find("\n", position)
            position = close + 1 if close >= 0 and (newline < 0 or close < newline) else (
                newline if newline >= 0 else end)
        elif kind == "#":
            newline = text.find("\n", position)
            position = newline if newline >= 0 else end
        elif kind in "[{":
            depth, dots = depth + 1, 0
            if depth > MAX_NESTING:
                raise src.error(line_at(token.start()),
                                f"brackets nested more than {MAX_NESTING} deep; a batch file needs only a few levels")
        elif kind in "]}":
            depth, dots = max(depth - 1, 0), 0
        elif kind == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                raise src.error(line_at(token.start()),
                                f"a key of more than {MAX_KEY_PARTS} dotted parts; a batch file needs only one or two")
        else:  # = , or a newline: a key's dots end here
            dots = 0


def _top_line(src: _Source, key: str) -> int:
    pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*[\].]|{re.escape(key)}\s*[.=])")
    return next((n for n, line in enumerate(src.lines, 1) if pattern.match(line)), 1)


def _unknown(key: str, known) -> str:
    close = difflib.get_close_matches(key, known, n=1) if len(key) <= 100 else []
    return f"unknown option {_short(key)}" + (f" (did you mean {close[0]}?)" if close else "")


def _too_long(value) -> int | None:
    """The length of a list-valued option beyond MAX_LIST_VALUES, else None."""
    return len(value) if isinstance(value, list) and len(value) > MAX_LIST_VALUES else None


def _check_defaults(data: dict, src: _Source) -> dict:
    for key in data:
        if key not in ("defaults", "job"):
            raise src.error(_top_line(src, key),
                            f"unknown table or key {_short(key)}; expected [defaults] and [[job]]")
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
        if _too_long(value):
            raise src.error(line, f"{key} has {len(value):,} values; at most {MAX_LIST_VALUES}")
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


def _template_problem(template: str) -> str | None:
    """Why ``template`` is not a plain output template of {name} fields, or None.

    Fields may have a short format such as {content:.20}, but no conversion, attribute,
    index or nested field, and no width beyond a file name's 255 characters.
    """
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as error:
        return f"bad output template: {error}"
    for name, spec, conversion in fields:
        if not name.isidentifier() or conversion is not None or "{" in spec or any(
                len(number) > 3 or int(number) > 255 for number in re.findall(r"\d+", spec)):
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return (f"bad output template field {{{field}}}; use {{content}}, {{style}} or a render option "
                    "such as {style_weight}")
    return None


def _expand(job, index: int, src: _Source, defaults: dict, base: Path, room: int) -> list[JobSpec]:
    """The renders of one [[job]]; ``room`` is how many more the batch file may make."""
    header = src.job_line(index)
    in_job = header if index < len(src.job_headers) else None

    def fail(problem: str, *keys: str) -> LargestyleError:
        return src.error(src.find(in_job, *keys) or header, problem)

    if not isinstance(job, dict):
        raise fail("a job must be a table: [[job]]")
    for key in job:
        if key not in JOB_KEYS and key not in OPTION_NAMES:
            raise fail(_unknown(key, JOB_KEYS + OPTION_NAMES), key)

    def resolve(text: str, key: str) -> Path:
        try:
            return (base / Path(text).expanduser()).resolve()
        except ValueError:
            raise fail(f"{key} {_short(text)} holds a NUL character", key) from None
        except (OSError, RuntimeError) as error:  # a name too long, a loop of symbolic links
            raise fail(f"{key} {_short(text)}: {getattr(error, 'strerror', None) or error}", key) from None

    def paths(key: str) -> list[str]:
        if key not in job:
            raise fail(f"job has no {key}")
        value = job[key]
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise fail(f"{key} must be a path or a non-empty list of paths", key)
        return value

    contents, styles = paths("content"), paths("style")
    for key in ("output", "output_dir", "job_dir"):
        if key in job and not isinstance(job[key], str):
            raise fail(f"{key} must be a string", key)
    if "output" in job:
        problem = _template_problem(job["output"])
        if problem:
            raise fail(problem, "output")

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
        if any(_too_long(value) for value in values):
            raise fail(f"a value of vary.{key} has more than {MAX_LIST_VALUES} items", *where)
    for key, value in job.items():
        if key not in JOB_KEYS and _too_long(value):
            raise fail(f"{key} has {len(value):,} values; at most {MAX_LIST_VALUES}", key)

    # Count before expanding: a list of a million values must cost nothing.
    factors = {"content": len(contents), "style": len(styles), **{f"vary.{k}": len(v) for k, v in vary.items()}}
    count = math.prod(factors.values())
    if count > room:
        made = MAX_JOBS - room
        largest = max(factors, key=factors.get)
        keys = (largest, largest.split(".")[0]) if factors[largest] > 1 else ()  # else the [[job]] line
        shown = " x ".join(f"{n:,} {k}" for k, n in factors.items())
        raise fail(f"this job would make {count:,} render{'s' if count != 1 else ''} ({shown}); a batch file makes "
                   f"at most {MAX_JOBS:,}" + (f", and the jobs above make {made:,}" if made else ""), *keys)

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
    job_dir = resolve(job["job_dir"], "job_dir") if "job_dir" in job else None
    content_paths = [resolve(text, "content") for text in contents]
    style_paths = [resolve(text, "style") for text in styles]
    output_folder = None if "output" in job else resolve(output_dir, "output_dir")

    specs = []
    for content, style, *values in itertools.product(content_paths, style_paths, *vary.values()):
        varied = dict(zip(vary, values))
        render_options = {**options, **varied}
        weights = render_options.get("weights")
        if isinstance(weights, str) and weights != "random":  # relative to the job file, like every path
            render_options["weights"] = str(resolve(weights, "weights"))
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
            output = resolve(name, "output")
        else:
            name = "_".join([stems["content"], stems["style"]]
                            + [f"{k}-{_name_value(v)}" for k, v in varied.items()]) + ".png"
            output = output_folder / name
        suffix = output.suffix.lower()
        if suffix not in OUTPUT_SUFFIXES:
            raise fail(f"output {output}: unsupported type {output.suffix or '(none)'!r}; "
                       f"use {', '.join(OUTPUT_SUFFIXES)}", "output")
        if suffix in JPEG_SUFFIXES and render_options.get("bit_depth") == 16:
            raise fail(f"output {output}: JPEG holds 8 bits per channel; use .tif or .png for bit_depth = 16",
                       "output", "bit_depth", "vary.bit_depth")
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
        problem = f"bad value for {key}: {_short(options[key])}" if key else "bad option values"
    return problem, key


def _rejects(options: dict) -> bool:
    try:
        make_config(**options)
        return False
    except (LargestyleError, TypeError, ValueError):
        return True


# ------------------------------------------------------------------ paths of all jobs together

def _key_line(src: _Source, spec: JobSpec, *keys: str) -> int:
    """The line of the first of ``keys`` in ``spec``'s [[job]], else the [[job]] line."""
    return (src.find(spec.line, *keys) if spec.line in src.header_set else None) or spec.line


def _check_paths(specs: list[JobSpec], src: _Source, batch_file: Path, index: Path | None) -> None:
    """Refuse paths that would make one job destroy another's input, output or job directory.

    Checked for all jobs before the first runs: an output may not be an input of any job,
    the batch file or its index; no two jobs share a job directory (x.png and x.jpg both
    default to x.job); and no job directory is, holds or lies inside an input, an output,
    another job's directory, the batch file or its index (--restart empties it).
    """
    from .job import default_job_dir
    from ..core.pathsafety import resolved

    identities: dict[Path, tuple] = {}

    def identity(path: Path) -> tuple:
        """The file a path names: its inode where it exists (so hard links match), else its path."""
        if path not in identities:
            try:
                info = os.stat(path)
                identities[path] = ("inode", info.st_dev, info.st_ino)
            except (OSError, ValueError):
                identities[path] = ("path", path)
        return identities[path]

    def where(spec: JobSpec | None, here: JobSpec) -> str:
        if spec is None:
            return ""
        return " of this job" if spec.line == here.line else f" of the job at line {spec.line}"

    inputs: dict[Path, tuple[str, JobSpec]] = {}  # path -> (role, first job using it)
    for spec in specs:
        weights = spec.options.get("weights")
        named = {"content image": spec.content, "style image": spec.style}
        if isinstance(weights, str) and weights != "random":
            named["weights file"] = Path(weights)
        for role, path in named.items():
            inputs.setdefault(path, (role, spec))
    if index is not None:  # the index is written over whatever is there
        found = {identity(path): (path, role, spec) for path, (role, spec) in inputs.items()}.get(
            identity(resolved(index)))
        if found:
            path, role, spec = found
            raise src.error(_key_line(src, spec, role.split()[0]),
                            f"the batch's index {index} would overwrite the {role} {path}; "
                            "rename the job file (the index is its name with .html)")
    # Files no job may write over, nor keep in (or put around) a job directory: path -> (role, job).
    protected: dict[Path, tuple[str, JobSpec | None]] = {resolved(batch_file): ("batch file", None)}
    if index is not None:
        protected.setdefault(resolved(index), ("batch's index", None))
    for path, owner in inputs.items():
        protected.setdefault(path, owner)
    by_identity = {identity(path): (path, role, spec) for path, (role, spec) in reversed(protected.items())}

    outputs: dict[tuple, JobSpec] = {}
    for spec in specs:
        line = _key_line(src, spec, "output")
        found = by_identity.get(identity(spec.output))
        if found:
            path, role, owner = found
            raise src.error(line, f"output {spec.output} is the {role} {path}{where(owner, spec)}: "
                                  "the render would overwrite it; choose another output")
        if identity(spec.output) in outputs:  # a hard link to another job's output
            raise src.error(line, f"output {spec.output} is the output of the job at line "
                                  f"{outputs[identity(spec.output)].line}")
        outputs[identity(spec.output)] = spec
        if spec.output.is_dir():
            raise src.error(line, f"output {spec.output} is a directory")
    for spec in specs:
        protected.setdefault(spec.output, ("output", spec))

    job_dirs: dict[Path, JobSpec] = {}
    for spec in specs:
        job_dir = resolved(spec.job_dir or default_job_dir(spec.output))
        line = _key_line(src, spec, "job_dir") if spec.job_dir else spec.line
        other = job_dirs.get(job_dir)
        if other is not None:
            if spec.job_dir is not None and other.line == spec.line:
                raise src.error(line, f"job_dir {job_dir} would hold several renders of this job; a job directory "
                                      "holds one render: leave out job_dir (each gets OUTPUT.job beside its output)")
            how = "job_dir" if spec.job_dir else f"the default for output {spec.output.name}"
            raise src.error(line, f"job directory {job_dir} ({how}) is also the job directory{where(other, spec)}; "
                                  "give one of them another output name or its own job_dir")
        job_dirs[job_dir] = spec
        for folder in (job_dir, *job_dir.parents):  # a job directory that is or lies inside a protected file
            if folder in protected:
                role, owner = protected[folder]
                what = "is" if folder == job_dir else "lies inside"
                raise src.error(line, f"job directory {job_dir} {what} the {role} {folder}{where(owner, spec)}; "
                                      "a job directory must be a folder of its own")
    holders = {**{path: (role, owner) for path, (role, owner) in protected.items()},
               **{folder: ("job directory", owner) for folder, owner in job_dirs.items()}}
    for path, (role, owner) in holders.items():
        for folder in path.parents:  # a job directory that holds a protected file or another job directory
            spec = job_dirs.get(folder)
            if spec is not None:
                line = _key_line(src, spec, "job_dir") if spec.job_dir else spec.line
                raise src.error(line, f"job directory {folder} holds the {role} {path}{where(owner, spec)}; "
                                      "--restart would delete it: a job directory must be a folder of its own")
