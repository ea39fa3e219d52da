"""SIGINT and SIGTERM during a render or a batch: stop at the next safe point, or at once."""

from __future__ import annotations

import signal
import sys


class StopRequests:
    """SIGINT and SIGTERM ask a render to stop at its next safe point; a second one stops at once.

    While no render is under way (inputs and weights loading, between batch jobs) there is
    nothing to save, so a signal stops at once: the process never waits on a slow read.
    """

    def __init__(self):
        self.signal = None
        self.rendering = False

    def __call__(self) -> bool:
        return self.signal is not None

    def watch(self, callback):
        """``callback`` wrapped so that the render's start and end switch between stopping modes."""
        from ..engine.events import RenderFinished, RenderStarted

        def watched(event):
            if isinstance(event, (RenderStarted, RenderFinished)):
                self.rendering = isinstance(event, RenderStarted)
            callback(event)

        return watched

    def _handle(self, number, frame):
        if self.signal is not None or not self.rendering:
            raise KeyboardInterrupt
        self.signal = number
        print("largestyle: stopping at the next safe point to save a checkpoint "
              "(Ctrl-C again to stop at once, losing the work since the last one)", file=sys.stderr)

    def __enter__(self) -> StopRequests:
        self._previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
