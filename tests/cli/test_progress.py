"""What the CLI shows: a bar on a terminal, log lines otherwise."""

import io

from largestyle.engine import events as ev
from largestyle.cli import progress
from largestyle.gatys.objective import LossTerms

LOSS = LossTerms(total=2.5, content=1.0, style=1.0, tv=0.5)
LEVELS = (ev.LevelPlan(0, 30, 40, "whole", 4, 10 ** 6, 4 * 1200),
          ev.LevelPlan(1, 60, 80, "blend", 2, 10 ** 9, 2 * 3 * 1600, tile_size=32, grid=(1, 3),
                       tiles_per_pass=(3,), tiled_bytes=5 * 2 ** 20))


def feed(printer):
    printer(ev.Notice("random-weights", "random network in use"))
    printer(ev.RenderStarted(LEVELS, "cpu", 2 ** 30, "random", None, None, "no weights file found", (1.0, 1.0, 10.0)))
    printer(ev.LevelStarted(LEVELS[0], 2))
    for i in range(1, 5):
        printer(ev.Evaluation(0, i, 4, LOSS, 1200))
    printer(ev.OptimisationFinished(0, 4, 0, LOSS, 1200))
    printer(ev.LevelFinished(0, 1.0))
    printer(ev.LevelStarted(LEVELS[1], 2))
    for tile in range(3):
        printer(ev.TileStarted(1, 0, 1, tile, 3))
        printer(ev.Evaluation(1, 1, 2, LOSS, 1600, 0, tile))
        printer(ev.OptimisationFinished(1, 1, 1, LOSS, 1600, 0, tile))  # converged after one
    printer(ev.LevelFinished(1, 2.0))
    printer(ev.RenderFinished(3.0, 7))


def test_log_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    stream = io.StringIO()
    printer = progress.ProgressPrinter(stream, terminal=False)
    feed(printer)
    text = stream.getvalue()
    assert "largestyle: warning: random network in use" in text
    assert "level 2/2: 80x60 tiled (whole would need ~953.7 MiB, tiled ~5.0 MiB)" in text
    assert "32 px tiles in a 1x3 grid" in text
    assert "level 1/2 eval 2/4: " in text
    assert "level 2/2 pass 1/1 tile 3/3 eval 1/1: 100% loss 2.5" in text  # skipped evaluations count as done
    assert "ETA" in text and "rendered in" in text
    assert printer.meter.done == printer.meter.total


def test_bar_on_a_terminal():
    stream = io.StringIO()
    printer = progress.ProgressPrinter(stream, terminal=True)
    feed(printer)
    text = stream.getvalue()
    assert "100%|" in text and "level 2/2 pass 1/1 tile 3/3" in text and "eval 1/1 loss 2.5" in text
    assert "largestyle: warning: random network in use" in text


def test_quiet_keeps_only_warnings():
    stream = io.StringIO()
    feed(progress.ProgressPrinter(stream, quiet=True, terminal=False))
    assert stream.getvalue().strip() == "largestyle: warning: random network in use"


def test_level_lines_say_whether_it_converged_or_hit_the_cap():
    from largestyle.gatys.objective import LossTerms

    def done(evaluations, skipped, tile=0):
        return ev.OptimisationFinished(0, evaluations, skipped, LossTerms(1.0, 0.5, 0.4, 0.1), 1, 0, tile)

    assert progress.convergence([done(57, 63)]) == ": converged after 57 of 120 evaluations"
    assert progress.convergence([done(120, 0)]) == ": all 120 evaluations (the --iterations cap)"
    assert progress.convergence([done(10, 2), done(12, 0, 1)]) == ": 1 of 2 tiles converged early, 22 evaluations"
    assert progress.convergence([]) == ""
