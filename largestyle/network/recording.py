"""One forward pass of the network, kept for one backward pass that adds the losses' gradients at their layers.

Autograd would join a loss's gradient to the network's own at a layer by allocating the loss's
feature-sized gradient and then their sum: two feature-sized buffers per loss layer, which the
host faults in afresh (zeroing every page) on each evaluation. Here the losses are computed
outside autograd from the recorded features, and their gradients are added in place into the
gradient coming back from the next convolution, which was made for that layer alone
(bench/bench_evaluation.py measures the difference).
"""

from __future__ import annotations

import weakref
from typing import Callable

import torch

from ..core.vgg import deepest_of
from .vgg import VGG19Features

# add(layer, gradient): adds the losses' gradient at ``layer`` into ``gradient`` (the network's own
# gradient there, or None at the deepest recorded layer) and returns the sum.
AddGradient = Callable[[str, "torch.Tensor | None"], torch.Tensor]


class _Junction(torch.autograd.Function):
    """The identity forward; backward hands the passing gradient to ``add`` before it goes on."""

    @staticmethod
    def forward(ctx, activation: torch.Tensor, layer: str, recording: "Recording") -> torch.Tensor:
        ctx.layer, ctx.recording = layer, weakref.ref(recording)  # no cycle through the graph
        ctx.set_materialize_grads(False)  # None, not a tensor of zeros, if nothing above used the layer
        return activation.view_as(activation)

    @staticmethod
    def backward(ctx, gradient):
        return ctx.recording().add(ctx.layer, gradient), None, None


class Recording:
    """The forward pass of ``image`` up to the deepest of ``layers``, recorded for one ``backward``.

    ``features[layer]`` are the detached activations, in the convolutions' dtype (bfloat16 under
    --precision bf16): the losses read them without autograd, in float32 a layer at a time, so
    no float32 copy of every loss layer waits for the backward pass.
    """

    def __init__(self, network: VGG19Features, image: torch.Tensor, layers):
        self.input = image.detach().requires_grad_(True)
        self.features: dict[str, torch.Tensor] = {}
        self.deepest = deepest_of(layers)
        self._add: AddGradient | None = None
        self._top: torch.Tensor | None = None
        wanted = set(layers)

        def record(name, conv, activations):
            layer = "relu" + name[4:]
            if layer not in wanted:
                return activations
            (activation,) = activations
            self.features[layer] = activation.detach()
            if layer == self.deepest:
                self._top = activation
                return activations
            return [_Junction.apply(activation, layer, self)]

        with torch.enable_grad():
            network.walk([network.prepare(self.input)], record, until="conv" + self.deepest[4:])

    def add(self, layer: str, gradient: torch.Tensor | None) -> torch.Tensor:
        if gradient is None:
            features = self.features[layer]  # the losses' gradient is float32 (or wider) under any precision
            gradient = torch.zeros_like(features, dtype=torch.promote_types(features.dtype, torch.float32))
        return self._add(layer, gradient)

    def backward(self, add: AddGradient) -> torch.Tensor:
        """The image's gradient of the losses whose gradients at each recorded layer ``add`` adds.

        ``add`` may add in place: the gradient it is given was made for it alone. Call once.
        """
        self._add = add
        top = self.add(self.deepest, None).to(self._top.dtype)
        (gradient,) = torch.autograd.grad(self._top, self.input, top)
        self._add = self._top = None  # the graph is freed; so is what it referred to
        return gradient
