"""Renders on a second device without a GPU: every level runner keeps each tensor on its side.

``fakedevice.FakeAccelerator`` makes PyTorch's ``meta`` device a working accelerator whose
tensors refuse to mix with host tensors, as CUDA's do. The engine is pointed at it, so the
level runners, the optimisers, exact tiling's host-resident levels and the checkpoints run as
they would on a GPU, with the CPU's arithmetic.
"""

import contextlib

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.engine import engine as engine_module
from largestyle.engine import events as ev
from largestyle.engine import memory as memory_module
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine

from fakedevice import ACCELERATOR, FakeAccelerator, MixedDevices, OnAccelerator
from strategies import MODES, SHALLOW


def images():
    generator = torch.Generator().manual_seed(4)
    return torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator)


# Besides every strategy, an exact level whose buffers stay on the host while its windows travel
# (8 MB holds a window but not the level); on the CPU the level runs whole, which exact tiling equals.
DEVICE_MODES = {**MODES, "exact on the host": dict(target_size=128, tiling="exact", max_memory="8MB")}
ON_CPU = {**DEVICE_MODES, "exact on the host": dict(target_size=128)}


def config(mode, **options):
    return make_config(iterations=4, first_level_factor=1, **SHALLOW, **DEVICE_MODES[mode], **options)


@pytest.fixture
def accelerator(monkeypatch):
    """Enters the fake accelerator and points the engine at it; its memory calibration is the CPU's
    (a wrapper has no storage to count)."""
    measure = memory_module.saved_bytes_per_pixel

    @contextlib.contextmanager
    def enter():
        monkeypatch.setattr(engine_module, "resolve_device", lambda name: ACCELERATOR)
        monkeypatch.setattr(memory_module, "saved_bytes_per_pixel",
                            lambda layers, pooling, device_type, *dtypes: measure(layers, pooling, "cpu", *dtypes))
        with FakeAccelerator() as fake:
            yield fake
    return enter


def test_the_fake_accelerator_refuses_to_mix_its_tensors_with_the_hosts():
    with FakeAccelerator() as fake:
        on_device = torch.ones(2, 3, device=ACCELERATOR)
        assert isinstance(on_device * 2, OnAccelerator) and (on_device * 2).device == ACCELERATOR
        with pytest.raises(MixedDevices, match="host tensors of shapes"):
            on_device + torch.ones(2, 3)
        assert float((on_device + torch.tensor(1.0)).sum()) == 12.0  # a 0-dimensional host tensor is a scalar
        back = on_device.cpu()
        assert type(back) is torch.Tensor and back.device.type == "cpu" and fake.crossings == 1


@pytest.mark.parametrize("mode", DEVICE_MODES)
def test_a_render_on_another_device_equals_the_cpu_render(accelerator, mode):
    content, style = images()
    on_cpu = make_config(iterations=4, first_level_factor=1, **SHALLOW, **ON_CPU[mode])
    expected, seen = Engine(on_cpu).render(content, style), []
    with accelerator() as fake:
        image = Engine(config(mode), seen.append).render(content, style)
    assert type(image) is torch.Tensor and image.device.type == "cpu"
    if mode == "exact on the host":
        assert torch.allclose(image, expected, rtol=0, atol=1e-5) and not torch.equal(image, expected)
    else:
        assert torch.equal(image, expected)
    started = next(e for e in seen if isinstance(e, ev.RenderStarted))
    assert started.device == str(ACCELERATOR) and fake.crossings > 0
    assert any(level.on_host for level in started.levels) == (mode == "exact on the host")


@pytest.mark.parametrize("mode", DEVICE_MODES)
def test_a_render_on_another_device_stops_and_resumes_bit_for_bit(accelerator, mode):
    content, style = images()
    with accelerator():
        straight = Engine(config(mode)).render(content, style)
        checkpoints, seen = MemoryCheckpoints(), []
        stopping = Engine(config(mode), lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                          checkpoints=checkpoints, should_stop=lambda: len(seen) >= 3,
                          policy=CheckpointPolicy(evaluations=2))
        with pytest.raises(RenderInterrupted):
            stopping.render(content, style)
        assert torch.equal(Engine(config(mode), checkpoints=checkpoints).render(content, style), straight)
