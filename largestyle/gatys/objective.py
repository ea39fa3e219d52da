"""The loss of an image (or a tile) against fixed content and style targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.settings import DEFAULT_LOSS_WEIGHTS, RenderConfig
from ..network.vgg import VGG19Features
from ..core.vgg import halo, receptive_field
from .losses import content_loss, gram, style_loss, tv_loss
from ..geometry.tiling import halo_tiles


@dataclass(frozen=True)
class LossTerms:
    """Weighted loss terms of one evaluation; they add up to ``total``."""

    total: float
    content: float
    style: float
    tv: float


@torch.no_grad()
def style_targets(network: VGG19Features, style: torch.Tensor, layers,
                  core: int | None = None, context: int | None = None) -> dict[str, torch.Tensor]:
    """Gram matrices of the style image, one per style layer.

    With ``core`` (a multiple of 16) the image is evaluated in core-plus-halo
    windows and each window's core features are summed into the Gram, so memory
    is bounded by the window size; with the default ``context`` (the halo the
    layers' receptive field needs) the result equals the untiled Gram to
    floating-point precision.
    """
    height, width = style.shape[-2:]
    if core is None or core >= max(height, width):
        return {layer: gram(features) for layer, features in network(style, layers).items()}
    sums, device = {}, network_device(network)
    for tile in halo_tiles(height, width, core, halo(layers) if context is None else context):
        # The image may live on the host while the network runs on the device: move windows only.
        for layer, features in network(tile.cut(style).to(device), layers).items():
            core_features = tile.core_of(features, receptive_field(layer)[1]).flatten(2)
            sums[layer] = sums.get(layer, 0) + core_features @ core_features.transpose(1, 2)
    return {layer: total / positions(height, width, layer) for layer, total in sums.items()}


def network_device(network: VGG19Features) -> torch.device:
    return next(network.parameters()).device


def positions(height: int, width: int, layer: str) -> int:
    """Feature positions of ``layer`` for a height x width input: pooling floors odd sizes."""
    stride = receptive_field(layer)[1]
    return (height // stride) * (width // stride)


@torch.no_grad()
def content_targets(network: VGG19Features, content: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    return network(content, layers)


class Objective:
    """Weighted content + style + TV loss of images shaped like the content target."""

    def __init__(self, network: VGG19Features, config: RenderConfig,
                 content: dict[str, torch.Tensor], style: dict[str, torch.Tensor]):
        self.network = network
        self.content = content
        self.style = style
        self.config = config.with_loss_defaults(*DEFAULT_LOSS_WEIGHTS)
        self.layer_weights = config.layer_weights
        self.layers = tuple(dict.fromkeys(tuple(content) + tuple(style)))

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, LossTerms]:
        cfg = self.config
        features = self.network(image, self.layers)
        content = sum((content_loss(features[layer], target) for layer, target in self.content.items()),
                      image.new_zeros(()))
        style = style_loss({layer: gram(features[layer]) for layer in self.style}, self.style,
                           self.layer_weights) if self.style else image.new_zeros(())
        terms = (cfg.content_weight * content, cfg.style_weight * style, cfg.tv_weight * tv_loss(image))
        total = terms[0] + terms[1] + terms[2]
        return total, LossTerms(*(float(t.detach()) for t in (total, *terms)))

    def value_and_grad(self, image: torch.Tensor) -> tuple[LossTerms, torch.Tensor]:
        """Loss terms and the gradient of the total with respect to ``image``."""
        with torch.enable_grad():
            x = image.detach().requires_grad_(True)
            total, terms = self(x)
            (grad,) = torch.autograd.grad(total, x)
        return terms, grad
