"""The loss of an image (or a tile) against fixed content and style targets."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..network.recording import Recording
from ..network.vgg import VGG19Features
from .losses import (add_outer_grad, content_term, outer_sum, style_loss, style_slopes, target_norm, tv_term,
                     widened)
from .lossweights import LossWeights


@dataclass(frozen=True)
class LossTerms:
    """Weighted loss terms of one evaluation; they add up to ``total``."""

    total: float
    content: float
    style: float
    tv: float


def checked(weights) -> LossWeights:
    """``weights`` if they are resolved ``LossWeights``; a missing weight is an error, never a default."""
    if not isinstance(weights, LossWeights):
        raise TypeError(f"an objective needs resolved LossWeights (see resolve_loss_weights), got {type(weights)}")
    return weights


@dataclass
class LayerLosses:
    """The content and style terms' gradients at each layer, added where the network's gradient passes.

    ``slopes[layer]`` is d(weighted style term)/dG over the Gram's positions, held fixed: the
    features' gradient is then (S + Sᵀ) F. With ``positions``, the features are one window's
    core and its content share is of a level with that many positions per layer.
    ``content_value`` adds up the content terms as ``add`` meets them.
    """

    content: dict[str, torch.Tensor]
    content_norms: dict[str, float]
    content_weight: float
    slopes: dict[str, torch.Tensor]
    positions: dict[str, int] | None = None
    content_value: float = field(default=0.0)

    def add(self, layer: str, features: torch.Tensor, gradient: torch.Tensor) -> None:
        if layer in self.content:
            self.content_value += content_term(features, self.content[layer], gradient, self.content_weight,
                                               self.content_norms[layer],
                                               self.positions[layer] if self.positions else None)
        if layer in self.slopes:
            add_outer_grad(gradient, self.slopes[layer], features)


class Objective:
    """Weighted content + style + TV loss of images shaped like the content target."""

    def __init__(self, network: VGG19Features, weights: LossWeights,
                 content: dict[str, torch.Tensor], style: dict[str, torch.Tensor]):
        self.network = network
        self.content = content
        self.style = style
        self.weights = checked(weights)
        self.layers = tuple(dict.fromkeys(tuple(content) + tuple(style)))
        self.content_norms = {layer: target_norm(target) for layer, target in content.items()}
        self.style_norms = {layer: target_norm(target) for layer, target in style.items()}

    def value_and_grad(self, image: torch.Tensor) -> tuple[LossTerms, torch.Tensor]:
        """Loss terms and the gradient of the total with respect to ``image``."""
        weights = self.weights
        recording = Recording(self.network, image, self.layers)
        features = recording.features
        positions = {layer: features[layer][0, 0].numel() for layer in self.style}
        grams = {layer: outer_sum(widened(features[layer])).div_(positions[layer]) for layer in self.style}
        style = float(style_loss(grams, self.style, weights.style_layers, self.style_norms)) if self.style else 0.0
        slopes = style_slopes(grams, self.style, weights.style_layers, weights.style, self.style_norms, positions)
        losses = LayerLosses(self.content, self.content_norms, weights.content, slopes)
        grad = recording.backward(lambda layer, gradient: losses.add(layer, features[layer], gradient) or gradient)
        tv = tv_term(image, grad, weights.tv)
        terms = (weights.content * losses.content_value, weights.style * style, tv)
        return LossTerms(sum(terms), *terms), grad
