"""A second method, written only against ``engine.method.Method``, runs on the render core.

It pulls every pixel towards the style image's mean colour by plain gradient descent:
no network, no Gatys code. Whole, exact and blend levels, and a stop and resume, all go
through the same planner, runners and checkpoints as Gatys renders.
"""

from dataclasses import dataclass

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine
from largestyle.engine import events as ev


@dataclass(frozen=True)
class Terms:
    total: float
    content: float = 0.0
    style: float = 0.0
    tv: float = 0.0


class TowardsColour:
    def __init__(self, image):
        self.colour = image

    def value_and_grad(self, image):
        difference = image - self.colour
        return Terms(float(difference.pow(2).mean())), 2 * difference / difference.numel()


@dataclass
class Descent:
    x: torch.Tensor
    used: int

    def to_plain(self):
        return {"x": self.x.clone(), "used": self.used}


class MeanColour:
    layers = ("relu1_1",)
    content_layers = ()
    weights_info = None
    loss_weights = (0.0, 1.0, 0.0)

    def __init__(self):
        self.prepared = 0

    def prepare(self, device):
        self.prepared += 1

    def level_targets(self, styles, level, memory, budget):
        return torch.stack([style.mean(dim=(-2, -1), keepdim=True) for style in styles]).mean(0)

    def objective(self, content, targets):
        return TowardsColour(targets)

    def windowed_objective(self, content, targets, core, cache_content):
        return TowardsColour(targets)  # per-pixel: any window gives the same gradient

    def restore(self, plain, device):
        return Descent(plain["x"].to(device), plain["used"])

    def minimize(self, objective, start, evaluations, where, on_evaluation, state, on_iteration, allocate):
        state = state or Descent(start.detach().clone(), 0)
        terms = None
        while state.used < evaluations:
            if on_iteration is not None:
                on_iteration(lambda: state)
            terms, grad = objective.value_and_grad(state.x)
            state.x = state.x - 0.25 * grad * state.x.numel()
            state.used += 1
            on_evaluation(state.used, terms)
        return state.x, terms or Terms(0.0), state.used


MODES = {"whole": {}, "exact": dict(tiling="exact", max_memory="1MB", tile_size=32),
         "blend": dict(tiling="blend", max_memory="1MB", tile_size=32, passes=1)}


def inputs():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(3, 48, 64, generator=generator), torch.rand(3, 16, 16, generator=generator)


def config(mode):
    return make_config(target_size=64, iterations=12, first_level_factor=1, **MODES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_a_second_method_renders_every_strategy(mode):
    content, style = inputs()
    method, seen = MeanColour(), []
    engine = Engine(config(mode), seen.append, method=method)
    image = engine.render(content, style)
    (level,) = next(e for e in seen if isinstance(e, ev.RenderStarted)).levels
    assert level.mode == mode
    colour = style.mean(dim=(-2, -1), keepdim=True)
    assert float((image - colour).abs().max()) < 0.01  # every pixel reached the style's mean colour
    assert method.prepared == 1


@pytest.mark.parametrize("mode", ["whole", "blend"])
def test_a_second_method_stops_and_resumes_bit_for_bit(mode):
    content, style = inputs()
    straight = Engine(config(mode), method=MeanColour()).render(content, style)
    checkpoints, seen = MemoryCheckpoints(), []
    stopping = Engine(config(mode), lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                      checkpoints=checkpoints, should_stop=lambda: len(seen) >= 5,
                      policy=CheckpointPolicy(evaluations=1), method=MeanColour())
    with pytest.raises(RenderInterrupted):
        stopping.render(content, style)
    resumed = Engine(config(mode), checkpoints=checkpoints, method=MeanColour()).render(content, style)
    assert torch.equal(resumed, straight)
