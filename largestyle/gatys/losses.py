"""Resolution-normalised, scale-free loss terms, as pure functions of tensors.

Every term is a mean, so its value does not grow with the number of pixels: the
same weights hold at every pyramid level and tile size, and an image repeated
2x2 has (up to the seams) the same loss as the image itself. The content and style
terms are also divided by the mean square of their targets (``target_norm``), so they
are dimensionless: multiplying a layer's activations by a constant (as the Caffe
weights do, about 58x torchvision's) leaves them unchanged, and one set of default
weights holds for every weights file.
"""

from __future__ import annotations

import torch


def outer_sum(features: torch.Tensor) -> torch.Tensor:
    """Σ over positions of F Fᵀ for (N, C, H, W) features -> (N, C, C): a Gram matrix before its scale."""
    flat = features.flatten(2)
    return torch.bmm(flat, flat.transpose(1, 2))


def outer_grad(slope: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(S + Sᵀ) F: the gradient of Σ S ⊙ (F Fᵀ) with respect to (N, C, H, W) features F.

    One product and no feature-sized temporaries besides the result: whatever scales it is
    applied to the C x C matrix first.
    """
    return torch.bmm(slope + slope.transpose(1, 2), features.flatten(2)).view_as(features)


class _Gram(torch.autograd.Function):
    """F Fᵀ · scale with a one-product backward: dF = (dG + dGᵀ) F · scale.

    Autograd's own backward of ``flat @ flat.T`` does two products and adds two
    feature-sized gradients; this does one product and no add.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(features)
        ctx.scale = scale
        return outer_sum(features).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (features,) = ctx.saved_tensors
        return outer_grad(grad * ctx.scale, features), None  # scaled while it is C x C, not feature-sized


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F Fᵀ / (H·W) of (N, C, H, W) features -> (N, C, C).

    Dividing by the number of positions (not by C·H·W, nor leaving it out as the
    original large-neural-style did) makes it an average of outer products, the
    same for an image and any repetition of it.
    """
    return _Gram.apply(features, 1.0 / (features.shape[-2] * features.shape[-1]))




def square_sum(target: torch.Tensor) -> float:
    """The sum of squares of a tensor, without a tensor-sized temporary."""
    return float(torch.linalg.vector_norm(target)) ** 2


def target_norm(target: torch.Tensor) -> float:
    """The mean square of a target (content features or a Gram matrix); 1 for an all-zero target."""
    return mean_square(square_sum(target), target.numel())


def mean_square(total: float, count: int) -> float:
    """``total`` (a sum of squares) over ``count`` values, as a norm: 1 when it is zero.

    An all-zero target (a black style image's Grams) has no scale to be relative to, so
    its term stays unnormalised. Exact tiling adds the square sums of every window's core.
    """
    mean = total / count
    return mean if mean > 0 else 1.0


def content_loss(features: torch.Tensor, target: torch.Tensor, norm: float = 1.0,
                 positions: int | None = None) -> torch.Tensor:
    """Mean over channels and positions of the squared feature difference, divided by ``norm``.

    ``norm`` is the target's mean square (``target_norm``), the same for every window of
    a level. With ``positions`` (the whole level's feature positions), ``features`` are
    one window's core and the result is its share of the level's term: the sum over the
    core divided by channels x ``positions``, so the shares of all cores add up to it.
    """
    if positions is None:
        return (features - target).pow(2).mean() / norm
    return (features - target).pow(2).sum() / (target.shape[1] * positions * norm)


def style_loss(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
               layer_weights: dict[str, float], norms: dict[str, float] | None = None) -> torch.Tensor:
    """Sum over layers of weight x mean squared Gram difference (mean over C² entries) / the layer's norm."""
    norms = norms or {}
    return sum(weight * (grams[layer] - targets[layer]).pow(2).mean() / norms.get(layer, 1.0)
               for layer, weight in layer_weights.items())


def style_slopes(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 layer_weights: dict[str, float], scale: float,
                 norms: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """d(scale x style_loss)/dG for each layer's Gram matrix: scale x weight x 2 (G - T) / (C² norm).

    Exact tiling holds these fixed while it back-propagates window by window.
    """
    norms, slopes = norms or {}, {}
    for layer, weight in layer_weights.items():
        difference = grams[layer] - targets[layer]
        slopes[layer] = scale * weight * 2 * difference / (difference[0].numel() * norms.get(layer, 1.0))
    return slopes


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertical neighbours plus that between horizontal ones."""
    loss = image.new_zeros(())
    if image.shape[-2] > 1:
        loss = loss + (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    if image.shape[-1] > 1:
        loss = loss + (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return loss
