"""The planner, built directly: where each level runs, in which tiles, and the out-of-memory shrink."""

import dataclasses

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.core.errors import LargestyleError
from largestyle.core.vgg import halo
from largestyle.engine.engine import Engine
from largestyle.engine.memory import MemoryModel
from largestyle.engine.meter import describe_level
from largestyle.engine.planner import Budgets, ExactLayout, Planner

SHALLOW = dict(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))  # 16 px halo: real windows
CPU = torch.device("cpu")
PLENTY = 10 ** 12


def config_for(**options):
    return make_config(**{**dict(target_size=96, iterations=3, first_level_factor=1, tiling="exact", **SHALLOW),
                          **options})


def planner(device_budget, host=None, ram=PLENTY, maps=False, **options):
    config = config_for(**options)
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    memory = MemoryModel(layers, config.pooling, CPU, config.history_size, content_layers=config.content_layers)
    return Planner(config, memory, Budgets(device=device_budget, ram=ram, host=host, style=PLENTY),
                   halo(layers), maps, on_cpu=True)


def layout_budgets():
    model, context = planner(10 ** 9).memory, 16
    # Room for a 32 px core beside the level's buffers only without the content cache.
    without_cache = model.level_bytes(64, 96, False) + model.window_bytes(32, context) + 4096
    assert model.largest_core(64, 96, without_cache, context, True) == 16
    # Room for the smallest window, and nothing beside it.
    return without_cache, model.window_bytes(16, context) + 4096


def test_exact_layout_drops_the_content_cache_for_larger_cores():
    without_cache, _ = layout_budgets()
    (level,) = planner(without_cache).plan(64, 96)
    assert (level.mode, level.tile_size, level.cache_content, level.on_host) == ("exact", 32, False, False)
    assert planner(without_cache).exact_layout(64, 96) == ExactLayout(32, False, False, False)


def test_exact_layout_keeps_level_buffers_on_the_host_when_the_device_cannot():
    _, window_only = layout_budgets()
    with pytest.raises(LargestyleError, match="too small for exact tiling"):
        planner(window_only).plan(64, 96)
    (level,) = planner(window_only, host=10 ** 9).plan(64, 96)
    assert (level.mode, level.tile_size, level.cache_content, level.on_host) == ("exact", 16, True, True)
    assert level.tiled_bytes <= window_only  # the device holds one window, not the level
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(3, 64, 96, generator=generator), torch.rand(3, 32, 32, generator=generator)
    config = config_for(max_memory=window_only)
    on_host = Engine(config, budgets=Budgets(device=window_only, ram=PLENTY, host=10 ** 9, style=PLENTY))
    assert on_host.plan(64, 96)[0] == (level,)
    whole = Engine(dataclasses.replace(config, tiling="auto", max_memory=10 ** 9))
    assert float((on_host.render(content, style) - whole.render(content, style)).abs().max()) < 1 / 255


def test_plan_and_progress_say_where_the_level_lives():
    without_cache, window_only = layout_budgets()
    (level,) = planner(window_only, host=10 ** 9).plan(64, 96)
    assert "level buffers in host memory" in describe_level(level, 1)
    (level,) = planner(without_cache).plan(64, 96)
    assert "content targets recomputed" in describe_level(level, 1)


def test_content_cache_follows_the_content_layers():
    """relu4_2 caches 512 channels at stride 8 (32 B/px); relu2_1 128 at stride 2 (128 B/px)."""
    def model(*content_layers):
        return MemoryModel(("relu1_1", "relu2_1", "relu4_2"), "avg", CPU, 16, content_layers=content_layers)

    assert model("relu4_2").content_cache_per_pixel == 32
    assert model("relu2_1").content_cache_per_pixel == 128
    assert model("relu2_1", "relu4_2").content_cache_per_pixel == 160
    assert model("relu2_1").level_bytes(100, 100) - model("relu2_1").level_bytes(100, 100, False) == 128 * 10_000


def test_an_exact_plan_with_a_shallow_content_layer_stays_within_its_budget():
    """The cache of relu2_1 targets is four times relu4_2's: a plan that counted 32 B/px would overrun."""
    shallow = planner(PLENTY, target_size=512, content_layers=("relu2_1",), style_layers=("relu1_1", "relu3_1"))
    model = shallow.memory
    budget = model.level_bytes(300, 512) + model.window_bytes(96, shallow.context)
    (_, level) = planner(budget, target_size=512, content_layers=("relu2_1",),
                         style_layers=("relu1_1", "relu3_1")).plan(300, 512)
    assert level.mode == "exact" and level.cache_content
    assert level.tiled_bytes <= budget
    assert level.tiled_bytes == model.exact_bytes(300, 512, level.tile_size, shallow.context, True)


def test_shrink_halves_the_tiles_and_keeps_them_tiled_without_changing_the_planner():
    big = planner(PLENTY, tiling="blend", tile_size=64)
    (whole,) = big.plan(64, 96)
    assert whole.mode == "whole"  # it fits, so a --tile-size alone does not tile it
    smaller = big.shrink(whole)
    assert (smaller.mode, smaller.tile_size) == ("blend", 48)
    assert big.shrink(smaller) is None  # 24 px would be under the smallest blend tile
    assert big.plan(64, 96) == (whole,)  # no hidden state: the same plan as before


def test_no_pass_goes_past_32_bit_indexing_however_large_the_budget():
    from largestyle.engine.memory import MAX_PASS_PIXELS, MAX_PASS_SIDE

    # An 8192 x 4096 level fits a GPU's budget whole, but its conv1 activation would hold 2^31 elements.
    plenty = planner(PLENTY, target_size=8192, tiling="auto")
    whole_enough = plenty.memory.optimise_bytes(8192, 4096) < PLENTY
    level = plenty.level(0, 4096, 8192, 1, None)
    assert whole_enough and level.mode == "exact" and not plenty.memory.one_pass(4096, 8192)
    window = level.tile_size + 2 * plenty.context
    assert window * window <= MAX_PASS_PIXELS and window > MAX_PASS_SIDE - 2 * 16 - 16
    assert plenty.level(0, 4096, 4096, 1, None).mode == "whole"  # 2^24 pixels: one pass
    assert plenty.memory.largest_tile(4096, 8192, PLENTY) <= MAX_PASS_SIDE
    assert plenty.memory.largest_forward_core(PLENTY, 80) + 160 <= MAX_PASS_SIDE
