"""Level buffers in memory-mapped files: the same render as in RAM, bit for bit."""

import errno
import os

import numpy as np
import pytest
import torch

from largestyle.engine import events as ev
from largestyle.engine.buffers import LevelBuffers, MappedBuffers
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.core.errors import LargestyleError
from largestyle.gatys.lbfgs import minimize

SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"), iterations=6,
               first_level_factor=1)
MODES = {
    "whole": dict(target_size=224),
    "exact": dict(target_size=224, tiling="exact", max_memory="1MB", tile_size=96),
    "blend": dict(target_size=224, tiling="blend", max_memory="1MB", tile_size=96, passes=2),
}


def inputs():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator)


class CountingBuffers(MappedBuffers):
    """Mapped canvases that remember how many files and bytes they made."""

    def __init__(self, folder):
        super().__init__(folder)
        self.files = self.most_bytes = 0

    def empty(self, shape, dtype=torch.float32, device="cpu", mapped=False):
        tensor = super().empty(shape, dtype, device, mapped)
        self.files += mapped
        self.most_bytes = max(self.most_bytes, self.mapped_bytes)
        return tensor


def test_mapped_buffer_is_a_file_in_the_folder_until_released(tmp_path):
    canvases = MappedBuffers(tmp_path / "canvases")
    buffer = canvases.empty((2, 3), mapped=True)
    buffer.copy_(torch.arange(6.0).view(2, 3))
    (path,) = (tmp_path / "canvases").iterdir()
    assert np.array_equal(np.fromfile(path, dtype=np.float32), np.arange(6.0))  # written through to the file
    assert canvases.mapped_bytes == 24
    ram = canvases.empty((2, 3))  # not asked to be mapped: plain RAM
    assert ram.shape == (2, 3) and len(list((tmp_path / "canvases").iterdir())) == 1
    canvases.release()
    assert list((tmp_path / "canvases").iterdir()) == [] and canvases.mapped_bytes == 0
    assert torch.equal(buffer, torch.arange(6.0).view(2, 3))  # still valid while referenced


def test_full_disk_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(LargestyleError, match="No space left on device.*--job-dir") as error:
        MappedBuffers(tmp_path).empty((1000, 1000), mapped=True)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_lbfgs_with_mapped_vectors_equals_lbfgs_in_ram(tmp_path):
    target = torch.linspace(-1, 1, 300)

    def value_and_grad(x):
        from largestyle.gatys.objective import LossTerms
        difference = x - target
        value = float((difference ** 4).sum() + (x ** 2).sum())
        return LossTerms(value, value, 0.0, 0.0), 4 * difference ** 3 + 2 * x

    start = torch.zeros(300)
    in_ram = minimize(value_and_grad, start, 30, history_size=4)
    canvases = CountingBuffers(tmp_path)
    mapped = minimize(value_and_grad, start, 30, history_size=4,
                      allocate=lambda like: canvases.empty(like.shape, like.dtype, mapped=True))
    assert torch.equal(in_ram[0], mapped[0]) and in_ram[2] == mapped[2]
    # point, best, direction, previous gradient, trial, scratch and the history pairs, reused
    assert 6 <= canvases.files <= 6 + 2 * 4 + 2


@pytest.mark.parametrize("mode", MODES)
def test_tiny_ram_budget_maps_the_level_and_renders_the_same(mode, tmp_path):
    content, style = inputs()
    config = make_config(**SHALLOW, **MODES[mode])
    in_ram = Engine(config).render(content, style)
    canvases = CountingBuffers(tmp_path / "canvases")
    engine = Engine(make_config(**SHALLOW, **MODES[mode], max_ram="1KB"), buffers=canvases)
    (level,) = engine.plan(*content.shape[-2:])[0]
    assert (level.mode, level.mapped) == (mode, True)
    assert "memory-mapped files" in level.placement
    assert torch.equal(engine.render(content, style), in_ram)
    assert canvases.files > 0 and canvases.most_bytes >= 224 * 134 * 4 * 3
    assert list((tmp_path / "canvases").iterdir()) == []  # released at the level's end


def test_in_ram_store_never_maps(tmp_path):
    content, _ = inputs()
    engine = Engine(make_config(**SHALLOW, **MODES["exact"], max_ram="1KB"), buffers=LevelBuffers())
    (level,) = engine.plan(*content.shape[-2:])[0]
    assert not level.mapped


def test_auto_tiling_prefers_blend_to_mapped_exact(tmp_path):
    engine = Engine(make_config(**SHALLOW, target_size=224, max_memory="1MB", tile_size=96, max_ram="1KB"),
                    buffers=MappedBuffers(tmp_path))
    (level,) = engine.plan(30, 50)[0]
    assert (level.mode, level.mapped) == ("blend", True)


def test_mapped_exact_level_stopped_and_resumed_is_bit_identical(tmp_path):
    content, style = inputs()
    config = make_config(**SHALLOW, **MODES["exact"], max_ram="1KB")
    straight = Engine(config, buffers=MappedBuffers(tmp_path / "a")).render(content, style)
    checkpoints, seen = MemoryCheckpoints(), []
    engine = Engine(config, lambda event: seen.append(event) if isinstance(event, ev.Evaluation) else None,
                    checkpoints=checkpoints, should_stop=lambda: len(seen) >= 3,
                    policy=CheckpointPolicy(evaluations=1), buffers=MappedBuffers(tmp_path / "b"))
    with pytest.raises(RenderInterrupted):
        engine.render(content, style)
    resumed = Engine(config, checkpoints=checkpoints, buffers=MappedBuffers(tmp_path / "b")).render(content, style)
    assert torch.equal(resumed, straight)
