"""Static HTML reports: one page per render's job directory, and an index page for a batch.

A report is read from files that a render writes as it goes (job.json, status.json,
events.jsonl, level images, output.*). Any of them may be missing or cut short by a
killed process, so every reader falls back to "unknown" instead of failing. Inputs and
images are copied into the report as small JPEGs and every link is relative, so the
report still works after the inputs move or the job directory is moved whole.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageOps

from ..core.version import __version__
from ..core.atomic import read_json, write_bytes
from ..core.units import format_bytes
from ..core.units import format_duration

THUMB = 512  # long side of the content, style and level thumbnails
OUTPUT_PREVIEW = 1600  # long side of the final image's preview; the full file is linked
INDEX_THUMB = 256
LOSS_TERMS = ("total", "content", "style", "tv")
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

CSS = """body{font:14px/1.45 sans-serif;color:#222;max-width:1100px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;height:auto;border:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
figure{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.3em 1em}
.bad{color:#a00}.muted{color:#777}code{font-size:.95em}"""


@dataclass
class History:
    """What events.jsonl says happened, reduced to what the report shows."""

    started: dict | None = None  # the latest RenderStarted (a resumed render writes another)
    plan: dict[int, dict] = field(default_factory=dict)  # level dicts by 0-based index
    notices: list[tuple[str, str]] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)  # what was done to the inputs, the output's size
    level_seconds: dict[int, float] = field(default_factory=dict)
    level_evaluations: Counter = field(default_factory=Counter)
    points: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: {t: [] for t in LOSS_TERMS})
    boundaries: list[tuple[int, int]] = field(default_factory=list)  # (evaluation count, level index)
    resumes: list[int] = field(default_factory=list)  # evaluation counts where a resume happened
    evaluations: int = 0  # running count over the whole render, the loss plot's x axis
    finished: dict | None = None  # RenderFinished


