"""A render stopped at any point and resumed from its checkpoints equals one never stopped."""

import pytest
import torch

from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine

SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
# Whole and exact over two levels; blend (many tiles, each its own L-BFGS) over one.
MODES = {
    "whole": dict(target_size=448),
    "exact": dict(target_size=448, tiling="exact", max_memory="1MB", tile_size=128),
    "blend": dict(target_size=224, tiling="blend", max_memory="1MB", tile_size=96, passes=2),
}


def inputs():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator)


def config(mode):
    return make_config(iterations=6, first_level_factor=1, **SHALLOW, **MODES[mode])


def stop_after(evaluations):
    """A stop request that turns on after the given number of loss evaluations."""
    seen = []

    def callback(event):
        if isinstance(event, ev.Evaluation):
            seen.append(event)

    return callback, lambda: len(seen) >= evaluations


@pytest.mark.parametrize("mode", MODES)
def test_stopped_and_resumed_render_is_bit_identical(mode):
    content, style = inputs()
    straight = Engine(config(mode)).render(content, style)
    checkpoints = MemoryCheckpoints()
    stops = 0
    # Stop three times at different points: within the first level, within the second, and later.
    for evaluations in (4, 5, 3):
        callback, should_stop = stop_after(evaluations)
        engine = Engine(config(mode), callback, checkpoints=checkpoints, should_stop=should_stop,
                        policy=CheckpointPolicy(evaluations=2))
        try:
            result = engine.render(content, style)
            break
        except RenderInterrupted:
            stops += 1
    else:
        result = Engine(config(mode), checkpoints=checkpoints).render(content, style)
    assert stops >= 2
    assert ev.LevelPlan.from_plain(checkpoints.load("plan")["levels"][-1]).mode == mode
    assert torch.equal(result, straight)


def test_finished_levels_are_not_redone():
    content, style = inputs()
    checkpoints = MemoryCheckpoints()
    Engine(config("whole"), checkpoints=checkpoints).render(content, style)
    seen = []
    Engine(config("whole"), seen.append, checkpoints=checkpoints).render(content, style)
    assert not any(isinstance(event, ev.Evaluation) for event in seen)
    assert [type(event) for event in seen if isinstance(event, ev.Resumed)] == [ev.Resumed] * 2
