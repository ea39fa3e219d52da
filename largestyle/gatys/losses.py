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


def widened(features: torch.Tensor) -> torch.Tensor:
    """Features in float32 or wider: bfloat16 ones (--precision bf16) widened for the Grams and losses."""
    return features.to(torch.promote_types(features.dtype, torch.float32))


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


def add_outer_grad(into: torch.Tensor, slope: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``into`` += (S + Sᵀ) F, in place: ``outer_grad`` added where the network's gradient passes.

    Into a whole contiguous float32 gradient it is one fused product, with no feature-sized
    temporary; into a window's core (a strided view) or a bfloat16 gradient, the product is
    formed and then added.
    """
    features = widened(features)
    if into.is_contiguous() and features.is_contiguous() and into.dtype == features.dtype:
        symmetric = slope + slope.transpose(1, 2)
        return into.view(*into.shape[:2], -1).baddbmm_(symmetric, features.view(*features.shape[:2], -1)).view_as(into)
    return into.add_(outer_grad(slope, features))


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


def content_term(features: torch.Tensor, target: torch.Tensor, into: torch.Tensor, weight: float,
                 norm: float = 1.0, positions: int | None = None) -> float:
    """``content_loss``'s value, with ``weight`` x its gradient added into ``into`` (shaped like ``features``)."""
    difference = features - target
    count = difference.numel() if positions is None else target.shape[1] * positions
    into.add_(difference, alpha=2 * weight / (count * norm))
    return square_sum(difference) / (count * norm)


def style_loss(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
               layer_weights: dict[str, float], norms: dict[str, float] | None = None) -> torch.Tensor:
    """Sum over layers of weight x mean squared Gram difference (mean over C² entries) / the layer's norm."""
    norms = norms or {}
    return sum(weight * (grams[layer] - targets[layer]).pow(2).mean() / norms.get(layer, 1.0)
               for layer, weight in layer_weights.items())


def style_slopes(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 layer_weights: dict[str, float], scale: float,
                 norms: dict[str, float] | None = None, positions: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
    """d(scale x style_loss)/dG for each layer's Gram matrix: scale x weight x 2 (G - T) / (C² norm).

    With ``positions`` (the Gram's feature positions per layer), each is divided by them: the
    factor S of the features' gradient (S + Sᵀ) F, as G = F Fᵀ / positions. The gradients are
    added in place with these held fixed, window by window under exact tiling.
    """
    norms, positions, slopes = norms or {}, positions or {}, {}
    for layer, weight in layer_weights.items():
        difference = grams[layer] - targets[layer]
        slopes[layer] = difference.mul_(scale * weight * 2 / (difference[0].numel() * norms.get(layer, 1.0)
                                                              * positions.get(layer, 1)))
    return slopes


def tv_term(image: torch.Tensor, into: torch.Tensor, weight: float) -> float:
    """``weight`` x ``tv_loss(image)``, with its gradient added into ``into``; no autograd, two temporaries."""
    total = 0.0
    for dim in (-2, -1):
        size = image.shape[dim]
        if size > 1:
            difference = image.diff(dim=dim)
            count = difference.numel()
            total += square_sum(difference) / count
            difference.mul_(2 * weight / count)
            into.narrow(dim, 1, size - 1).add_(difference)
            into.narrow(dim, 0, size - 1).sub_(difference)
    return weight * total


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertical neighbours plus that between horizontal ones."""
    loss = image.new_zeros(())
    if image.shape[-2] > 1:
        loss = loss + (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    if image.shape[-1] > 1:
        loss = loss + (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return loss
