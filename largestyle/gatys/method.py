"""Gatys-style optimisation as a method the render core drives (``largestyle.engine.method.Method``)."""

from __future__ import annotations

import math

import torch

from ..config.settings import CONVERGENCE_WINDOW, RenderConfig
from ..core.errors import LargestyleError
from ..core.transfer import to_device
from ..core.vgg import MIN_SIDE, deepest_of, halo
from ..geometry.pyramid import fit_long_side, fit_short_side, resize
from ..network.vgg import VGG19Features
from ..network.weights import WeightsInfo, load_network
from .adam import AdamState, minimize_adam
from .evaluator import NonFiniteLoss
from .lbfgs import LbfgsState, minimize
from .lossweights import LossWeights, resolve_loss_weights
from .objective import Objective
from . import targets  # looked up at call time, so a test can watch them where they are defined
from .windowed import TiledObjective


class GatysMethod:
    """Content, style and TV losses on VGG-19 features, minimised by a resumable L-BFGS."""

    def __init__(self, config: RenderConfig, network: VGG19Features | None = None):
        self.config = config
        self.layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
        self.content_layers = tuple(config.content_layers)
        self.weights_info: WeightsInfo | None = None
        self._network = network
        self.weights: LossWeights | None = None

    def prepare(self, device: torch.device) -> None:
        """Load the network (a given one is used as it is, with --precision's compute dtype set on it)
        and resolve the loss weights, once."""
        if self.weights is not None:
            return
        cfg = self.config
        if self._network is None:
            self._network, self.weights_info = load_network(cfg.weights, deepest_of(self.layers), cfg.pooling,
                                                            cfg.weights_format)
        self.weights = resolve_loss_weights(cfg)
        self.device = device
        self._network.compute_dtype = cfg.compute_dtype
        if device.type == "cuda":  # fp32 means float32 convolutions, not cuDNN's default TF32 (10-bit mantissas)
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = cfg.precision != "fp32"

    @property
    def network(self) -> VGG19Features:
        if self._network is None:
            raise RuntimeError("prepare() loads the network first")
        return to_device(self._network, self.device)

    @property
    def loss_weights(self) -> tuple[float, float, float]:
        return self.weights.content, self.weights.style, self.weights.tv

    def level_targets(self, styles, level, memory, budget: int) -> dict[str, torch.Tensor]:
        """Each style layer's target: the weighted mean (--style-blend) of the styles' Gram matrices."""
        grams = [self._style_grams(style, level, memory, budget) for style in styles]
        return targets.blend_grams(grams, self.config.blend_weights(len(grams)))

    def _style_grams(self, style: torch.Tensor, level, memory, budget: int) -> dict[str, torch.Tensor]:
        """The style image at --style-scale x the level's long side, as Gram matrices."""
        cfg = self.config
        shape = fit_long_side(*style.shape[-2:], round(max(level.height, level.width) * cfg.style_scale))
        if min(shape) < MIN_SIDE:  # a small --style-scale or a thin style image: enlarge to what VGG needs
            shape = fit_short_side(*style.shape[-2:], MIN_SIDE)
        resized = resize(style, shape)
        core = None
        if memory.forward_bytes(*resized.shape[-2:]) > budget or not memory.one_pass(*resized.shape[-2:]):
            # Too large for one forward pass: sum the Gram matrices over windows that fit.
            core = memory.largest_forward_core(budget, halo(cfg.style_layers))
        return targets.style_targets(self.network, resized, cfg.style_layers, core)

    def objective(self, content: torch.Tensor, style) -> Objective:
        network = self.network
        return Objective(network, self.weights, targets.content_targets(network, content, self.content_layers), style)

    def windowed_objective(self, content: torch.Tensor, style, core: int, cache_content: bool) -> TiledObjective:
        return TiledObjective(self.network, self.weights, content, style, core, cache_content=cache_content)

    def restore(self, plain: dict, device: torch.device) -> LbfgsState | AdamState:
        kind = AdamState if self.config.optimizer == "adam" else LbfgsState
        return kind.from_plain(to_device(plain, device))

    def minimize(self, objective, start: torch.Tensor, evaluations: int, where: str, on_evaluation, state,
                 on_iteration, allocate):
        """--optimizer's minimiser; both stop early at --tolerance and refuse a non-finite loss with its term."""
        cfg = self.config
        stop = dict(tolerance=cfg.tolerance, window=CONVERGENCE_WINDOW)
        try:
            if cfg.optimizer == "adam":
                return minimize_adam(objective.value_and_grad, start, evaluations, cfg.learning_rate, on_evaluation,
                                     state, on_iteration, allocate, **stop)
            return minimize(objective.value_and_grad, start, evaluations, cfg.history_size, on_evaluation,
                            state, on_iteration, allocate, **stop)
        except NonFiniteLoss as exc:
            raise LargestyleError(self._non_finite(exc, where)) from None

    def _non_finite(self, exc: NonFiniteLoss, where: str) -> str:
        """Which loss term broke, and the option that tames it."""
        terms = exc.terms
        weights = dict(zip(("content", "style", "tv"), self.loss_weights))
        broken = [name for name in weights if not math.isfinite(getattr(terms, name))]
        term = broken[0] if broken else max(weights, key=lambda name: abs(getattr(terms, name)))
        what = "its gradient" if exc.gradient and not broken else f"the {term} loss"
        return (f"{what} became {'NaN or infinite' if not broken else getattr(terms, term)} at {where}, evaluation "
                f"{exc.used} (--{term}-weight {weights[term]:g}); lower --{term}-weight and run with --restart. "
                "The checkpoints before it are kept")
