"""A batch's index page: each job's output thumbnail, status, time and a link to its report."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from ..core.atomic import write_bytes
from . import layout
from .history import as_float
from .pages import duration, esc, href, page, relative, table, thumbnail

INDEX_THUMB = 256
THUMBS_DIR = "index-thumbs"  # beside the index page


def write_index(index_path: str | Path, jobs: list[dict]) -> Path:
    """Write a batch's index page at ``index_path``, output thumbnails in ``index-thumbs/`` beside it.

    Each job is a dict with ``name``, ``status``, ``seconds``, ``output``, ``job_dir`` and ``message``.
    """
    index_path = Path(index_path)
    root = index_path.parent
    thumbs = root / THUMBS_DIR
    thumbs.mkdir(parents=True, exist_ok=True)
    rows = [_index_row(root, thumbs, job) for job in jobs]
    counts = Counter(str(job.get("status") or "unknown") for job in jobs)
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    body = (f"<h1>Batch of {len(jobs)} render{'s' if len(jobs) != 1 else ''}</h1>\n<p>{esc(summary)}</p>\n"
            + table(["output", "name", "status", "time", "report"], rows))
    write_bytes(index_path, page("largestyle batch", body))
    return index_path


def _index_row(root: Path, thumbs: Path, job: dict) -> tuple[str, list[str]]:
    name, status = str(job.get("name") or "?"), str(job.get("status") or "unknown")
    output = Path(job["output"]) if job.get("output") else None
    report = Path(job["job_dir"]) / layout.REPORT_FILE if job.get("job_dir") else None
    report_link = relative(report, root) if report and report.is_file() else None
    output_link = relative(output, root) if output and output.is_file() else None
    image = ""
    if output_link:
        # Named by the output's path so that thumbnails of different batches in one folder never collide.
        digest = hashlib.sha1(str(output.resolve()).encode()).hexdigest()[:10]
        thumb = thumbs / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)[:60]}-{digest}.jpg"
        if thumbnail(output, thumb, INDEX_THUMB):
            image = (f'<a href="{href(report_link or output_link)}">'
                     f'<img src="{href(relative(thumb, root))}" alt=""></a>')
    cells = [
        image,
        f'<a href="{href(output_link)}">{esc(name)}</a>' if output_link else esc(name),
        (f'<span class="bad">{esc(status)}</span>' if status == "failed" else esc(status))
        + (f"<br>{esc(job['message'])}" if job.get("message") else ""),
        esc(duration(job["seconds"]) if as_float(job.get("seconds")) is not None else "–"),
        f'<a href="{href(report_link)}">report</a>' if report_link else "–",
    ]
    return "", cells
