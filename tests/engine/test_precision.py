"""--precision bf16: the convolutions in bfloat16 (autocast), Grams, losses and the optimiser in float32."""

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.core.errors import LargestyleError
from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine
from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.network.vgg import VGG19Features

from strategies import MODES, SHALLOW


def images():
    generator = torch.Generator().manual_seed(2)
    return torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator)


def config(mode, **options):
    return make_config(iterations=6, first_level_factor=1, **SHALLOW, **MODES[mode], **options)


def test_bf16_features_are_float32_and_close_to_fp32_ones():
    network = VGG19Features("relu2_1")
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    exact = network(image, ["relu1_1", "relu2_1"])
    network.compute_dtype = torch.bfloat16
    rounded = network(image, ["relu1_1", "relu2_1"])
    for layer, features in rounded.items():
        assert features.dtype == torch.float32
        error = float((features - exact[layer]).abs().max() / exact[layer].abs().max())
        assert 0 < error < 0.02  # bfloat16 keeps about 3 significant digits


def test_a_bf16_gradient_is_within_bfloat16_precision_of_fp32():
    network = VGG19Features("relu3_1")
    settings = make_config(**SHALLOW)
    generator = torch.Generator().manual_seed(1)
    content, style, image = (torch.rand(1, 3, 64, 64, generator=generator) for _ in range(3))
    objective = Objective(network, resolve_loss_weights(settings), content_targets(network, content, settings.content_layers),
                          style_targets(network, style, settings.style_layers))
    terms, exact = objective.value_and_grad(image)
    network.compute_dtype = torch.bfloat16
    rounded_terms, rounded = objective.value_and_grad(image)
    error = float((rounded - exact).norm() / exact.norm())
    assert 0 < error < 0.03  # measured 0.01: bfloat16 keeps about 3 significant digits
    assert rounded_terms.total == pytest.approx(terms.total, rel=1e-3)


@pytest.mark.parametrize("mode", MODES)
def test_a_bf16_render_is_close_to_fp32_and_resumes_bit_for_bit(mode):
    content, style = images()
    fp32 = Engine(config(mode)).render(content, style)
    settings = config(mode, precision="bf16")
    straight = Engine(settings).render(content, style)
    assert straight.dtype == torch.float32 and not torch.equal(straight, fp32)
    # Six iterations of a tiny render amplify the rounding chaotically: 0.003-0.022 measured across modes.
    assert float((straight - fp32).abs().mean()) < 0.03
    checkpoints, seen = MemoryCheckpoints(), []
    stopping = Engine(settings, lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                      checkpoints=checkpoints, should_stop=lambda: len(seen) >= 4, policy=CheckpointPolicy(evaluations=2))
    with pytest.raises(RenderInterrupted):
        stopping.render(content, style)
    assert torch.equal(Engine(settings, checkpoints=checkpoints).render(content, style), straight)


def test_an_unknown_precision_is_refused():
    with pytest.raises(LargestyleError, match="--precision must be one of fp32, bf16"):
        make_config(precision="fp16")


def test_the_deterministic_switch_turns_on_deterministic_kernels_before_cuda_starts():
    import os
    import subprocess
    import sys

    check = ("import os, torch, largestyle; "
             "print(torch.are_deterministic_algorithms_enabled(), os.environ.get('CUBLAS_WORKSPACE_CONFIG'))")
    env = {key: value for key, value in os.environ.items() if key != "CUBLAS_WORKSPACE_CONFIG"}
    on = subprocess.run([sys.executable, "-c", check], env={**env, "LARGESTYLE_DETERMINISTIC": "1"},
                        capture_output=True, text=True, check=True).stdout.split()
    off = subprocess.run([sys.executable, "-c", check], env={**env, "LARGESTYLE_DETERMINISTIC": ""},
                         capture_output=True, text=True, check=True).stdout.split()
    assert on == ["True", ":4096:8"] and off == ["False", "None"]
