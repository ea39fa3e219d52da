"""A batch file's tables turned into renders: [defaults] checked, each [[job]] expanded into JobSpecs.

A job's content and style may be lists, and ``vary`` lists values of any render option;
a job makes one render for each combination. A list inside the style list is one render
whose style blends those images (weighted by style_blend). Every option is checked with make_config
and every problem names the line of the key that causes it.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

from ..config.settings import OUTPUT_SUFFIXES, make_config, option_fields
from ..core.errors import LargestyleError
from ..io.write import JPEG_SUFFIXES
from . import batchlimits
from .batchsource import Source, short, unknown
from .jobspec import JobSpec
from .outputname import default_name, filled_template, template_problem

# Job keys that describe the job itself rather than the render; they never reach make_config.
JOB_KEYS = ("content", "style", "output", "output_dir", "job_dir", "vary")
OPTION_NAMES = tuple(f.name for f in option_fields())


def check_defaults(data: dict, src: Source) -> dict:
    """The [defaults] table, once the file's top level and every default are checked."""
    for key in data:
        if key not in ("defaults", "job"):
            raise src.error(src.top_line(key),
                            f"unknown table or key {short(key)}; expected [defaults] and [[job]]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise src.error(src.top_line("defaults"), "defaults must be a table: [defaults]")
    for key, value in defaults.items():
        line = src.find(src.defaults_header, key) or src.defaults_header or src.top_line("defaults")
        if key in JOB_KEYS and key != "output_dir":
            raise src.error(line, f"{key} belongs in a [[job]], not in [defaults]")
        if key not in OPTION_NAMES and key != "output_dir":
            raise src.error(line, unknown(key, OPTION_NAMES + ("output_dir",)))
        if key == "output_dir" and not isinstance(value, str):
            raise src.error(line, "output_dir must be a string")
        if _too_long(value):
            raise src.error(line, f"{key} has {len(value):,} values; at most {batchlimits.MAX_LIST_VALUES}")
    return defaults


class _Job:
    """One [[job]] table: where its problems are reported, and its paths resolved against."""

    def __init__(self, table, index: int, src: Source, defaults: dict, base: Path):
        self.table, self.src, self.defaults, self.base = table, src, defaults, base
        self.header = src.job_line(index)
        self.in_job = self.header if index < len(src.job_headers) else None

    def fail(self, problem: str, *keys: str) -> LargestyleError:
        """``problem`` at the line of the first of ``keys`` set in the job, else at its [[job]] line."""
        return self.src.error(self.src.find(self.in_job, *keys) or self.header, problem)

    def option_line(self, key: str, vary: dict) -> int:
        """The line an option's value comes from: the job, its vary table or [defaults]."""
        line = self.src.find(self.in_job, key, f"vary.{key}")
        if line is None and key in vary:
            line = self.src.find(self.in_job, "vary")
        if line is None and key in self.defaults:
            line = self.src.find(self.src.defaults_header, key)
        return line or self.header

    def resolve(self, text: str, key: str) -> Path:
        """A path of the job, relative to the batch file's folder."""
        try:
            return (self.base / Path(text).expanduser()).resolve()
        except ValueError:
            raise self.fail(f"{key} {short(text)} holds a NUL character", key) from None
        except (OSError, RuntimeError) as error:  # a name too long, a loop of symbolic links
            raise self.fail(f"{key} {short(text)}: {getattr(error, 'strerror', None) or error}", key) from None

    def paths(self, key: str) -> list[str]:
        """The content paths: one path or a non-empty list."""
        value = self._value(key)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key} must be a path or a non-empty list of paths", key)
        return value

    def style_sets(self) -> list[list[str]]:
        """The style of each render: one path, or a list of paths blended into one render."""
        value = self._value("style")
        sets = [[v] if isinstance(v, str) else v for v in value]
        if not all(isinstance(s, list) and 0 < len(s) <= batchlimits.MAX_LIST_VALUES
                   and all(isinstance(v, str) for v in s) for s in sets):
            raise self.fail("style must be a path or a list of paths (one render each); a list inside it is "
                            f"one render blending up to {batchlimits.MAX_LIST_VALUES} styles, e.g. "
                            'style = [["a.jpg", "b.jpg"]] with style_blend = [3, 1]', "style")
        return sets

    def _value(self, key: str) -> list:
        if key not in self.table:
            raise self.fail(f"job has no {key}")
        value = self.table[key]
        value = [value] if isinstance(value, str) else value
        if not (isinstance(value, list) and value):
            raise self.fail(f"{key} must be a path or a non-empty list of paths", key)
        return value


def expand_job(table, index: int, src: Source, defaults: dict, base: Path, room: int) -> list[JobSpec]:
    """The renders of the [[job]] ``table``; ``room`` is how many more the batch file may make."""
    job = _Job(table, index, src, defaults, base)
    _check_keys(job)
    contents, styles = job.paths("content"), job.style_sets()
    _check_output_keys(job)
    vary = _vary(job)
    # Count before expanding: a list of a million values must cost nothing.
    _check_count(job, {"content": len(contents), "style": len(styles),
                       **{f"vary.{k}": len(v) for k, v in vary.items()}}, room)
    options = {k: v for k, v in defaults.items() if k != "output_dir"}
    options.update({k: v for k, v in table.items() if k not in JOB_KEYS})
    output_dir = table.get("output_dir", defaults.get("output_dir"))
    if "output" not in table and output_dir is None:
        raise job.fail("job needs output or output_dir (here or in [defaults])")
    job_dir = job.resolve(table["job_dir"], "job_dir") if "job_dir" in table else None
    content_paths = [job.resolve(text, "content") for text in contents]
    style_paths = [tuple(job.resolve(text, "style") for text in paths) for paths in styles]
    output_folder = None if "output" in table else job.resolve(output_dir, "output_dir")
    specs = []
    for content, style, *values in itertools.product(content_paths, style_paths, *vary.values()):
        varied = dict(zip(vary, values))
        render_options = _render_options(job, {**options, **varied}, vary, len(style))
        output = _output(job, content, style, render_options, varied, output_folder)
        specs.append(JobSpec(output.stem, content, style, output, render_options, job_dir, job.header))
    return specs


