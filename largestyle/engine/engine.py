"""Runs the pyramid: plans each level, optimises it whole or in blended tiles.

Takes and returns tensors, reports through typed events, never prints.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable

import torch

from . import events as ev
from ..config.settings import DEFAULT_LOSS_WEIGHTS, MIN_TILE, RenderConfig
from ..core.units import format_bytes
from ..core.errors import LargestyleError
from ..network.vgg import VGG19Features
from ..core.vgg import deepest_of, halo
from .memory import MemoryModel, is_out_of_memory, memory_budget, resolve_device
from ..gatys.objective import Objective, content_targets, style_targets
from ..gatys.lbfgs import LbfgsState, NonFiniteLoss, minimize
from .buffers import Canvases
from .checkpoints import CheckpointPolicy, Checkpoints, RenderInterrupted
from ..geometry.pyramid import crop, fit_long_side, fit_short_side, level_shapes, output_frame, resize, style_side
from ..gatys.windowed import TiledObjective
from ..geometry.tiling import BlendAccumulator, BlendGrid, halo_tiles, shifts_for_passes
from ..network.flavours import FLAVOURS
from ..network.weights import RANDOM_WEIGHTS_WARNING, load_network

# A forward pass's share of a forward+backward pass through VGG-19.
FORWARD_SHARE = 1 / 3
# VGG-19's four poolings need at least 16 px on every side of what the network sees.
MIN_SIDE = 16


def _batch(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) float image -> (1, 3, H, W)."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected a (3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    return image.float()


class Engine:
    """One render's configuration, device and network; ``render`` runs it."""

    def __init__(self, config: RenderConfig, callback: ev.Callback | None = None,
                 network: VGG19Features | None = None, checkpoints: Checkpoints | None = None,
                 should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None,
                 canvases: Canvases | None = None):
        self.config = config
        self.checkpoints = checkpoints or Checkpoints()  # by default, keeps nothing
        self.canvases = canvases or Canvases()  # by default, in RAM only
        self.should_stop = should_stop or (lambda: False)
        self.policy = policy or CheckpointPolicy()
        self.device = resolve_device(config.device)
        self.emit = callback or (lambda event: None)
        self.layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
        self.weights_info = None
        self._network = network
        self._forced = set()  # levels tiled after running out of memory, even if the estimate fits

    @property
    def network(self) -> VGG19Features:
        if self._network is None:
            network, self.weights_info = load_network(
                self.config.weights, deepest_of(self.layers), self.config.pooling, self.config.weights_format)
            flavour = FLAVOURS[self.weights_info.flavour]
            self.config = self.config.with_loss_defaults(
                flavour.content_weight, flavour.style_weight, flavour.tv_weight)
            self._network = network
        return self._network.to(self.device)

    @functools.cached_property
    def memory(self) -> MemoryModel:
        return MemoryModel(self.layers, self.config.pooling, self.device, self.config.history_size)

    @functools.cached_property
    def budget(self) -> int:
        return memory_budget(self.device, self.config.max_memory)

    @functools.cached_property
    def ram_budget(self) -> int:
        """RAM for a level's own buffers; beyond it they go to memory-mapped files (if the store has files)."""
        return memory_budget(torch.device("cpu"), self.config.max_ram)

    def plan(self, height: int, width: int,
             style_shape: tuple[int, int] | None = None) -> tuple[tuple[ev.LevelPlan, ...], int]:
        """Each level's plan for content of height x width, and the memory budget used.

        With ``style_shape`` (the style image's height, width) it also refuses a
        --style-scale whose resized style image would not fit the budget.
        """
        cfg = self.config
        if style_shape is not None:
            self._check_style_scale(style_shape, *output_frame(cfg, height, width)[0])
        plans = []
        for index, (h, w) in enumerate(level_shapes(*output_frame(cfg, height, width)[0])):
            if min(h, w) < MIN_SIDE:
                raise LargestyleError(
                    f"pyramid level {index + 1} would be {w}x{h} px: VGG-19 needs at least {MIN_SIDE} px "
                    f"on the short side; raise {cfg.size_options} or crop the {width}x{height} content image")
            evaluations = cfg.iterations * (cfg.first_level_factor if index == 0 else 1)
            plans.append(self._plan_level(index, h, w, evaluations, cfg.tile_size))
        return tuple(plans), self.budget

    def _check_style_scale(self, style_shape: tuple[int, int], height: int, width: int) -> None:
        """The last level resizes the style image to --style-scale x its long side, whole, on the device."""
        shape = fit_long_side(*style_shape, style_side(self.config, height, width))
        need = self.memory.style_image_bytes(*shape)
        # Tiles never cut the style image itself: on the CPU it must fit in the RAM there is (--max-ram
        # only decides what goes to files), on a GPU in the device's budget.
        cpu = self.device.type == "cpu"
        limit = memory_budget(self.device) if cpu else self.budget
        if need > limit:
            scale = self.config.style_scale * (limit / need) ** 0.5
            raise LargestyleError(
                f"--style-scale {self.config.style_scale:g} makes the style image {shape[1]}x{shape[0]} px at the "
                f"last level, which needs {format_bytes(need)}, more than the {format_bytes(limit)} "
                f"{'of RAM available' if cpu else 'memory budget'}; lower --style-scale to at most "
                f"{math.floor(scale * 100) / 100:g}" + ("" if cpu else " (or raise --max-memory)"))

    def _plan_level(self, index: int, h: int, w: int, evaluations: int, tile: int | None) -> ev.LevelPlan:
        """Whole if it fits the budget (and no smaller tile is forced), else tiled."""
        need = self.memory.optimise_bytes(h, w)
        # On the CPU a whole level's L-BFGS buffers are in RAM, which --max-ram may cap.
        mapped = self._beyond_ram(self.memory.buffer_bytes(h, w))
        whole = ev.LevelPlan(index, h, w, "whole", evaluations, need, evaluations * h * w, mapped=mapped)
        if need <= self.budget and not (tile and tile < max(h, w) and index in self._forced):
            return whole
        return self._plan_exact(whole, tile) if self._tiling(h, w) == "exact" else self._plan_blend(whole, tile)

    def _tiling(self, h: int, w: int) -> str:
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
        return "exact" if self._exact_layout(h, w, allow_mapped=False) is not None else "blend"

    def _beyond_ram(self, level_bytes: int) -> bool:
        """Whether buffers of this size go to memory-mapped files: on the CPU, past --max-ram, with a store that maps."""
        return self.canvases.maps and self.device.type == "cpu" and level_bytes > self.ram_budget

    @functools.cached_property
    def host_budget(self) -> int | None:
        """Host memory for an exact level's buffers when the device cannot hold them; None on the CPU."""
        return None if self.device.type == "cpu" else self.ram_budget

    def _exact_layout(self, h: int, w: int, core: int | None = None,
                      allow_mapped: bool = True) -> tuple[int, bool, bool, bool] | None:
        """(core, buffers on the host, content targets cached, buffers mapped) for an exact level, or None.

        On the device if the level's buffers fit there beside a window (on the CPU, also
        within --max-ram), else in host memory (windows move to the device and their
        gradients back), else in memory-mapped files. Within that, the content cache is
        kept or dropped, whichever gives less work: recomputing the targets costs about
        1.3x per evaluation (bench/bench_exact.py) but frees 32 bytes per pixel, which can
        buy larger cores and so less halo overhead. Mapped levels recompute them.
        """
        context = halo(self.layers)
        placements = [(None, False)] + ([(self.host_budget, False)] if self.host_budget else []) + (
            [(None, True)] if self.canvases.maps and allow_mapped else [])
        for host, mapped in placements:
            layouts = []
            for cache in (False,) if mapped else (True, False):
                if host is None and not mapped and self.device.type == "cpu" and \
                        self.memory.level_bytes(h, w, cache) > self.ram_budget:
                    continue
                fitting = self.memory.largest_core(h, w, self.budget, context, cache, host, mapped)
                if fitting is not None and (core is None or core <= fitting):
                    layouts.append((core or fitting, host is not None, cache, mapped))
            if layouts:
                return min(layouts, key=lambda layout: self._exact_work(h, w, layout[0], layout[2]))
        # An explicit core larger than anything that fits: honoured, with a warning at the start.
        if core is None:
            return None
        mapped = allow_mapped and self._beyond_ram(self.memory.level_bytes(h, w))
        return core, False, not mapped, mapped

    def _exact_work(self, h: int, w: int, core: int, cache_content: bool) -> float:
        """Pixels through the network per evaluation, in forward+backward units.

        Pass 1 is a forward pass alone, about a third of a forward+backward; recomputing
        the content targets adds another forward pass (to relu4_2, counted whole).
        """
        windows = sum((b - t) * (r - l) for t, l, b, r in (tile.window for tile in halo_tiles(
            h, w, core, halo(self.layers))))
        return windows * (1 + FORWARD_SHARE * (1 if cache_content else 2))

    def _plan_blend(self, whole: ev.LevelPlan, tile: int | None) -> ev.LevelPlan:
        h, w, model = whole.height, whole.width, self.memory
        # On the CPU the canvases are in RAM, within --max-ram unless they can go to files;
        # on an accelerator they stay on the device, within its budget.
        mapped = self._beyond_ram(model.canvas_bytes(h, w))
        tile = tile or model.largest_tile(h, w, self.budget, mapped=mapped)
        if tile is None:
            raise LargestyleError(
                f"memory budget {format_bytes(self.budget)} is too small to tile a {w}x{h} level: "
                f"even {MIN_TILE} px tiles need {format_bytes(model.tiled_bytes(h, w, MIN_TILE, mapped))}; "
                f"raise --max-memory or lower {self.config.size_options}")
        grids = [BlendGrid.plan(h, w, tile, shift) for shift in shifts_for_passes(tile, self.config.passes)]
        if len(grids[0].tiles) == 1:
            return whole
        return ev.LevelPlan(
            whole.index, h, w, "blend", whole.evaluations, whole.estimated_bytes,
            whole.evaluations * sum(grid.pixels_per_pass() for grid in grids), tile,
            (len(grids[0].rows.starts), len(grids[0].cols.starts)),
            tuple(len(grid.tiles) for grid in grids), model.tiled_bytes(h, w, tile, mapped), mapped=mapped)

    def _plan_exact(self, whole: ev.LevelPlan, core: int | None) -> ev.LevelPlan:
        h, w = whole.height, whole.width
        context = halo(self.layers)
        layout = self._exact_layout(h, w, core)
        if layout is None:
            raise LargestyleError(
                f"memory budget {format_bytes(self.budget)} is too small for exact tiling of a {w}x{h} level: "
                f"even 16 px cores need {format_bytes(self.memory.exact_bytes(h, w, 16, context, False))}; "
                f"raise --max-memory or lower {self.config.size_options}")
        core, on_host, cache, mapped = layout
        tiles = halo_tiles(h, w, core, context)
        if len(tiles) == 1:
            return whole
        work = round(whole.evaluations * self._exact_work(h, w, core, cache))
        return ev.LevelPlan(whole.index, h, w, "exact", whole.evaluations, whole.estimated_bytes, work, core,
                            (-(-h // core), -(-w // core)), (len(tiles),),
                            self.memory.exact_bytes(h, w, core, context, cache, on_host, mapped), on_host, cache,
                            mapped)

    def _smaller(self, level: ev.LevelPlan) -> ev.LevelPlan | None:
        """The level re-planned with tiles half as large, or None when they cannot shrink further."""
        tile = (level.tile_size or max(level.height, level.width)) // 2 // 16 * 16
        if tile < (16 if level.mode == "exact" else MIN_TILE):
            return None
        self._forced.add(level.index)
        return self._plan_level(level.index, level.height, level.width, level.evaluations, tile)

    def render(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Stylise ``content`` ((3, H, W) RGB in [0, 1]) after ``style``; returns (3, h, w) on the CPU.

        The output's long side is ``config.target_size``, its aspect ratio the content's.
        With checkpoints, finished levels and in-level progress are saved as it goes, and
        a render given the same checkpoints continues where they stop, bit for bit.
        """
        started = time.perf_counter()
        content, style = _batch(content).to(self.device), _batch(style).to(self.device)
        (height, width), box = output_frame(self.config, *content.shape[-2:])
        levels, budget = self._resumable_plan(*content.shape[-2:], style.shape[-2:])  # first: it may refuse
        content = crop(content, box)
        network = self.network
        info = self.weights_info
        if info is not None and info.is_random and self.config.weights != "random":
            self.emit(ev.Notice("random-weights", RANDOM_WEIGHTS_WARNING))
        for level in levels:
            if level.tiled_bytes and level.tiled_bytes > budget:
                self.emit(ev.Notice("tile-over-budget", (
                    f"level {level.index + 1}: {level.tile_size} px tiles need about "
                    f"{format_bytes(level.tiled_bytes)}, more than the {format_bytes(budget)} budget; "
                    "a smaller --tile-size (or none, to size tiles from the budget) is safer")))
        needed = style_side(self.config, height, width)
        if max(style.shape[-2:]) < needed:
            self.emit(ev.Notice("style-upscaled", (
                f"the style image is {style.shape[-1]}x{style.shape[-2]} px; at --style-scale "
                f"{self.config.style_scale:g} the {width}x{height} px output needs it {needed} px on the long "
                f"side, so its texture is enlarged {needed / max(style.shape[-2:]):.1f}x and will look blurry; "
                f"use a style image of at least {needed} px, or a lower --style-scale")))
        self.config = self.config.with_loss_defaults(*DEFAULT_LOSS_WEIGHTS)  # a network given by the caller
        cfg = self.config
        self.emit(ev.RenderStarted(levels, str(self.device), budget, info.flavour if info else "given",
                                   info and info.path, info and info.sha256, info and info.chosen_by,
                                   (cfg.content_weight, cfg.style_weight, cfg.tv_weight)))
        image, used = None, 0
        for position, level in enumerate(levels):
            finished = self.checkpoints.load(f"level-{level.index + 1}")
            if finished is not None:
                image = finished.to(self.device)
                used += level.total_evaluations
                self.emit(ev.Resumed(level.index, level.total_evaluations, level.work))
                continue
            self._stop_if_asked(f"before level {level.index + 1}")
            level_started = time.perf_counter()
            self.emit(ev.LevelStarted(level, len(levels)))
            level_content = resize(content, (level.height, level.width))
            targets = self._style_targets(network, style, level)
            start = self._start(image, level_content, level)
            while True:
                try:
                    image, n = self._run_level(network, start, level_content, targets, level)
                    break
                except (MemoryError, RuntimeError) as exc:
                    smaller = self._smaller(level) if is_out_of_memory(exc) else None
                    if smaller is None:
                        raise
                    self.emit(ev.Notice("out-of-memory", (
                        f"level {level.index + 1}: out of memory with "
                        f"{f'{level.tile_size} px tiles' if level.tile_size else 'the whole level'}; "
                        f"retrying with {smaller.tile_size} px {smaller.mode} tiles")))
                    level = smaller
                    levels = levels[:position] + (level,) + levels[position + 1:]
                    self._save_plan(levels, budget)  # a resume keeps the smaller tiles
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
            used += n
            self.canvases.release()
            self.checkpoints.finished_level(level.index + 1, image)
            self.checkpoints.discard(f"level-{level.index + 1}-progress")
            self.emit(ev.LevelFinished(level.index, time.perf_counter() - level_started))
        self.emit(ev.RenderFinished(time.perf_counter() - started, used))
        return image[0].cpu()

    def _resumable_plan(self, height: int, width: int,
                        style_shape: tuple[int, int]) -> tuple[tuple[ev.LevelPlan, ...], int]:
        """The saved plan if there is one (a resume must tile exactly as before), else a new one, saved."""
        saved = self.checkpoints.load("plan")
        if saved is not None:
            return tuple(ev.LevelPlan.from_plain(level) for level in saved["levels"]), saved["budget"]
        levels, budget = self.plan(height, width, tuple(style_shape))
        self._save_plan(levels, budget)
        return levels, budget

    def _save_plan(self, levels, budget: int) -> None:
        self.checkpoints.save("plan", {"levels": [level.to_plain() for level in levels], "budget": budget})

    def _stop_if_asked(self, where: str) -> None:
        if self.should_stop():
            raise RenderInterrupted(f"stopped {where}")

    def _progress(self, level: ev.LevelPlan) -> dict | None:
        """The level's saved in-level progress, if it was made with this same plan."""
        progress = self.checkpoints.load(f"level-{level.index + 1}-progress")
        if progress is None or ev.LevelPlan.from_plain(progress["plan"]) != level:
            return None
        return progress

    def _save_progress(self, level: ev.LevelPlan, **progress) -> None:
        self.checkpoints.save(f"level-{level.index + 1}-progress", {"plan": level.to_plain(), **progress})

    def _run_level(self, network, start, content, targets, level: ev.LevelPlan):
        if level.mode == "whole":
            return self._optimise(network, start, content, targets, level)
        if level.mode == "exact":
            return self._exact(network, start, content, targets, level)
        return self._blend(network, start, content, targets, level)

    def _exact(self, network, start, content, targets, level: ev.LevelPlan):
        if level.on_host or level.mapped:  # windows travel to the device; the level's buffers stay on the host
            start, content = start.cpu(), content.cpu()
        objective = TiledObjective(network, self.config, content, targets, level.tile_size,
                                   cache_content=level.cache_content)
        image, used = self._whole_level(objective, start, level)
        return image.to(self.device), used

    def _style_targets(self, network, style, level: ev.LevelPlan):
        shape = fit_long_side(*style.shape[-2:], round(max(level.height, level.width) * self.config.style_scale))
        if min(shape) < MIN_SIDE:  # a small --style-scale or a thin style image: enlarge to what VGG needs
            shape = fit_short_side(*style.shape[-2:], MIN_SIDE)
        resized = resize(style, shape)
        core = None
        if self.memory.forward_bytes(*resized.shape[-2:]) > self.budget:
            # Too large for one forward pass: sum the Gram matrices over windows that fit.
            core = self.memory.largest_forward_core(self.budget, halo(self.config.style_layers))
        return style_targets(network, resized, self.config.style_layers, core)

    def _start(self, previous, level_content, level: ev.LevelPlan) -> torch.Tensor:
        if previous is not None:
            return resize(previous, (level.height, level.width))
        if self.config.init == "noise":
            generator = torch.Generator().manual_seed(self.config.seed)
            return torch.rand(level_content.shape, generator=generator).to(self.device)
        return level_content.clone()

    def _optimise(self, network, start, content, style_targets_, level: ev.LevelPlan):
        """The whole level in one piece."""
        return self._whole_level(self._objective(network, content, style_targets_), start, level)

    def _objective(self, network, content, style_targets_) -> Objective:
        return Objective(network, self.config, content_targets(network, content, self.config.content_layers),
                         style_targets_)

    def _whole_level(self, objective, start, level: ev.LevelPlan):
        """One L-BFGS over the level, resuming from and saving its in-level progress."""
        progress = self._progress(level)
        state = progress and LbfgsState.from_plain(progress["lbfgs"]).to(start.device)
        if state is not None:
            self.emit(ev.Resumed(level.index, state.used, state.used * level.work // level.evaluations))

        def save(lbfgs: LbfgsState) -> None:
            self._save_progress(level, lbfgs=lbfgs.to_plain())

        return self._minimize(objective, start, level, state=state, save=save,
                              allocate=self._mapped_like if level.mapped else None)

    def _mapped_like(self, like: torch.Tensor) -> torch.Tensor:
        return self._mapped_shape(like.shape, like.dtype)

    def _mapped_shape(self, shape, dtype: torch.dtype) -> torch.Tensor:
        return self.canvases.empty(shape, dtype, "cpu", mapped=True)

    def _minimize(self, objective, start, level: ev.LevelPlan, pass_index: int = 0, tile: int = 0,
                  state: LbfgsState | None = None, save=None, allocate=None):
        """L-BFGS with progress events; at iteration boundaries ``save`` gets the state when due, or on a stop."""
        work = level.work // level.total_evaluations  # per evaluation, for progress and ETA
        where = f"level {level.index + 1}" + (f" pass {pass_index + 1} tile {tile + 1}" if level.mode == "blend" else "")

        def on_evaluation(count, terms):
            self.emit(ev.Evaluation(level.index, count, level.evaluations, terms, work, pass_index, tile))

        def on_iteration(snapshot):
            stopping = self.should_stop()
            if stopping or self.policy.due(snapshot().used):
                save(snapshot())
                self.policy.saved(snapshot().used)
            if stopping:
                raise RenderInterrupted(f"stopped at {where}, evaluation {snapshot().used}")

        try:
            result, terms, used = minimize(objective.value_and_grad, start, level.evaluations,
                                           self.config.history_size, on_evaluation, state,
                                           on_iteration if save is not None else None, allocate)
        except NonFiniteLoss as exc:
            raise LargestyleError(self._non_finite(exc, where)) from None
        self.emit(ev.OptimisationFinished(level.index, used, level.evaluations - used, terms, work,
                                          pass_index, tile))
        return result.clamp(0, 1), used

    def _non_finite(self, exc: NonFiniteLoss, where: str) -> str:
        """Which loss term broke, and the option that tames it."""
        terms, cfg = exc.terms, self.config
        weights = {"content": cfg.content_weight, "style": cfg.style_weight, "tv": cfg.tv_weight}
        broken = [name for name in weights if not math.isfinite(getattr(terms, name))]
        term = broken[0] if broken else max(weights, key=lambda name: abs(getattr(terms, name)))
        what = "its gradient" if exc.gradient and not broken else f"the {term} loss"
        return (f"{what} became {'NaN or infinite' if not broken else getattr(terms, term)} at {where}, evaluation "
                f"{exc.used} (--{term}-weight {weights[term]:g}); lower --{term}-weight and run with --restart. "
                "The checkpoints before it are kept")

    def _blend(self, network, image, content, style_targets_, level: ev.LevelPlan):
        """Jacobi-style passes: every tile of a pass starts from the previous pass's canvas.

        Progress is saved after every tile (the pass's starting image, the accumulated
        tiles) and, within a tile, as for a whole level.
        """
        progress = self._progress(level) or {}
        used = progress.get("used", 0)  # evaluations of the finished tiles
        if progress:
            image = progress["image"].to(self.device)
            restored = used + (progress["lbfgs"]["used"] if progress.get("lbfgs") else 0)
            self.emit(ev.Resumed(level.index, restored, restored * level.work // level.total_evaluations))
        for pass_index, shift in enumerate(shifts_for_passes(level.tile_size, level.passes)):
            if pass_index < progress.get("pass", 0):
                continue
            grid = BlendGrid.plan(level.height, level.width, level.tile_size, shift)
            canvas, padded_content = grid.pad(image), grid.pad(content)
            if level.mapped:  # the pass's canvases to files; tiles are cut from them as needed
                self.canvases.release()
                canvas, padded_content = (self.canvases.copy_of(canvas, mapped=True),
                                          self.canvases.copy_of(padded_content, mapped=True))
            accumulator = BlendAccumulator(grid, channels=3, device=self.device,
                                           allocate=self._mapped_shape if level.mapped else None)
            if progress.get("pass") == pass_index:
                accumulator.restore({k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                                     for k, v in progress["accumulator"].items()})

            def save_tile(tile_index, lbfgs=None):
                self._save_progress(level, used=used, image=image, **{"pass": pass_index},
                                    accumulator=accumulator.state(), tile=tile_index,
                                    lbfgs=lbfgs and lbfgs.to_plain())

            done = set(accumulator.state()["seen"])
            for tile in grid.tiles:
                if tile.index in done:
                    continue
                self.emit(ev.TileStarted(level.index, pass_index, level.passes, tile.index, len(grid.tiles)))
                resumed = progress.get("lbfgs") if progress.get("tile") == tile.index and \
                    progress.get("pass") == pass_index else None
                state = resumed and LbfgsState.from_plain(resumed).to(self.device)
                objective = self._objective(network, grid.cut(padded_content, tile), style_targets_)
                result, n = self._minimize(objective, grid.cut(canvas, tile), level, pass_index, tile.index,
                                           state, functools.partial(save_tile, tile.index))
                accumulator.add(tile, result)
                used += n  # a resumed tile's count includes its evaluations before the resume
                save_tile(None)
                self._stop_if_asked(f"at level {level.index + 1} pass {pass_index + 1} after tile {tile.index + 1}")
            image = accumulator.result()
        return image, used
