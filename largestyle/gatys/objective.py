"""The loss of an image (or a tile) against fixed content and style targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..network.vgg import VGG19Features
from .losses import content_loss, gram, style_loss, target_norm, tv_loss
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

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, LossTerms]:
        weights = self.weights
        features = self.network(image, self.layers)
        content = sum((content_loss(features[layer], target, self.content_norms[layer])
                       for layer, target in self.content.items()), image.new_zeros(()))
        style = style_loss({layer: gram(features[layer]) for layer in self.style}, self.style,
                           weights.style_layers, self.style_norms) if self.style else image.new_zeros(())
        terms = (weights.content * content, weights.style * style, weights.tv * tv_loss(image))
        total = terms[0] + terms[1] + terms[2]
        return total, LossTerms(*(float(t.detach()) for t in (total, *terms)))

    def value_and_grad(self, image: torch.Tensor) -> tuple[LossTerms, torch.Tensor]:
        """Loss terms and the gradient of the total with respect to ``image``."""
        with torch.enable_grad():
            x = image.detach().requires_grad_(True)
            total, terms = self(x)
            (grad,) = torch.autograd.grad(total, x)
        return terms, grad
