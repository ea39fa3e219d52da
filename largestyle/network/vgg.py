"""VGG-19 convolution stack with named layers, built only as deep as needed."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..core.vgg import BLOCK_CHANNELS, conv_channels, deepest_of, layer_sequence
from .flavours import FLAVOURS, Flavour

# Position of each conv layer in torchvision's ``vgg19().features`` (its state-dict keys).
TORCHVISION_INDEX = {
    f"conv{b + 1}_{i + 1}": idx
    for (b, i), idx in zip(
        [(b, i) for b, block in enumerate(BLOCK_CHANNELS) for i in range(len(block))],
        (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
    )
}


class _ReluInPlace(torch.autograd.Function):
    """ReLU that overwrites the convolution's output, and in the backward pass the gradient coming in.

    A convolution's backward needs its input, not its output, so the output may be
    overwritten; the gradient coming in was made by the next layer for this one alone. Each
    saves a feature-sized buffer per layer that the host would otherwise fault in afresh on
    every evaluation (bench/bench_evaluation.py measures it).
    """

    @staticmethod
    def forward(ctx, activation: torch.Tensor) -> torch.Tensor:
        ctx.mark_dirty(activation)
        output = activation.clamp_min_(0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        (output,) = ctx.saved_tensors
        if gradient.is_contiguous():  # not an expanded or shared view: safe to write
            return torch.ops.aten.threshold_backward.grad_input(gradient, output, 0, grad_input=gradient)
        return torch.ops.aten.threshold_backward(gradient, output, 0)


def relu_in_place(activation: torch.Tensor) -> torch.Tensor:
    return _ReluInPlace.apply(activation)


class VGG19Features(nn.Module):
    """VGG-19 features up to the deepest requested layer.

    Takes RGB images in [0, 1] shaped (N, 3, H, W); prepares them as the weights
    flavour expects (see ``set_input``), and returns
    ``{layer_name: activation}`` for the requested layers.
    """

    relu = staticmethod(relu_in_place)  # an instance may set torch.relu, to compare

    def __init__(self, deepest: str = "relu5_1", pooling: str = "avg"):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        self.sequence = layer_sequence(deepest)
        self.pooling = pooling
        channels = conv_channels()
        self.convs = nn.ModuleDict({
            name: nn.Conv2d(*channels[name], kernel_size=3, padding=1)
            for kind, name in self.sequence if kind == "conv"
        })
        self.flavour = FLAVOURS["torchvision"]
        # The convolutions' autocast dtype (--precision bf16), or None for the parameters' own;
        # the features ``forward`` returns are float32 either way, for the Grams and losses.
        self.compute_dtype: torch.dtype | None = None
        self.requires_grad_(False)

    def set_input(self, flavour: Flavour) -> None:
        """Prepare inputs as ``flavour``'s weights expect (channel order, scale, mean, std)."""
        self.flavour = flavour

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's input."""
        return self.flavour.prepare(image)

    @property
    def deepest(self) -> str:
        return "relu" + self.sequence[-1][1][4:]

    def walk(self, inputs: list[torch.Tensor], visit: Callable, until: str | None = None) -> None:
        """The one pass through the layers, of prepared ``inputs`` in step (they may differ in size).

        After each conv's ReLU, ``visit(conv name, conv, activations)`` sees every input's
        activation and returns those to go on with; it may change the conv in place first.
        Stops after the conv named ``until``.
        """
        pool = nn.functional.avg_pool2d if self.pooling == "avg" else nn.functional.max_pool2d
        with (torch.autocast(inputs[0].device.type, dtype=self.compute_dtype) if self.compute_dtype is not None
              else contextlib.nullcontext()):
            for kind, name in self.sequence:
                if kind == "pool":
                    inputs = [pool(x, 2) for x in inputs]
                    continue
                conv = self.convs[name]
                inputs = visit(name, conv, [self.relu(conv(x)) for x in inputs])
                if name == until:
                    return

    def forward(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - {"relu" + name[4:] for kind, name in self.sequence if kind == "conv"}
        if unknown:
            raise ValueError(f"layers {sorted(unknown)} are deeper than this network ({self.deepest})")
        out = {}

        def keep(name, conv, activations):
            if "relu" + name[4:] in wanted:
                features = activations[0]
                out["relu" + name[4:]] = features if self.compute_dtype is None else features.float()
            return activations

        self.walk([self.prepare(image)], keep, until="conv" + deepest_of(wanted)[4:] if wanted else None)
        return out
