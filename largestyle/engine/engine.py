"""Runs the pyramid: plans (or restores the plan of) every level, runs each, retries one that runs out of memory.

Takes and returns tensors, reports through typed events, never prints. What happens
inside a level belongs to the method (``method``) and the level runners (``runners``,
``blend``); where each level runs, to the planner (``planner``).
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Sequence

import torch

from . import events as ev
from ..config.settings import RenderConfig
from ..core.transfer import to_device, to_host
from ..core.vgg import halo
from ..gatys.method import GatysMethod
from ..geometry.pyramid import crop, output_frame, resize
from ..imaging.colours import match_colours
from ..io.inputs import style_sources
from ..network.vgg import VGG19Features
from .blend import run_blend
from .buffers import LevelBuffers
from .checkpoints import CheckpointPolicy, Checkpoints, RenderInterrupted
from .memory import MemoryModel, is_out_of_memory, memory_budget, resolve_device
from .method import Method
from .notices import render_notices
from .planner import Budgets, Planner
from .records import PLAN_KEY, SavedPlan, finished_key, progress_key
from .runners import LevelContext, run_exact, run_whole

RUNNERS = {"whole": run_whole, "exact": run_exact, "blend": run_blend}


def _batch(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) float image -> (1, 3, H, W)."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected a (3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    return image.float()


class Engine:
    """One render's configuration, device and method; ``render`` runs it.

    ``budgets`` default to --max-memory, --max-ram and what the device has. The method (Gatys optimisation unless one is given) loads its network and resolves
    its loss weights once, on first use; the config is never rewritten.
    """

    def __init__(self, config: RenderConfig, callback: ev.Callback | None = None,
                 network: VGG19Features | None = None, checkpoints: Checkpoints | None = None,
                 should_stop: Callable[[], bool] | None = None, policy: CheckpointPolicy | None = None,
                 buffers: LevelBuffers | None = None, method: Method | None = None,
                 budgets: Budgets | None = None):
        self.config = config
        self.method = method or GatysMethod(config, network)
        self.checkpoints = checkpoints or Checkpoints()  # by default, keeps nothing
        self.buffers = buffers or LevelBuffers()  # by default, in RAM only
        self.should_stop = should_stop or (lambda: False)
        self.policy = policy or CheckpointPolicy()
        self.device = resolve_device(config.device)
        self.emit = callback or (lambda event: None)
        self.layers = self.method.layers
        if budgets is not None:  # e.g. a host budget beside the device's, as on an accelerator
            self.budgets = budgets

    def prepare(self) -> Method:
        """The method with its network loaded and loss weights resolved (done once)."""
        self.method.prepare(self.device)
        return self.method

    @property
    def network(self) -> VGG19Features:
        return self.prepare().network

    @property
    def weights_info(self):
        return self.method.weights_info

    @functools.cached_property
    def memory(self) -> MemoryModel:
        return MemoryModel(self.layers, self.config.pooling, self.device, self.config.history_size,
                           content_layers=self.method.content_layers, compute_dtype=self.config.compute_dtype)

    @functools.cached_property
    def budgets(self) -> Budgets:
        cpu = self.device.type == "cpu"
        device = memory_budget(self.device, self.config.max_memory)
        ram = memory_budget(torch.device("cpu"), self.config.max_ram)
        return Budgets(device=device, ram=ram, host=None if cpu else ram,
                       style=memory_budget(self.device) if cpu else device)

    @property
    def planner(self) -> Planner:
        return Planner(self.config, self.memory, self.budgets, halo(self.layers), self.buffers.maps,
                       self.device.type == "cpu")

    def plan(self, height: int, width: int,
             style_shapes: Sequence[tuple[int, int]] = ()) -> tuple[tuple[ev.LevelPlan, ...], int]:
        """Each level's plan for content of height x width, and the memory budget used."""
        return self.planner.plan(height, width, style_shapes), self.budgets.device

    def render(self, content: torch.Tensor, style: torch.Tensor | Sequence[torch.Tensor],
               init: torch.Tensor | None = None) -> torch.Tensor:
        """Stylise ``content`` ((3, H, W) RGB in [0, 1]) after ``style``; returns (3, h, w) on the CPU.

        ``style`` is one image or several, blended by --style-blend. ``init`` (an RGB image
        of any size, e.g. an earlier render) is the first level's start,
        resized to it; without it the config's --init (content or noise) decides.

        The output's long side is ``config.target_size``, its aspect ratio the content's.
        With checkpoints, finished levels and in-level progress are saved as it goes, and
        a render given the same checkpoints continues where they stop, bit for bit.
        """
        started = time.perf_counter()
        content = to_device(_batch(content), self.device)
        styles = tuple(to_device(_batch(image), self.device) for image in style_sources(style))
        self.config.blend_weights(len(styles))  # one --style-blend weight per style
        (height, width), box = output_frame(self.config, *content.shape[-2:])
        shapes = [tuple(image.shape[-2:]) for image in styles]
        levels, budget = self._resumable_plan(*content.shape[-2:], shapes)  # first: it may refuse
        content = crop(content, box)
        if self.config.preserve_colors == "histogram":  # the styles' colours made the (cropped) content's
            styles = tuple(match_colours(image, content) for image in styles)
        method = self.prepare()
        self._announce(levels, budget, shapes, height, width)
        image, used = None, 0
        init = None if init is None else to_device(_batch(init), self.device)
        for position, level in enumerate(levels):
            finished = self.checkpoints.load(finished_key(level.index))
            if finished is not None:
                image = to_device(finished, self.device)
                used += level.total_evaluations
                self.emit(ev.Resumed(level.index, level.total_evaluations, level.work))
                continue
            if self.should_stop():
                raise RenderInterrupted(f"stopped before level {level.index + 1}")
            level_started = time.perf_counter()
            self.emit(ev.LevelStarted(level, len(levels)))
            level_content = resize(content, (level.height, level.width))
            targets = method.level_targets(styles, level, self.memory, budget)
            image, n, levels = self._run_level(levels, position, budget, level_content, targets,
                                               self._start(image if image is not None else init, level_content,
                                                           level))
            used += n
            self.buffers.release()
            self.checkpoints.finished_level(level.index + 1, image)
            self.checkpoints.discard(progress_key(level.index))
            self.emit(ev.LevelFinished(level.index, time.perf_counter() - level_started))
        self.emit(ev.RenderFinished(time.perf_counter() - started, used))
        return to_host(image[0])

    def _run_level(self, levels, position: int, budget: int, content, targets, start):
        """Runs a level; out of memory, it retries with smaller tiles, and the saved plan keeps them."""
        level = levels[position]
        while True:
            context = LevelContext(level, self.method, content, targets, self.device, self.checkpoints,
                                   self.buffers, self.policy, self.should_stop, self.emit)
            try:
                return (*RUNNERS[level.mode](context, start), levels)
            except (MemoryError, RuntimeError) as exc:
                smaller = self.planner.shrink(level) if is_out_of_memory(exc) else None
                if smaller is None:
                    raise
                self.emit(ev.Notice("out-of-memory", (
                    f"level {level.index + 1}: out of memory with "
                    f"{f'{level.tile_size} px tiles' if level.tile_size else 'the whole level'}; "
                    f"retrying with {smaller.tile_size} px {smaller.mode} tiles")))
                level = smaller
                levels = levels[:position] + (level,) + levels[position + 1:]
                self.checkpoints.save(PLAN_KEY, SavedPlan(levels, budget).to_plain())  # a resume keeps them
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _announce(self, levels, budget: int, style_shapes, height: int, width: int) -> None:
        """Warnings about the weights, the plan and the style images, then RenderStarted."""
        info = self.method.weights_info
        for notice in render_notices(self.config, info, levels, budget, style_shapes, height, width):
            self.emit(notice)
        self.emit(ev.RenderStarted(levels, str(self.device), budget, info.flavour if info else "given",
                                   info and info.path, info and info.sha256, info and info.chosen_by,
                                   self.method.loss_weights))

    def _resumable_plan(self, height: int, width: int,
                        style_shapes: Sequence[tuple[int, int]]) -> tuple[tuple[ev.LevelPlan, ...], int]:
        """The saved plan if there is one (a resume must tile exactly as before), else a new one, saved."""
        saved = self.checkpoints.load(PLAN_KEY)
        if saved is not None:
            plan = SavedPlan.from_plain(saved)
            return plan.levels, plan.budget
        levels, budget = self.plan(height, width, style_shapes)
        self.checkpoints.save(PLAN_KEY, SavedPlan(levels, budget).to_plain())
        return levels, budget

    def _start(self, previous, level_content, level: ev.LevelPlan) -> torch.Tensor:
        if previous is not None:
            return resize(previous, (level.height, level.width))
        if self.config.init == "noise":
            generator = torch.Generator().manual_seed(self.config.seed)
            return to_device(torch.rand(level_content.shape, generator=generator), self.device)
        return level_content.clone()
