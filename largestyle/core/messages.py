"""Messages for the user that any part of a render may produce: notices (warnings) and information.

They are events (``largestyle.engine.events`` lists every kind) but need nothing of the
render core, so reading inputs can produce them too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    """Something the user should know; ``kind`` is a stable tag, e.g. 'random-weights'."""

    kind: str
    message: str


@dataclass(frozen=True)
class Info:
    """What was decided about the inputs or output, e.g. the print size; not a warning."""

    kind: str
    message: str
