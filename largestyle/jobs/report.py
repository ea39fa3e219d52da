"""Static HTML reports: one page per render's job directory.

A report is read from files that a render writes as it goes (job.json, status.json,
events.jsonl, level images, output.*). Any of them may be missing or cut short by a
killed process, so every reader falls back to "unknown" instead of failing. Inputs and
images are copied into the report as small JPEGs and every link is relative, so the
report still works after the inputs move or the job directory is moved whole.
The batch index page is written by ``index`` (``write_index`` is importable from here).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import read_json, write_bytes
from ..core.units import format_bytes
from ..core.version import __version__
from . import layout
from .charts import plot_loss
from .history import LOSS_TERMS, History, as_float, as_int, read_events, summarise_events
from .index import write_index
from .pages import duration, esc, href, page, table, thumbnail
from .record import record_styles

__all__ = ["write_report", "write_index"]

THUMB = 512  # long side of the content, style and level thumbnails
OUTPUT_PREVIEW = 1600  # long side of the final image's preview; the full file is linked


def write_report(job_dir: str | Path) -> Path:
    """Write ``job_dir/report.html`` and its images in ``job_dir/report/``; return the html path."""
    job_dir = Path(job_dir)
    assets = job_dir / layout.REPORT_DIR
    assets.mkdir(exist_ok=True)
    job = read_json(job_dir / layout.JOB_FILE)
    status = read_json(job_dir / layout.STATUS_FILE) or {}
    history = summarise_events(read_events(job_dir / layout.EVENTS_FILE))
    state = str(status.get("state") or ("finished" if history.finished else "unknown"))
    name = Path(str(job and job.get("output") or status.get("output") or job_dir.name)).name
    body = "\n".join([
        f"<h1>{esc(name)}: {esc(state)}</h1>",
        _status_section(status, state),
        _infos_section(history),
        _warnings_section(history, job),
        _output_section(job_dir, assets, state),
        _inputs_section(job or {}, assets),
        _levels_section(job_dir, assets, history),
        _loss_section(assets, history),
        _timings_section(history),
        _settings_section(job or {}, history),
    ])
    path = job_dir / layout.REPORT_FILE
    write_bytes(path, page(f"{name}: {state}", body))
    return path


def _status_section(status: dict, state: str) -> str:
    parts = []
    if state != "finished" and as_float(status.get("percent")) is not None:
        parts.append(f"{as_float(status['percent']):.0f}% done")
    if status.get("level") is not None and state != "finished":
        parts.append(f"level {status['level']}/{status.get('levels', '?')}")
    if status.get("tile"):
        parts.append(str(status["tile"]))
    if state == "running" and as_float(status.get("eta_seconds")) is not None:
        parts.append(f"about {duration(as_float(status['eta_seconds']))} left")
    if status.get("updated"):
        parts.append(f"status updated {status['updated']}")
    loss = status.get("last_loss")
    if isinstance(loss, dict) and as_float(loss.get("total")) is not None:
        terms = ", ".join(f"{term} {as_float(loss.get(term)):.4g}" for term in LOSS_TERMS[1:]
                          if as_float(loss.get(term)) is not None)
        parts.append(f"last loss {as_float(loss['total']):.4g} ({terms})")
    lines = [f"<p>{esc(' · '.join(parts))}</p>"] if parts else []
    if status.get("message"):
        css = "bad" if state in ("failed", "interrupted") else "muted"
        lines.append(f'<p class="{css}">{esc(status["message"])}</p>')
    return "\n".join(lines)


def _infos_section(history: History) -> str:
    if not history.infos:
        return ""
    items = "".join(f"<li>{esc(info)}</li>" for info in history.infos)
    return f"<h2>Inputs and output</h2>\n<ul>{items}</ul>"


def _warnings_section(history: History, job: dict | None) -> str:
    notes = [f"<b>{esc(kind)}</b>: {esc(message)}" if kind else esc(message) for kind, message in history.notices]
    if job is None:
        notes.append(f"{layout.JOB_FILE} is missing or unreadable: inputs and settings are unknown.")
    if not notes:
        return ""
    items = "".join(f"<li>{note}</li>" for note in notes)
    return f'<h2>Warnings</h2>\n<div class="warn"><ul>{items}</ul></div>'


def _output_section(job_dir: Path, assets: Path, state: str) -> str:
    outputs = sorted(path for path in job_dir.glob(f"{layout.OUTPUT_STEM}.*") if path.is_file())
    if not outputs:
        return f'<h2>Final image</h2>\n<p class="muted">No final image ({esc(state)}).</p>'
    output = outputs[0]
    size = thumbnail(output, assets / layout.REPORT_OUTPUT, OUTPUT_PREVIEW)
    link = href(output.name)
    if size is None:
        return f'<h2>Final image</h2>\n<p><a href="{link}">{esc(output.name)}</a> (cannot be previewed)</p>'
    return (f'<h2>Final image</h2>\n<p><a href="{link}"><img src="{_asset(layout.REPORT_OUTPUT)}" '
            f'alt="final image"></a><br>{esc(output.name)}, {size[0]}x{size[1]} px</p>')


def _inputs_section(job: dict, assets: Path) -> str:
    figures = []
    for role, part in _input_parts(job):
        path, sha = part.get("path"), part.get("sha256")
        thumb = assets / layout.input_thumbnail(role.split()[0], sha)
        caption = f"<b>{esc(role)}</b><br><code>{esc(path or 'unknown path')}</code>"
        if path and Path(path).is_file():
            if thumbnail(Path(path), thumb, THUMB) is None:
                caption += '<br><span class="bad">cannot be read as an image</span>'
        elif thumb.is_file():  # moved since an earlier report kept its thumbnail
            caption += '<br><span class="bad">no longer at this path</span> (thumbnail kept from an earlier report)'
        else:
            caption += '<br><span class="bad">missing: the file no longer exists</span>'
        image = f'<img src="{_asset(thumb.name)}" alt="{esc(role)}">' if thumb.is_file() else ""
        figures.append(f"<figure>{image}<figcaption>{caption}</figcaption></figure>")
    return "<h2>Inputs</h2>\n" + "\n".join(figures)


def _levels_section(job_dir: Path, assets: Path, history: History) -> str:
    images = {}
    for path in (job_dir / layout.LEVELS_DIR).glob("*"):
        match = layout.LEVEL_IMAGE.fullmatch(path.name)
        if match and int(match.group(1)) >= 1:
            images[int(match.group(1)) - 1] = path
    finished = sorted(index for index in set(history.level_seconds) | set(images) if index >= 0)
    if not finished:
        return '<h2>Levels</h2>\n<p class="muted">No level finished.</p>'
    header = ["level", "image", "size", "mode", "memory", "evaluations", "time"]
    rows = []
    for index in finished:
        plan, number = history.plan.get(index, {}), index + 1
        image, size = "", None
        if index in images:
            thumb = layout.level_thumbnail(number)
            size = thumbnail(images[index], assets / thumb, THUMB)
            full = href(f"{layout.LEVELS_DIR}/{images[index].name}")
            image = (f'<a href="{full}"><img src="{_asset(thumb)}" alt="level {number}"></a>'
                     if size else f'<a href="{full}">{esc(images[index].name)}</a>')
        if plan.get("width") and plan.get("height"):
            size = (plan["width"], plan["height"])
        seconds = history.level_seconds.get(index)
        rows.append((f'id="level-{number}"', [
            esc(f"{number}/{len(history.plan)}" if history.plan else number), image,
            esc(f"{size[0]}x{size[1]}" if size else "?"), esc(_describe_mode(plan)), esc(_level_memory(plan)),
            esc(_evaluations(history, index)), esc(duration(seconds) if seconds is not None else "?"),
        ]))
    count = f" ({len(finished)} of {len(history.plan)} finished)" if history.plan else ""
    return f"<h2>Levels{esc(count)}</h2>\n" + table(header, rows)


def _describe_mode(level: dict) -> str:
    mode = level.get("mode")
    try:
        rows, cols = level.get("grid") or (1, 1)
        if mode == "exact":
            return f"exact: {level['tile_size']} px cores, {rows}x{cols} grid"
        if mode == "blend":
            passes = len(level.get("tiles_per_pass") or (1,))
            return f"blend: {level['tile_size']} px tiles, {rows}x{cols} grid, {passes} passes"
    except (KeyError, TypeError, ValueError):
        pass
    return str(mode or "?")


def _level_memory(level: dict) -> str:
    """The estimated peak of the way the level was run: whole, or tiled."""
    count = level.get("estimated_bytes") if level.get("mode") == "whole" else level.get("tiled_bytes")
    return f"~{format_bytes(count)}" if as_float(count) is not None else "?"


def _loss_section(assets: Path, history: History) -> str:
    png = plot_loss(history)
    if png is None:
        return '<h2>Loss</h2>\n<p class="muted">No evaluations recorded: no loss plot.</p>'
    write_bytes(assets / layout.REPORT_LOSS, png)
    note = ("<p class=\"muted\">Blend-tiled levels show each tile's final loss; other levels every evaluation. "
            "Dotted lines: level boundaries; dashed: resumes.</p>")
    return f'<h2>Loss</h2>\n<p><img src="{_asset(layout.REPORT_LOSS)}" alt="loss curves"></p>\n{note}'



def _timings_section(history: History) -> str:
    if not history.level_seconds and not history.finished:
        return ""
    rows = [("", [esc(f"level {index + 1}"), esc(duration(seconds)),
                  esc(history.level_evaluations.get(index, "?"))])
            for index, seconds in sorted(history.level_seconds.items()) if index >= 0]
    finished = history.finished or {}
    total = as_float(finished.get("seconds"))
    label = "total" if total is not None else "sum of levels"
    total = total if total is not None else sum(history.level_seconds.values())
    evaluations = as_int(finished.get("evaluations"), history.evaluations)
    rows.append(("", [f"<b>{esc(label)}</b>", f"<b>{esc(duration(total))}</b>", f"<b>{esc(evaluations)}</b>"]))
    return "<h2>Timings</h2>\n" + table(["", "time", "evaluations"], rows)


def _settings_section(job: dict, history: History) -> str:
    setting_rows = [("", [esc(key), esc(_value(value))]) for key, value in _part(job, "settings").items()]
    weights = _part(job, "weights")
    started = history.started or {}
    run = [
        ("largestyle version", job.get("version", "?")),
        ("report written by largestyle", __version__),
        ("created", job.get("created", "?")),
        ("device", started.get("device", "?")),
        ("memory budget", format_bytes(started["budget_bytes"]) if as_float(started.get("budget_bytes")) else "?"),
        ("weights", weights.get("flavour") or started.get("weights") or "?"),
        ("weights chosen by", started.get("weights_chosen_by") or "?"),
        ("weights file", weights.get("path") or started.get("weights_path")),
        ("weights sha256", _short(weights.get("sha256") or started.get("weights_sha256"))),
        ("loss weights (content, style, tv)", started.get("loss_weights", "?")),
    ] + [(f"{role} sha256", _short(part.get("sha256"))) for role, part in _input_parts(job)]
    run_rows = [("", [esc(key), esc(_value(value))]) for key, value in run]
    settings = (table(["setting", "value"], setting_rows) if setting_rows
                else '<p class="muted">No settings recorded.</p>')
    return f"<h2>Settings</h2>\n{settings}\n<h2>Run</h2>\n{table([], run_rows)}"


def _input_parts(job: dict) -> list[tuple[str, dict]]:
    """(role, {path, sha256}) of each input image the record names; several styles with their --style-blend share."""
    styles = [style if isinstance(style, dict) else {} for style in record_styles(job)] or [{}]
    blend = _part(job, "settings").get("style_blend") or [1] * len(styles)
    readable = len(blend) == len(styles) and all(isinstance(w, (int, float)) for w in blend) and sum(blend) > 0
    shares = [f" ({weight / sum(blend):.0%} of the style)" for weight in blend] if readable else [""] * len(styles)
    named = [("style", styles[0])] if len(styles) == 1 else [
        (f"style {number}{share}", style) for number, (style, share) in enumerate(zip(styles, shares), 1)]
    return [("content", _part(job, "content"))] + named + ([("init", _part(job, "init"))] if "init" in job else [])


def _part(job: dict, key: str) -> dict:
    """A sub-object of job.json, or {} when it is absent or malformed."""
    return job[key] if isinstance(job.get(key), dict) else {}


def _short(sha) -> str:
    return sha[:12] if isinstance(sha, str) and sha else "none"


def _value(value) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _asset(name: str) -> str:
    """The link from report.html to a file in report/."""
    return href(f"{layout.REPORT_DIR}/{name}")


def _evaluations(history: History, index: int) -> str:
    """A level's evaluations, and whether its optimisations converged (--tolerance) or ran to their cap."""
    used = history.level_evaluations.get(index)
    if used is None:
        return "?"
    runs, early = history.level_optimisations.get(index, 0), history.level_converged.get(index, 0)
    if runs == 1:
        return f"{used} ({'converged' if early else 'cap'})"
    return f"{used} ({early} of {runs} converged)" if runs else str(used)
