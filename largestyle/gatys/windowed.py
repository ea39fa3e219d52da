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

from ..core.transfer import beside, to_device
from ..core.vgg import channels, halo, stride
from ..geometry.tiling import HaloTile, halo_tiles
from ..network.vgg import VGG19Features
from ..network.recording import Recording
from .losses import mean_square, square_sum, style_loss, style_slopes, target_norm, tv_term
from .lossweights import LossWeights
from .objective import LayerLosses, LossTerms, checked
from .targets import network_device, positions, style_targets


class TiledObjective:
    """Same interface and values as ``Objective.value_and_grad``, for a whole level in windows.

    The level's image and gradient may live on the host while the network runs on an
    accelerator: only windows travel to the network's device, and their gradients back.
    """

    def __init__(self, network: VGG19Features, weights: LossWeights, content: torch.Tensor,
                 style: dict[str, torch.Tensor], core: int, context: int | None = None,
                 cache_content: bool = True):
        self.network = network
        self.device = network_device(network)
        self.weights = checked(weights)
        self.style = to_device(style, self.device)
        self.content_layers = weights.content_layers
        self.layers = tuple(dict.fromkeys(weights.content_layers + tuple(style)))
        self.shape = tuple(content.shape[-2:])
        self.core, self.context = core, halo(self.layers) if context is None else context
        self.tiles: tuple[HaloTile, ...] = halo_tiles(*self.shape, core, self.context)
        # Content targets of every core (relu4_2: 512 channels at 1/64 of the pixels, 32 bytes
        # per image pixel; see MemoryModel.content_cache_per_pixel), kept beside the level's
        # image when ``cache_content``; otherwise each evaluation recomputes them.
        self.level_content = content
        self.content = [beside(self._content_targets(tile), content)
                        for tile in self.tiles] if cache_content else None
        self.content_norms = self._content_norms()
        self.style_norms = {layer: target_norm(target) for layer, target in self.style.items()}

    def _content_norms(self) -> dict[str, float]:
        """The mean square of each layer's whole-level content target, summed over the cores."""
        totals: dict[str, float] = {}
        for index in range(len(self.tiles)):
            for layer, target in self._targets(index).items():
                totals[layer] = totals.get(layer, 0.0) + square_sum(target)
        return {layer: mean_square(total, channels(layer) * positions(*self.shape, layer))
                for layer, total in totals.items()}

    @staticmethod
    def _core(tile: HaloTile, layer: str, features: torch.Tensor) -> torch.Tensor:
        return tile.core_of(features, stride(layer))

    @torch.no_grad()
    def _content_targets(self, tile: HaloTile) -> dict[str, torch.Tensor]:
        window = to_device(tile.cut(self.level_content), self.device)
        return {layer: self._core(tile, layer, features).clone()
                for layer, features in self.network(window, self.content_layers).items()}

    def _targets(self, index: int) -> dict[str, torch.Tensor]:
        if self.content is None:
            return self._content_targets(self.tiles[index])
        return to_device(self.content[index], self.device)

    def _gram(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pass 1: the level's Gram matrices, summed over the same windows."""
        return style_targets(self.network, image, tuple(self.style), self.core, self.context)

    def _window(self, index: int, tile: HaloTile, image: torch.Tensor,
                slopes: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Pass 2 for one window: the gradient of its content share and of the Gram-fixed style surrogate.

        The surrogate Σ slope ⊙ (F Fᵀ) / positions is never formed: its gradient with respect
        to the window's core features, (S + Sᵀ) F, is added into the core of the gradient
        passing that layer, beside the content share's.
        """
        recording = Recording(self.network, to_device(tile.cut(image), self.device), self.layers)
        losses = LayerLosses(self._targets(index), self.content_norms, self.weights.content, slopes,
                             {layer: positions(*self.shape, layer) for layer in self.layers})

        def add(layer: str, gradient: torch.Tensor) -> torch.Tensor:
            losses.add(layer, self._core(tile, layer, recording.features[layer]), self._core(tile, layer, gradient))
            return gradient

        return recording.backward(add), losses.content_value

    def value_and_grad(self, image: torch.Tensor) -> tuple[LossTerms, torch.Tensor]:
        weights = self.weights
        image = image.detach()
        grams = self._gram(image)
        style_value = style_loss(grams, self.style, weights.style_layers, self.style_norms)
        # d(style term)/dG, held fixed in pass 2.
        slopes = style_slopes(grams, self.style, weights.style_layers, weights.style, self.style_norms,
                              {layer: positions(*self.shape, layer) for layer in grams})
        grad = torch.zeros_like(image)
        content_value = 0.0
        for index, tile in enumerate(self.tiles):
            window_grad, content = self._window(index, tile, image, slopes)
            top, left, bottom, right = tile.window
            grad[..., top:bottom, left:right] += beside(window_grad, grad)
            content_value += content
        tv = tv_term(image, grad, weights.tv)
        terms = (weights.content * content_value, weights.style * float(style_value), tv)
        return LossTerms(sum(terms), *terms), grad
