"""--tolerance ends a level once it has converged, and --optimizer adam: both in every strategy, resumable."""

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine

from strategies import MODES, SHALLOW

OPTIMISERS = {"lbfgs-tolerance": dict(tolerance=0.05),
              "adam-tolerance": dict(optimizer="adam", learning_rate=0.05, tolerance=0.05)}


def inputs():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator)


def config(mode, optimiser, iterations=40):
    return make_config(iterations=iterations, first_level_factor=1, **SHALLOW, **MODES[mode], **OPTIMISERS[optimiser])


def finished(events):
    return [event for event in events if isinstance(event, ev.OptimisationFinished)]


@pytest.mark.parametrize("optimiser", OPTIMISERS)
def test_a_converged_level_ends_early_and_says_so(optimiser):
    content, style = inputs()
    seen = []
    Engine(config("whole", optimiser), seen.append).render(content, style)
    (level,) = finished(seen)
    assert level.converged and 11 <= level.evaluations < 40 and level.skipped == 40 - level.evaluations
    capped = []
    Engine(config("whole", optimiser, iterations=8), capped.append).render(content, style)
    (level,) = finished(capped)
    assert not level.converged and level.evaluations == 8  # the window never filled: the cap ended it


@pytest.mark.parametrize("optimiser", OPTIMISERS)
@pytest.mark.parametrize("mode", MODES)
def test_stopped_and_resumed_is_bit_identical(mode, optimiser):
    content, style = inputs()
    straight = Engine(config(mode, optimiser, iterations=14)).render(content, style)
    checkpoints, seen = MemoryCheckpoints(), []
    stopping = Engine(config(mode, optimiser, iterations=14), lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                      checkpoints=checkpoints, should_stop=lambda: len(seen) >= 7,
                      policy=CheckpointPolicy(evaluations=3))
    with pytest.raises(RenderInterrupted):
        stopping.render(content, style)
    resumed = Engine(config(mode, optimiser, iterations=14), checkpoints=checkpoints).render(content, style)
    assert torch.equal(resumed, straight)


def test_plan_estimates_the_measured_evaluations_where_the_tolerance_allows():
    from largestyle.config.settings import EXPECTED_SHARE
    from largestyle.engine.estimate import describe, expected_evaluations

    settings = make_config(target_size=900, weights="random")
    levels, budget = Engine(settings).plan(600, 900)
    first, *later = levels
    assert expected_evaluations(settings, first) == round(EXPECTED_SHARE[0] * first.evaluations) < first.evaluations
    assert all(expected_evaluations(settings, level) == round(EXPECTED_SHARE[1] * level.evaluations)
               for level in later)
    looser = make_config(target_size=900, weights="random", tolerance=0.01)
    assert [expected_evaluations(looser, level) for level in levels] == [
        expected_evaluations(settings, level) for level in levels]
    for stricter in (make_config(target_size=900, tolerance=0), make_config(target_size=900, tolerance=1e-4)):
        assert [expected_evaluations(stricter, level) for level in levels] == [level.evaluations for level in levels]
    # 0.71 x 36 on the first level; later ones cannot converge before their window of 10 has passed.
    few = make_config(target_size=900, iterations=12, weights="random")
    assert [expected_evaluations(few, level) for level in Engine(few).plan(600, 900)[0]] == [26, 11, 11]
    # The table shows the expected count beside the cap, and the time every cap would take.
    text = describe(levels, budget, 1e-6, 80, Engine(settings).memory, settings)
    assert f"~{expected_evaluations(settings, first)} of {first.evaluations}" in text and "at its cap" in text
    exhaustive = describe(levels, budget, 1e-6, 80, Engine(settings).memory, make_config(tolerance=0))
    assert "~" not in exhaustive.split("total:")[0] and "at its cap" not in exhaustive
