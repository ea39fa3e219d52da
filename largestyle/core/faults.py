"""Deliberate faults at named points, for testing that a render survives them.

``LARGESTYLE_KILL_AT=checkpoint-write:2`` makes the process SIGKILL itself in the
middle of its second checkpoint write; other points are ``evaluation`` and ``tile``.
A third part names another signal (``evaluation:5:TERM`` sends SIGTERM) or an errno
(``checkpoint-write:2:ENOSPC`` makes that write fail as on a full disk).
Unset (always, outside tests), ``kill_point`` does nothing.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

KILL_ENV = "LARGESTYLE_KILL_AT"
_seen: Counter = Counter()


def kill_point(name: str) -> None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    parts = spec.split(":")
    point, count, action = parts[0], (parts[1:2] or ["1"])[0], (parts[2:3] or ["KILL"])[0]
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] != int(count):
        return
    if action.startswith("E"):
        number = getattr(errno, action)
        raise OSError(number, os.strerror(number))
    os.kill(os.getpid(), getattr(signal, "SIG" + action))
