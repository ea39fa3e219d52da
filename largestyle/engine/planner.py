"""How each pyramid level will run: whole, or exact or blend tiles of a size that fits the budget.

A pure function of the settings, the memory model and the budgets: it loads no network and
keeps no state, so ``shrink`` (the out-of-memory retry) returns a new plan instead of
changing this one.
"""

from __future__ import annotations

import math
from typing import Sequence
from dataclasses import dataclass

from ..config.settings import RenderConfig
from ..config.validation import MIN_TILE
from ..core.errors import LargestyleError
from ..core.units import format_bytes
from ..core.vgg import GRID, MIN_SIDE
from ..geometry.pyramid import fit_long_side, level_shapes, output_frame, style_side
from ..geometry.tiling import BlendGrid, halo_tiles, shifts_for_passes
from .events import LevelPlan
from .memory import MemoryModel

# A forward pass's share of a forward+backward pass through VGG-19.
FORWARD_SHARE = 1 / 3


@dataclass(frozen=True)
class Budgets:
    """The bytes a render may use, each for its own purpose."""

    device: int  # optimising on the device (--max-memory, else a share of what is free)
    ram: int  # a level's own buffers in RAM (--max-ram); beyond it they go to mapped files
    host: int | None  # an exact level's buffers in host memory when the device cannot hold them; None on the CPU
    style: int  # the style image resized for the last level: RAM there is on the CPU, the device budget on a GPU


@dataclass(frozen=True)
class ExactLayout:
    """Where an exact-tiled level keeps its buffers, and its core size."""

    core: int  # core side in px, a multiple of the 16 px grid
    on_host: bool  # the level's image, gradient and L-BFGS history in host memory, windows on the device
    cache_content: bool  # content targets kept between evaluations, not recomputed
    mapped: bool  # the level's buffers in memory-mapped files