def _check_keys(job: _Job) -> None:
    if not isinstance(job.table, dict):
        raise job.fail("a job must be a table: [[job]]")
    for key in job.table:
        if key not in JOB_KEYS and key not in OPTION_NAMES:
            raise job.fail(unknown(key, JOB_KEYS + OPTION_NAMES), key)


def _check_output_keys(job: _Job) -> None:
    """output, output_dir and job_dir are strings, and output a plain template."""
    for key in ("output", "output_dir", "job_dir"):
        if key in job.table and not isinstance(job.table[key], str):
            raise job.fail(f"{key} must be a string", key)
    if "output" in job.table:
        problem = template_problem(job.table["output"])
        if problem:
            raise job.fail(problem, "output")


def _vary(job: _Job) -> dict:
    """The job's vary table, checked, once no list-valued option is too long."""
    vary = job.table.get("vary", {})
    if not isinstance(vary, dict):
        raise job.fail("vary must be a table of option = [values], e.g. vary = { style_weight = [1.0, 10.0] }",
                       "vary")
    for key, values in vary.items():
        where = (f"vary.{key}", key, "vary")
        if key not in OPTION_NAMES:
            raise job.fail(unknown(key, OPTION_NAMES), *where)
        if key in job.table:
            raise job.fail(f"{key} is both set and varied in this job", key)
        if not isinstance(values, list) or not values:
            raise job.fail(f"vary.{key} must be a non-empty list of values", *where)
        if any(_too_long(value) for value in values):
            raise job.fail(f"a value of vary.{key} has more than {batchlimits.MAX_LIST_VALUES} items", *where)
    for key, value in job.table.items():
        if key not in JOB_KEYS and _too_long(value):
            raise job.fail(f"{key} has {len(value):,} values; at most {batchlimits.MAX_LIST_VALUES}", key)
    return vary


def _check_count(job: _Job, factors: dict[str, int], room: int) -> None:
    """Refuse a job whose lists make more renders than the batch file has ``room`` for."""
    count = math.prod(factors.values())
    if count > room:
        made = batchlimits.MAX_JOBS - room
        largest = max(factors, key=factors.get)
        keys = (largest, largest.split(".")[0]) if factors[largest] > 1 else ()  # else the [[job]] line
        shown = " x ".join(f"{n:,} {k}" for k, n in factors.items())
        above = f", and the jobs above make {made:,}" if made else ""
        raise job.fail(f"this job would make {count:,} render{'s' if count != 1 else ''} ({shown}); a batch file "
                       f"makes at most {batchlimits.MAX_JOBS:,}{above}", *keys)


def _render_options(job: _Job, options: dict, vary: dict, styles: int) -> dict:
    """One render's options for ``styles`` style images, checked with make_config; weights and --init paths
    are resolved like every path."""
    weights, init = options.get("weights"), options.get("init")
    if isinstance(weights, str) and weights != "random":  # relative to the job file, like every path
        options["weights"] = str(job.resolve(weights, "weights"))
    if isinstance(init, str) and init not in ("content", "noise"):
        options["init"] = str(job.resolve(init, "init"))
    problem, key = _validate(options, styles)
    if problem:
        raise job.src.error(job.option_line(key, vary) if key else job.header, problem)
    return options


def _output(job: _Job, content: Path, style: tuple[Path, ...], options: dict, varied: dict,
            folder: Path | None) -> Path:
    """One render's output: the job's template filled in, or a name made of its inputs and varied options."""
    if "output" in job.table:
        try:
            name = filled_template(job.table["output"], content, style, options)
        except KeyError as error:
            raise job.fail(f"output uses unknown placeholder {{{error.args[0]}}}; "
                           "use {content}, {style} or a render option", "output") from None
        except (IndexError, ValueError, AttributeError) as error:
            raise job.fail(f"bad output template: {error}", "output") from None
        output = job.resolve(name, "output")
    else:
        output = folder / default_name(content, style, varied)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise job.fail(f"output {output}: unsupported type {output.suffix or '(none)'!r}; "
                       f"use {', '.join(OUTPUT_SUFFIXES)}", "output")
    if suffix in JPEG_SUFFIXES and options.get("bit_depth") == 16:
        raise job.fail(f"output {output}: JPEG holds 8 bits per channel; use .tif or .png for bit_depth = 16",
                       "output", "bit_depth", "vary.bit_depth")
    return output


def _too_long(value) -> int | None:
    """The length of a list-valued option beyond MAX_LIST_VALUES, else None."""
    return len(value) if isinstance(value, list) and len(value) > batchlimits.MAX_LIST_VALUES else None


def _validate(options: dict, styles: int) -> tuple[str | None, str | None]:
    """(problem, offending key) from make_config and ``styles`` style images, or (None, None) if the options
    are fine."""
    try:
        make_config(**options).blend_weights(styles)
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
        problem = f"bad value for {key}: {short(options[key])}" if key else "bad option values"
    return problem, key


def _rejects(options: dict) -> bool:
    try:
        make_config(**options)
        return False
    except (LargestyleError, TypeError, ValueError):
        return True
