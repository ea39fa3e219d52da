"""Shows engine events to a person: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ..core.units import format_bytes, format_duration
from ..engine import events as ev
from ..engine.meter import WorkMeter, describe_level

# Seconds between log lines when the output is not a terminal.
LOG_INTERVAL = 5.0



class ProgressPrinter:
    """An event callback for the CLI. ``quiet`` keeps only warnings."""

    def __init__(self, stream=None, quiet: bool = False, terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.bar = None
        self.meter = WorkMeter()
        self.last_log = time.monotonic()
        self.levels = 1
        self.where = ""
        self.finished: list[ev.OptimisationFinished] = []  # the current level's optimisations
        self.held: list[str] = []  # Info lines, shown once the render starts (not before an error)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, ev.Notice):
            self.write(f"largestyle: warning: {event.message}")
        if self.quiet:
            return
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler:
            handler(event)

    def _on_Info(self, event: ev.Info):
        self.held.append(f"largestyle: {event.message}")

    def _on_RenderStarted(self, event: ev.RenderStarted):
        for line in self.held:
            self.write(line)
        self.held.clear()
        self.meter.total = max(1, event.total_work)
        self.levels = len(event.levels)
        weights = event.weights
        if event.weights_path:
            weights += f" ({event.weights_path}, sha256 {event.weights_sha256[:12]}…, by {event.weights_chosen_by})"
        content, style, tv = event.loss_weights
        self.write(f"device {event.device}, memory budget {format_bytes(event.budget_bytes)}, weights {weights}, "
                   f"loss weights content {content:g} style {style:g} tv {tv:g}")
        for level in event.levels:
            self.write(describe_level(level, self.levels))
        if self.terminal:
            self.bar = tqdm(total=self.meter.total, file=self.stream, dynamic_ncols=True, mininterval=0.5,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]{postfix}")

    def _on_LevelStarted(self, event: ev.LevelStarted):
        self.where = f"level {event.level.index + 1}/{event.count}"
        self.finished.clear()
        self._describe()

    def _on_TileStarted(self, event: ev.TileStarted):
        self.where = (f"level {event.level + 1}/{self.levels} pass {event.pass_index + 1}/{event.passes} "
                      f"tile {event.tile + 1}/{event.tiles}")
        self._describe()

    def _describe(self):
        if self.bar is not None:
            self.bar.set_description_str(self.where, refresh=False)

    def _advance(self, work: int, loss, evaluation: str) -> None:
        self.meter.advance(work)
        if self.bar is not None:
            self.bar.update(work)
            self.bar.set_postfix_str(f"eval {evaluation} loss {loss.total:.4g}", refresh=False)
            return
        now = time.monotonic()
        if now - self.last_log >= LOG_INTERVAL:
            self.last_log = now
            eta = self.meter.eta()
            self.write(f"{self.where} eval {evaluation}: {100 * self.meter.fraction:.0f}% loss {loss.total:.4g} "
                       f"(content {loss.content:.3g}, "
                       f"style {loss.style:.3g}, tv {loss.tv:.3g}), "
                       f"ETA {format_duration(eta) if eta is not None else 'unknown'}")

    def _on_Evaluation(self, event: ev.Evaluation):
        self._advance(event.work, event.loss, f"{event.evaluation}/{event.budget}")

    def _on_OptimisationFinished(self, event: ev.OptimisationFinished):
        self.finished.append(event)
        if event.skipped:  # converged early: keep the bar's total honest
            self._advance(event.skipped * event.work, event.loss, f"{event.evaluations}/{event.evaluations}")

    def _on_Resumed(self, event: ev.Resumed):
        self.meter.restore(event.work)
        if self.bar is not None:  # counted as done, but not towards tqdm's rate
            self.bar.initial += event.work
            self.bar.update(event.work)
        else:
            self.write(f"level {event.level + 1}/{self.levels}: resumed after {event.evaluations} evaluations")

    def _on_LevelFinished(self, event: ev.LevelFinished):
        self.write(f"level {event.level + 1}/{self.levels} done in {format_duration(event.seconds)}"
                   + convergence(self.finished))

    def _on_RenderFinished(self, event: ev.RenderFinished):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.write(f"rendered in {format_duration(event.seconds)} ({event.evaluations} loss evaluations)")


def convergence(finished: list[ev.OptimisationFinished]) -> str:
    """How a level's optimisations ended: converged early, or at their --iterations cap."""
    if not finished:
        return ""
    if len(finished) == 1:
        (one,) = finished
        budget = one.evaluations + one.skipped
        return (f": converged after {one.evaluations} of {budget} evaluations" if one.converged
                else f": all {budget} evaluations (the --iterations cap)")
    early = sum(one.converged for one in finished)
    return f": {early} of {len(finished)} tiles converged early, {sum(one.evaluations for one in finished)} evaluations"