@dataclass(frozen=True)
class Planner:
    """Plans every level of a render on one device."""

    config: RenderConfig
    memory: MemoryModel
    budgets: Budgets
    context: int  # halo (px) a window needs for the layers read
    maps: bool  # whether the buffer store can keep buffers in files
    on_cpu: bool

    def plan(self, height: int, width: int, style_shapes: Sequence[tuple[int, int]] = ()) -> tuple[LevelPlan, ...]:
        """Each level's plan for content of height x width.

        With ``style_shapes`` (each style image's height, width) it also refuses a
        --style-scale whose resized style images would not fit.
        """
        cfg = self.config
        frame = output_frame(cfg, height, width)[0]
        for style_shape in style_shapes:  # one at a time: their Gram matrices are computed in turn
            self._check_style_scale(style_shape, *frame)
        plans = []
        for index, (h, w) in enumerate(level_shapes(*frame)):
            if min(h, w) < MIN_SIDE:
                raise LargestyleError(
                    f"pyramid level {index + 1} would be {w}x{h} px: VGG-19 needs at least {MIN_SIDE} px "
                    f"on the short side; raise {cfg.size_options} or crop the {width}x{height} content image")
            evaluations = cfg.iterations * (cfg.first_level_factor if index == 0 else 1)
            plans.append(self.level(index, h, w, evaluations, cfg.tile_size))
        return tuple(plans)

    def level(self, index: int, h: int, w: int, evaluations: int, tile: int | None,
              force_tiles: bool = False) -> LevelPlan:
        """Whole if it fits the budget (and ``force_tiles`` does not ask for tiles), else tiled."""
        need = self.memory.optimise_bytes(h, w)
        # On the CPU a whole level's L-BFGS buffers are in RAM, which --max-ram may cap.
        mapped = self._beyond_ram(self.memory.buffer_bytes(h, w))
        whole = LevelPlan(index=index, height=h, width=w, mode="whole", evaluations=evaluations,
                          estimated_bytes=need, work=evaluations * h * w, mapped=mapped)
        fits = need <= self.budgets.device and self.memory.one_pass(h, w)
        if fits and not (force_tiles and tile and tile < max(h, w)):
            return whole
        return self._exact(whole, tile) if self.tiling(h, w) == "exact" else self._blend(whole, tile)

    def shrink(self, level: LevelPlan) -> LevelPlan | None:
        """The level re-planned with tiles half as large, or None when they cannot shrink further."""
        tile = (level.tile_size or max(level.height, level.width)) // 2 // GRID * GRID
        if tile < (GRID if level.mode == "exact" else MIN_TILE):
            return None
        return self.level(level.index, level.height, level.width, level.evaluations, tile, force_tiles=True)

    def tiling(self, h: int, w: int) -> str:
        """The strategy for a level that needs tiling.

        auto takes exact whenever its whole-level buffers (image, gradient, L-BFGS history,
        content targets: about 490 bytes per pixel) leave room for a window: at the same
        number of evaluations it reached a 10x lower loss than blend, seam-free
        (bench/bench_tiling.py). Blend keeps only about 100 bytes per pixel of the level,
        so it remains the fallback for levels too large for that.

        Exact with its buffers in memory-mapped files is never chosen by auto: every
        iteration streams the whole L-BFGS history, which from disk is far slower than
        blend, whose canvases are touched a tile at a time.
        """
        if self.config.tiling != "auto":
            return self.config.tiling
        return "exact" if self.exact_layout(h, w, allow_mapped=False) is not None else "blend"

    def _beyond_ram(self, level_bytes: int) -> bool:
        """Whether buffers of this size go to memory-mapped files: on the CPU, past --max-ram, with a store that maps."""
        return self.maps and self.on_cpu and level_bytes > self.budgets.ram

    def _check_style_scale(self, style_shape: tuple[int, int], height: int, width: int) -> None:
        """The last level resizes the style image to --style-scale x its long side, whole, on the device."""
        shape = fit_long_side(*style_shape, style_side(self.config, height, width))
        need, limit = self.memory.style_image_bytes(*shape), self.budgets.style
        # Tiles never cut the style image itself: on the CPU it must fit in the RAM there is (--max-ram
        # only decides what goes to files), on a GPU in the device's budget.
        if need > limit:
            scale = self.config.style_scale * (limit / need) ** 0.5
            raise LargestyleError(
                f"--style-scale {self.config.style_scale:g} makes the style image {shape[1]}x{shape[0]} px at the "
                f"last level, which needs {format_bytes(need)}, more than the {format_bytes(limit)} "
                f"{'of RAM available' if self.on_cpu else 'memory budget'}; lower --style-scale to at most "
                f"{math.floor(scale * 100) / 100:g}" + ("" if self.on_cpu else " (or raise --max-memory)"))

    def exact_layout(self, h: int, w: int, core: int | None = None, allow_mapped: bool = True) -> ExactLayout | None:
        """Where an exact level's buffers go and its core size, or None if no window fits.

        On the device if the level's buffers fit there beside a window (on the CPU, also
        within --max-ram), else in host memory (windows move to the device and their
        gradients back), else in memory-mapped files. Within that, the content cache is
        kept or dropped, whichever gives less work: recomputing the targets costs about
        1.3x per evaluation (bench/bench_exact.py) but frees the cache's bytes per pixel,
        which can buy larger cores and so less halo overhead. Mapped levels recompute them.
        """
        placements = [(None, False)] + ([(self.budgets.host, False)] if self.budgets.host else []) + (
            [(None, True)] if self.maps and allow_mapped else [])
        for host, mapped in placements:
            layouts = [layout for cache in ((False,) if mapped else (True, False))
                       if (layout := self._fitting_layout(h, w, core, host, mapped, cache)) is not None]
            if layouts:
                return min(layouts, key=lambda layout: self.exact_work(h, w, layout.core, layout.cache_content))
        # An explicit core larger than anything that fits: honoured, with a warning at the start.
        if core is None:
            return None
        mapped = allow_mapped and self._beyond_ram(self.memory.level_bytes(h, w))
        return ExactLayout(core, False, not mapped, mapped)

    def _fitting_layout(self, h: int, w: int, core: int | None, host: int | None, mapped: bool,
                        cache: bool) -> ExactLayout | None:
        if host is None and not mapped and self.on_cpu and self.memory.level_bytes(h, w, cache) > self.budgets.ram:
            return None
        fitting = self.memory.largest_core(h, w, self.budgets.device, self.context, cache, host, mapped)
        if fitting is None or (core is not None and core > fitting):
            return None
        return ExactLayout(core or fitting, host is not None, cache, mapped)

    def exact_work(self, h: int, w: int, core: int, cache_content: bool) -> float:
        """Pixels through the network per evaluation, in forward+backward units.

        Pass 1 is a forward pass alone, about a third of a forward+backward; recomputing
        the content targets adds another forward pass (to relu4_2, counted whole).
        """
        windows = sum((b - t) * (r - l) for t, l, b, r in (tile.window for tile in halo_tiles(
            h, w, core, self.context)))
        return windows * (1 + FORWARD_SHARE * (1 if cache_content else 2))

    def _blend(self, whole: LevelPlan, tile: int | None) -> LevelPlan:
        h, w, model = whole.height, whole.width, self.memory
        # On the CPU the canvases are in RAM, within --max-ram unless they can go to files;
        # on an accelerator they stay on the device, within its budget.
        mapped = self._beyond_ram(model.canvas_bytes(h, w))
        tile = tile or model.largest_tile(h, w, self.budgets.device, mapped=mapped)
        if tile is None:
            raise LargestyleError(
                f"memory budget {format_bytes(self.budgets.device)} is too small to tile a {w}x{h} level: "
                f"even {MIN_TILE} px tiles need {format_bytes(model.tiled_bytes(h, w, MIN_TILE, mapped))}; "
                f"raise --max-memory or lower {self.config.size_options}")
        grids = [BlendGrid.plan(h, w, tile, shift) for shift in shifts_for_passes(tile, self.config.passes)]
        if len(grids[0].tiles) == 1:
            return whole
        return LevelPlan(
            index=whole.index, height=h, width=w, mode="blend", evaluations=whole.evaluations,
            estimated_bytes=whole.estimated_bytes,
            work=whole.evaluations * sum(grid.pixels_per_pass() for grid in grids), tile_size=tile,
            grid=(len(grids[0].rows.starts), len(grids[0].cols.starts)),
            tiles_per_pass=tuple(len(grid.tiles) for grid in grids),
            tiled_bytes=model.tiled_bytes(h, w, tile, mapped), mapped=mapped)

    def _exact(self, whole: LevelPlan, core: int | None) -> LevelPlan:
        h, w = whole.height, whole.width
        layout = self.exact_layout(h, w, core)
        if layout is None:
            raise LargestyleError(
                f"memory budget {format_bytes(self.budgets.device)} is too small for exact tiling of a {w}x{h} "
                f"level: even {GRID} px cores need "
                f"{format_bytes(self.memory.exact_bytes(h, w, GRID, self.context, False))}; "
                f"raise --max-memory or lower {self.config.size_options}")
        tiles = halo_tiles(h, w, layout.core, self.context)
        if len(tiles) == 1:
            return whole
        work = round(whole.evaluations * self.exact_work(h, w, layout.core, layout.cache_content))
        return LevelPlan(
            index=whole.index, height=h, width=w, mode="exact", evaluations=whole.evaluations,
            estimated_bytes=whole.estimated_bytes, work=work, tile_size=layout.core,
            grid=(-(-h // layout.core), -(-w // layout.core)), tiles_per_pass=(len(tiles),),
            tiled_bytes=self.memory.exact_bytes(h, w, layout.core, self.context, layout.cache_content,
                                                layout.on_host, layout.mapped),
            on_host=layout.on_host, cache_content=layout.cache_content, mapped=layout.mapped)