def read_events(path: str | Path) -> list[dict]:
    """The events of an events.jsonl file, skipping lines that do not parse (a killed writer
    leaves the last one cut short); an empty list if the file is missing."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            events.append(event)
    return events


def summarise_events(events: list[dict]) -> History:
    """Fold events into a History; unknown event types are ignored."""
    history = History()
    since = 0  # evaluations seen since the current level or tile began
    for event in events:
        kind = event["event"]
        if kind == "RenderStarted":
            history.started = event
            history.plan.update({level["index"]: level for level in _level_dicts(event.get("levels"))})
        elif kind == "Notice":
            notice = (str(event.get("kind", "")), str(event.get("message", "")))
            if notice not in history.notices:  # a resumed render repeats its notices
                history.notices.append(notice)
        elif kind == "Info":
            if event.get("message") and str(event["message"]) not in history.infos:
                history.infos.append(str(event["message"]))
        elif kind == "LevelStarted":
            for level in _level_dicts([event.get("level")]):
                history.plan[level["index"]] = level
                if history.evaluations:
                    history.boundaries.append((history.evaluations, level["index"]))
            since = 0
        elif kind == "TileStarted":
            since = 0
        elif kind == "Evaluation":
            history.evaluations += 1
            since += 1
            # Blend tiles interleave, so their per-evaluation losses make a saw; their final losses plot instead.
            if _mode(history, event.get("level")) != "blend":
                _add_points(history, event.get("loss"))
        elif kind == "OptimisationFinished":
            used = _int(event.get("evaluations"), since)
            history.evaluations += max(0, used - since)  # in case some Evaluation lines were lost
            history.level_evaluations[_int(event.get("level"), -1)] += max(used, since)
            since = 0
            if _mode(history, event.get("level")) == "blend":
                _add_points(history, event.get("loss"))
        elif kind == "LevelFinished":
            seconds = _float(event.get("seconds"))
            if seconds is not None:
                history.level_seconds[_int(event.get("level"), -1)] = seconds
        elif kind == "RenderFinished":
            history.finished = event
        elif kind == "Resumed":
            history.resumes.append(history.evaluations)
    return history


def _level_dicts(levels) -> list[dict]:
    return [level for level in levels or [] if isinstance(level, dict) and isinstance(level.get("index"), int)]


def _mode(history: History, level) -> str | None:
    return history.plan.get(_int(level, -1), {}).get("mode")


def _add_points(history: History, loss) -> None:
    if not isinstance(loss, dict):
        return
    for term in LOSS_TERMS:
        value = _float(loss.get(term))
        if value is not None and value > 0:  # a log axis cannot show zero (content starts at 0 from the photo)
            history.points[term].append((history.evaluations, value))


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _int(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# ---------------------------------------------------------------- the job report

def write_report(job_dir: str | Path) -> Path:
    """Write ``job_dir/report.html`` and its images in ``job_dir/report/``; return the html path."""
    job_dir = Path(job_dir)
    assets = job_dir / "report"
    assets.mkdir(exist_ok=True)
    job = read_json(job_dir / "job.json")
    status = read_json(job_dir / "status.json") or {}
    history = summarise_events(read_events(job_dir / "events.jsonl"))
    state = str(status.get("state") or ("finished" if history.finished else "unknown"))
    name = Path(str(job and job.get("output") or status.get("output") or job_dir.name)).name
    body = "\n".join([
        f"<h1>{_e(name)}: {_e(state)}</h1>",
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
    path = job_dir / "report.html"
    write_bytes(path, _page(f"{name}: {state}", body))
    return path


def _status_section(status: dict, state: str) -> str:
    parts = []
    if state != "finished" and _float(status.get("percent")) is not None:
        parts.append(f"{_float(status['percent']):.0f}% done")
    if status.get("level") is not None and state != "finished":
        parts.append(f"level {status['level']}/{status.get('levels', '?')}")
    if status.get("tile"):
        parts.append(str(status["tile"]))
    if state == "running" and _float(status.get("eta_seconds")) is not None:
        parts.append(f"about {_duration(_float(status['eta_seconds']))} left")
    if status.get("updated"):
        parts.append(f"status updated {status['updated']}")
    loss = status.get("last_loss")
    if isinstance(loss, dict) and _float(loss.get("total")) is not None:
        terms = ", ".join(f"{term} {_float(loss.get(term)):.4g}" for term in LOSS_TERMS[1:]
                          if _float(loss.get(term)) is not None)
        parts.append(f"last loss {_float(loss['total']):.4g} ({terms})")
    lines = [f"<p>{_e(' · '.join(parts))}</p>"] if parts else []
    if status.get("message"):
        css = "bad" if state in ("failed", "interrupted") else "muted"
        lines.append(f'<p class="{css}">{_e(status["message"])}</p>')
    return "\n".join(lines)


def _infos_section(history: History) -> str:
    if not history.infos:
        return ""
    items = "".join(f"<li>{_e(info)}</li>" for info in history.infos)
    return f"<h2>Inputs and output</h2>\n<ul>{items}</ul>"


def _warnings_section(history: History, job: dict | None) -> str:
    notes = [f"<b>{_e(kind)}</b>: {_e(message)}" if kind else _e(message) for kind, message in history.notices]
    if job is None:
        notes.append("job.json is missing or unreadable: inputs and settings are unknown.")
    if not notes:
        return ""
    items = "".join(f"<li>{note}</li>" for note in notes)
    return f'<h2>Warnings</h2>\n<div class="warn"><ul>{items}</ul></div>'


def _output_section(job_dir: Path, assets: Path, state: str) -> str:
    outputs = sorted(path for path in job_dir.glob("output.*") if path.is_file())
    if not outputs:
        return f'<h2>Final image</h2>\n<p class="muted">No final image ({_e(state)}).</p>'
    output = outputs[0]
    size = _thumbnail(output, assets / "output.jpg", OUTPUT_PREVIEW)
    link = _href(output.name)
    if size is None:
        return f'<h2>Final image</h2>\n<p><a href="{link}">{_e(output.name)}</a> (cannot be previewed)</p>'
    return (f'<h2>Final image</h2>\n<p><a href="{link}"><img src="{_href("report/output.jpg")}" '
            f'alt="final image"></a><br>{_e(output.name)}, {size[0]}x{size[1]} px</p>')


def _inputs_section(job: dict, assets: Path) -> str:
    figures = []
    for role in ("content", "style"):
        path, sha = _part(job, role).get("path"), _part(job, role).get("sha256")
        thumb = assets / (f"{role}-{sha[:12]}.jpg" if isinstance(sha, str) and sha else f"{role}.jpg")
        caption = f"<b>{_e(role)}</b><br><code>{_e(path or 'unknown path')}</code>"
        if path and Path(path).is_file():
            if _thumbnail(Path(path), thumb, THUMB) is None:
                caption += '<br><span class="bad">cannot be read as an image</span>'
        elif thumb.is_file():  # moved since an earlier report kept its thumbnail
            caption += '<br><span class="bad">no longer at this path</span> (thumbnail kept from an earlier report)'
        else:
            caption += '<br><span class="bad">missing: the file no longer exists</span>'
        image = f'<img src="{_href("report/" + thumb.name)}" alt="{_e(role)}">' if thumb.is_file() else ""
        figures.append(f"<figure>{image}<figcaption>{caption}</figcaption></figure>")
    return "<h2>Inputs</h2>\n" + "\n".join(figures)


def _levels_section(job_dir: Path, assets: Path, history: History) -> str:
    images = {}
    for path in (job_dir / "levels").glob("level-*.png"):
        match = re.fullmatch(r"level-(\d+)\.png", path.name)
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
            thumb = f"level-{number}.jpg"
            size = _thumbnail(images[index], assets / thumb, THUMB)
            full = _href(f"levels/{images[index].name}")
            image = (f'<a href="{full}"><img src="{_href("report/" + thumb)}" alt="level {number}"></a>'
                     if size else f'<a href="{full}">{_e(images[index].name)}</a>')
        if plan.get("width") and plan.get("height"):
            size = (plan["width"], plan["height"])
        seconds = history.level_seconds.get(index)
        rows.append((f'id="level-{number}"', [
            _e(f"{number}/{len(history.plan)}" if history.plan else number), image,
            _e(f"{size[0]}x{size[1]}" if size else "?"), _e(_describe_mode(plan)), _e(_level_memory(plan)),
            _e(history.level_evaluations.get(index, "?")), _e(_duration(seconds) if seconds is not None else "?"),
        ]))
    count = f" ({len(finished)} of {len(history.plan)} finished)" if history.plan else ""
    return f"<h2>Levels{_e(count)}</h2>\n" + _table(header, rows)


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
    return f"~{format_bytes(count)}" if _float(count) is not None else "?"


def _loss_section(assets: Path, history: History) -> str:
    png = _plot_loss(history)
    if png is None:
        return '<h2>Loss</h2>\n<p class="muted">No evaluations recorded: no loss plot.</p>'
    write_bytes(assets / "loss.png", png)
    note = ("<p class=\"muted\">Blend-tiled levels show each tile's final loss; other levels every evaluation. "
            "Dotted lines: level boundaries; dashed: resumes.</p>")
    return f'<h2>Loss</h2>\n<p><img src="{_href("report/loss.png")}" alt="loss curves"></p>\n{note}'


def _plot_loss(history: History) -> bytes | None:
    """The loss curves as PNG bytes, or None when there is nothing to plot."""
    if not any(history.points.values()):
        return None
    from matplotlib.figure import Figure  # imported here: heavy, and only needed with data

    # A bare Figure renders through the Agg canvas on savefig: no display, no global backend state.
    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.add_subplot()
    for term in LOSS_TERMS:
        if history.points[term]:
            xs, ys = zip(*history.points[term])
            axes.plot(xs, ys, label=term, linewidth=1, marker=".", markersize=3)
    for x, level in history.boundaries:
        axes.axvline(x, color="0.55", linestyle=":", linewidth=1)
        axes.text(x, 1.0, f" level {level + 1}", transform=axes.get_xaxis_transform(), fontsize=8, va="top")
    for number, x in enumerate(history.resumes):
        axes.axvline(x, color="tab:red", linestyle="--", linewidth=1, label=None if number else "resumed")
    axes.set_yscale("log")
    axes.set_xlabel("evaluation (whole render)")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _timings_section(history: History) -> str:
    if not history.level_seconds and not history.finished:
        return ""
    rows = [("", [_e(f"level {index + 1}"), _e(_duration(seconds)),
                  _e(history.level_evaluations.get(index, "?"))])
            for index, seconds in sorted(history.level_seconds.items()) if index >= 0]
    finished = history.finished or {}
    total = _float(finished.get("seconds"))
    label = "total" if total is not None else "sum of levels"
    total = total if total is not None else sum(history.level_seconds.values())
    evaluations = _int(finished.get("evaluations"), history.evaluations)
    rows.append(("", [f"<b>{_e(label)}</b>", f"<b>{_e(_duration(total))}</b>", f"<b>{_e(evaluations)}</b>"]))
    return "<h2>Timings</h2>\n" + _table(["", "time", "evaluations"], rows)


def _settings_section(job: dict, history: History) -> str:
    setting_rows = [("", [_e(key), _e(_value(value))]) for key, value in _part(job, "settings").items()]
    weights = _part(job, "weights")
    started = history.started or {}
    run = [
        ("largestyle version", job.get("version", "?")),
        ("report written by largestyle", __version__),
        ("created", job.get("created", "?")),
        ("device", started.get("device", "?")),
        ("memory budget", format_bytes(started["budget_bytes"]) if _float(started.get("budget_bytes")) else "?"),
        ("weights", weights.get("flavour") or started.get("weights") or "?"),
        ("weights chosen by", started.get("weights_chosen_by") or "?"),
        ("weights file", weights.get("path") or started.get("weights_path")),
        ("weights sha256", _short(weights.get("sha256") or started.get("weights_sha256"))),
        ("loss weights (content, style, tv)", started.get("loss_weights", "?")),
    ] + [(f"{role} sha256", _short(_part(job, role).get("sha256"))) for role in ("content", "style")]
    run_rows = [("", [_e(key), _e(_value(value))]) for key, value in run]
    settings = (_table(["setting", "value"], setting_rows) if setting_rows
                else '<p class="muted">No settings recorded.</p>')
    return f"<h2>Settings</h2>\n{settings}\n<h2>Run</h2>\n{_table([], run_rows)}"


def _part(job: dict, key: str) -> dict:
    """A sub-object of job.json, or {} when it is absent or malformed."""
    return job[key] if isinstance(job.get(key), dict) else {}


def _short(sha) -> str:
    return sha[:12] if isinstance(sha, str) and sha else "none"


def _value(value) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------- the batch index

def write_index(index_path: str | Path, jobs: list[dict]) -> Path:
    """Write a batch's index page at ``index_path``, output thumbnails in ``index-thumbs/`` beside it.

    Each job is a dict with ``name``, ``status``, ``seconds``, ``output``, ``job_dir`` and ``message``.
    """
    index_path = Path(index_path)
    root = index_path.parent
    thumbs = root / "index-thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    rows = [_index_row(root, thumbs, job) for job in jobs]
    counts = Counter(str(job.get("status") or "unknown") for job in jobs)
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    body = (f"<h1>Batch of {len(jobs)} render{'s' if len(jobs) != 1 else ''}</h1>\n<p>{_e(summary)}</p>\n"
            + _table(["output", "name", "status", "time", "report"], rows))
    write_bytes(index_path, _page("largestyle batch", body))
    return index_path


def _index_row(root: Path, thumbs: Path, job: dict) -> tuple[str, list[str]]:
    name, status = str(job.get("name") or "?"), str(job.get("status") or "unknown")
    output = Path(job["output"]) if job.get("output") else None
    report = Path(job["job_dir"]) / "report.html" if job.get("job_dir") else None
    report_link = _relative(report, root) if report and report.is_file() else None
    output_link = _relative(output, root) if output and output.is_file() else None
    image = ""
    if output_link:
        # Named by the output's path so that thumbnails of different batches in one folder never collide.
        digest = hashlib.sha1(str(output.resolve()).encode()).hexdigest()[:10]
        thumb = thumbs / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)[:60]}-{digest}.jpg"
        if _thumbnail(output, thumb, INDEX_THUMB):
            image = (f'<a href="{_href(report_link or output_link)}">'
                     f'<img src="{_href(_relative(thumb, root))}" alt=""></a>')
    cells = [
        image,
        f'<a href="{_href(output_link)}">{_e(name)}</a>' if output_link else _e(name),
        (f'<span class="bad">{_e(status)}</span>' if status == "failed" else _e(status))
        + (f"<br>{_e(job['message'])}" if job.get("message") else ""),
        _e(_duration(job["seconds"]) if _float(job.get("seconds")) is not None else "–"),
        f'<a href="{_href(report_link)}">report</a>' if report_link else "–",
    ]
    return "", cells


# ---------------------------------------------------------------- shared helpers

def _thumbnail(source: Path, dest: Path, size: int) -> tuple[int, int] | None:
    """Write ``dest``, a JPEG of ``source`` at most ``size`` px on its long side.

    Returns the source's size, or None when it cannot be read as an image. An existing
    ``dest`` newer than ``source`` is kept: reports are rewritten while a render runs,
    and decoding a print-sized level each time would be slow.
    """
    try:
        with Image.open(source) as image:
            full = image.size
            if dest.is_file() and dest.stat().st_mtime >= source.stat().st_mtime:
                return full
            image.thumbnail((size, size))
            small = _rgb(ImageOps.exif_transpose(image))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=85)
    except _UNREADABLE:
        return None
    write_bytes(dest, buffer.getvalue())
    return full


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I"):  # 16-bit greyscale: convert() would clip it rather than scale it
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) / 257, 0, 255).astype(np.uint8))
    return image.convert("RGB")


def _relative(path: Path, start: Path) -> str | None:
    """``path`` relative to ``start`` in URL form, or None where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return None


def _href(relative: str) -> str:
    return html.escape(quote(relative))


def _e(value) -> str:
    return html.escape(str(value))


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def _table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """An html table; ``rows`` are (row attributes, cells of already escaped html); no header row if empty."""
    head = "<tr>" + "".join(f"<th>{_e(cell)}</th>" for cell in header) + "</tr>\n" if header else ""
    body = "".join(f"<tr{' ' + attrs if attrs else ''}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n"
                   for attrs, cells in rows)
    return f"<table>\n{head}{body}</table>"


def _page(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n").encode("utf-8")
