"""--tolerance ends a level once it has converged, and --optimizer adam: both in every strategy, resumable."""

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine

SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
MODES = {
    "whole": dict(target_size=96),
    "exact": dict(target_size=96, tiling="exact", max_memory="1MB", tile_size=48),
    "blend": dict(target_size=64, tiling="blend", max_memory="1MB", tile_size=48, passes=1),
}
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
