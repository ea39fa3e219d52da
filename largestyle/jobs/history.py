"""What a render's events.jsonl says happened, read leniently and reduced to what the report shows.

A killed writer leaves the last line cut short, and any line may be damaged: what does
not parse is skipped, and every value is checked before it is used.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

LOSS_TERMS = ("total", "content", "style", "tv")


@dataclass
class History:
    """What events.jsonl says happened, reduced to what the report shows."""

    started: dict | None = None  # the latest RenderStarted (a resumed render writes another)
    plan: dict[int, dict] = field(default_factory=dict)  # level dicts by 0-based index
    notices: list[tuple[str, str]] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)  # what was done to the inputs, the output's size
    level_seconds: dict[int, float] = field(default_factory=dict)
    level_evaluations: Counter = field(default_factory=Counter)
    level_optimisations: Counter = field(default_factory=Counter)  # a whole level's one, or each blend tile's
    level_converged: Counter = field(default_factory=Counter)  # of those, how many ended before their cap
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
            used = as_int(event.get("evaluations"), since)
            history.evaluations += max(0, used - since)  # in case some Evaluation lines were lost
            level = as_int(event.get("level"), -1)
            history.level_evaluations[level] += max(used, since)
            history.level_optimisations[level] += 1
            history.level_converged[level] += as_int(event.get("skipped"), 0) > 0
            since = 0
            if _mode(history, event.get("level")) == "blend":
                _add_points(history, event.get("loss"))
        elif kind == "LevelFinished":
            seconds = as_float(event.get("seconds"))
            if seconds is not None:
                history.level_seconds[as_int(event.get("level"), -1)] = seconds
        elif kind == "RenderFinished":
            history.finished = event
        elif kind == "Resumed":
            history.resumes.append(history.evaluations)
    return history


def _level_dicts(levels) -> list[dict]:
    return [level for level in levels or [] if isinstance(level, dict) and isinstance(level.get("index"), int)]


def _mode(history: History, level) -> str | None:
    return history.plan.get(as_int(level, -1), {}).get("mode")


def _add_points(history: History, loss) -> None:
    if not isinstance(loss, dict):
        return
    for term in LOSS_TERMS:
        value = as_float(loss.get(term))
        if value is not None and value > 0:  # a log axis cannot show zero (content starts at 0 from the photo)
            history.points[term].append((history.evaluations, value))


def as_float(value) -> float | None:
    """A finite number read from a record, or None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def as_int(value, default: int) -> int:
    """An integer read from a record (not a bool), or ``default``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default
