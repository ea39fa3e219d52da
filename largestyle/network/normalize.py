"""Gatys normalisation: rescale every filter so its mean activation over some images is 1.

Each channel's output is divided by its mean activation and the next layer's weights
for that channel are multiplied by it. ReLU and pooling commute with positive scales,
so every layer computes the same features up to a per-channel factor: the network's
function is unchanged, and the style loss weighs its layers more evenly.
"""

from __future__ import annotations

import torch

from .vgg import VGG19Features
from .flavours import Flavour

# Channels that never fire on the given images keep their scale.
DEAD = 1e-8


def smallest_side(state: dict[str, torch.Tensor]) -> int:
    """The least height and width an image needs for every conv in ``state`` to see at least one pixel.

    Each pooling before the deepest conv halves the image.
    """
    network = VGG19Features("relu" + _convs(state)[-1][4:])
    return 2 ** sum(kind == "pool" for kind, _ in network.sequence)


def _convs(state) -> list[str]:
    return [name for name in VGG19Features("relu5_4").convs if f"{name}.weight" in state]


@torch.no_grad()
def normalize(state: dict[str, torch.Tensor], flavour: Flavour, images: list[torch.Tensor],
              pooling: str = "avg") -> dict[str, torch.Tensor]:
    """A copy of ``state`` (canonical conv keys) with every present filter at mean activation 1.

    ``images`` are (1, 3, H, W) RGB in [0, 1], each at least ``smallest_side(state)`` pixels
    high and wide; their means are pooled over all positions.
    """
    convs = _convs(state)
    need = smallest_side(state)
    if any(min(image.shape[-2:]) < need for image in images):
        raise ValueError(f"every image must be at least {need} pixels high and wide")
    network = VGG19Features("relu" + convs[-1][4:], pooling).to(state[f"{convs[0]}.weight"].dtype)
    for name, conv in network.convs.items():
        conv.weight.copy_(state[f"{name}.weight"])
        conv.bias.copy_(state[f"{name}.bias"])
    following = dict(zip(convs, convs[1:]))

    def rescale(name, conv, outputs):
        total = sum(out.sum(dim=(0, 2, 3)) for out in outputs)
        mean = total / sum(out[0, 0].numel() for out in outputs)
        scale = torch.where(mean > DEAD, mean, torch.ones_like(mean))
        conv.weight.div_(scale.view(-1, 1, 1, 1))
        conv.bias.div_(scale)
        if name in following:  # the next layer sees this one's channels divided by scale: undo it there
            network.convs[following[name]].weight.mul_(scale.view(1, -1, 1, 1))
        return [out / scale.view(1, -1, 1, 1) for out in outputs]

    network.walk([flavour.prepare(image) for image in images], rescale)
    result = {key: value.clone() for key, value in state.items()}
    for name, conv in network.convs.items():
        result[f"{name}.weight"], result[f"{name}.bias"] = conv.weight.clone(), conv.bias.clone()
    return result
