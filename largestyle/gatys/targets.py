"""What the loss compares against: the style image's Gram matrices and the content's features."""

from __future__ import annotations

import torch

from ..core.transfer import to_device
from ..core.vgg import halo, stride
from ..geometry.tiling import halo_tiles
from ..network.vgg import VGG19Features
from .losses import gram, outer_sum


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
        for layer, features in network(to_device(tile.cut(style), device), layers).items():
            sums[layer] = sums.get(layer, 0) + outer_sum(tile.core_of(features, stride(layer)))
    return {layer: total / positions(height, width, layer) for layer, total in sums.items()}


def blend_grams(grams: list[dict[str, torch.Tensor]], weights: tuple[float, ...]) -> dict[str, torch.Tensor]:
    """Each layer's weighted mean of several styles' Gram matrices (``weights`` sum to 1).

    One style's Grams are returned as they are, so a single style renders exactly as before.
    The mean is a constant of the loss: every tile and window compares against the same target,
    so exact tiling stays exact.
    """
    if len(grams) == 1:
        return grams[0]
    return {layer: sum(weight * style[layer] for weight, style in zip(weights, grams)) for layer in grams[0]}


@torch.no_grad()
def content_targets(network: VGG19Features, content: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    return network(content, layers)


def network_device(network: VGG19Features) -> torch.device:
    return next(network.parameters()).device


def positions(height: int, width: int, layer: str) -> int:
    """Feature positions of ``layer`` for a height x width input: pooling floors odd sizes."""
    step = stride(layer)
    return (height // step) * (width // step)
