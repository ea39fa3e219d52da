"""Exact tiling: the loss and gradient of a whole level, computed window by window.

Every window is a core on a 16 px grid plus a halo at least as wide as the deepest
layer's receptive-field radius (clipped at the image, where the untiled network's own
zero padding applies), so the core's features equal the untiled ones. Two passes:

1. without gradients, every core's features are summed into the level's Gram matrices;
2. per window, the content term and the style term *with the level's Gram held fixed*
   are back-propagated, and the window's whole input gradient (halo included) is added
   into the level's gradient.

The style loss is a function of the Gram matrices alone, so holding them fixed at
their level values and weighting each core's F Fᵀ by dL/dG gives exactly the untiled
gradient: tiled equals untiled to floating-point precision, while memory is bounded
by one window.
"""

from __future__ import annotations

import torch

from ..config.settings import DEFAULT_LOSS_WEIGHTS, RenderConfig
from ..network.vgg import VGG19Features
from ..core.vgg import halo, receptive_field
from .losses import tv_loss
from .objective import LossTerms, network_device, positions, style_targets
from ..geometry.tiling import HaloTile, halo_tiles


class TiledObjective:
    """Same interface and values as ``Objective.value_and_grad``, for a whole level in windows.

    The level's image and gradient may live on the host while the network runs on an
    accelerator: only windows travel to the network's device, and their gradients back.
    """

    def __init__(self, network: VGG19Features, config: RenderConfig, content: torch.Tensor,
                 style: dict[str, torch.Tensor], core: int, context: int | None = None,
                 cache_content: bool = True):
        self.network = network
        self.device = network_device(network)
        self.config = config.with_loss_defaults(*DEFAULT_LOSS_WEIGHTS)
        self.style = {layer: target.to(self.device) for layer, target in style.items()}
        self.layer_weights = config.layer_weights
        self.content_layers = config.content_layers
        self.layers = tuple(dict.fromkeys(config.content_layers + tuple(style)))
        self.shape = tuple(content.shape[-2:])
        self.core, self.context = core, halo(self.layers) if context is None else context
        self.tiles: tuple[HaloTile, ...] = halo_tiles(*self.shape, core, self.context)
        # Content targets of every core: relu4_2 holds 512 channels at 1/64 of the pixels,
        # 32 bytes per image pixel, kept beside the level's image when ``cache_content``;
        # otherwise each evaluation recomputes them (a forward pass to relu4_2 per window).
        self.level_content = content
        self.content = [{layer: target.to(content.device) for layer, target in self._content_targets(tile).items()}
                        for tile in self.tiles] if cache_content else None

    @staticmethod
    def _core(tile: HaloTile, layer: str, features: torch.Tensor) -> torch.Tensor:
        return tile.core_of(features, receptive_field(layer)[1])

    @torch.no_grad()
    def _content_targets(self, tile: HaloTile) -> dict[str, torch.Tensor]:
        window = tile.cut(self.level_content).to(self.device)
        return {layer: self._core(tile, layer, features).clone()
                for layer, features in self.network(window, self.content_layers).items()}

    def _targets(self, index: int) -> dict[str, torch.Tensor]:
        if self.content is None:
            return self._content_targets(self.tiles[index])
        return {layer: target.to(self.device) for layer, target in self.content[index].items()}

    def _gram(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pass 1: the level's Gram matrices, summed over the same windows."""
        return style_targets(self.network, image, tuple(self.style), self.core, self.context)

    def value_and_grad(self, image: torch.Tensor) -> tuple[LossTerms, torch.Tensor]:
        cfg = self.config
        image = image.detach()
        grams = self._gram(image)
        style_value, slopes = torch.zeros((), device=self.device, dtype=image.dtype), {}
        for layer, weight in self.layer_weights.items():
            difference = grams[layer] - self.style[layer]
            style_value = style_value + weight * difference.pow(2).mean()
            # d(style term)/dG, held fixed in pass 2.
            slopes[layer] = cfg.style_weight * weight * 2 * difference / difference[0].numel()
        grad = torch.zeros_like(image)
        content_value = 0.0
        for index, tile in enumerate(self.tiles):
            targets = self._targets(index)
            window = tile.cut(image).to(self.device).requires_grad_(True)
            with torch.enable_grad():
                features = self.network(window, self.layers)
                content = sum(
                    ((self._core(tile, layer, features[layer]) - target).pow(2).sum()
                     / (target.shape[1] * positions(*self.shape, layer)))
                    for layer, target in targets.items()) if targets else window.new_zeros(())
                surrogate = cfg.content_weight * content
                for layer, slope in slopes.items():
                    flat = self._core(tile, layer, features[layer]).flatten(2)
                    surrogate = surrogate + (slope * (flat @ flat.transpose(1, 2))).sum() / positions(
                        *self.shape, layer)
                (window_grad,) = torch.autograd.grad(surrogate, window)
            top, left, bottom, right = tile.window
            grad[..., top:bottom, left:right] += window_grad.to(grad.device)
            content_value += float(content.detach())
        with torch.enable_grad():
            x = image.requires_grad_(True)
            tv = cfg.tv_weight * tv_loss(x)
            grad += torch.autograd.grad(tv, x)[0]
        terms = (cfg.content_weight * content_value, cfg.style_weight * float(style_value), float(tv.detach()))
        return LossTerms(sum(terms), *terms), grad
