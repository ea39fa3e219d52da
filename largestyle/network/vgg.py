"""VGG-19 convolution stack with named layers, built only as deep as needed."""

from __future__ import annotations

import torch
from torch import nn

from ..config.settings import LAYER_NAMES
from .flavours import FLAVOURS, Flavour

# Output channels of each conv block; 'P' marks a 2x2 pooling layer.
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))

# Position of each conv layer in torchvision's ``vgg19().features`` (its state-dict keys).
TORCHVISION_INDEX = {
    f"conv{b + 1}_{i + 1}": idx
    for (b, i), idx in zip(
        [(b, i) for b, block in enumerate(_BLOCKS) for i in range(len(block))],
        (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
    )
}



def layer_sequence(deepest: str) -> list[tuple[str, str]]:
    """[(kind, name)] from the input to ``deepest``: kinds 'conv', 'pool'."""
    if deepest not in LAYER_NAMES:
        raise ValueError(f"unknown layer {deepest!r}")
    sequence = []
    for b, block in enumerate(_BLOCKS):
        if b:
            sequence.append(("pool", f"pool{b}"))
        for i in range(len(block)):
            name = f"{b + 1}_{i + 1}"
            sequence.append(("conv", f"conv{name}"))
            if f"relu{name}" == deepest:
                return sequence
    raise AssertionError("unreachable")


def deepest_of(layers) -> str:
    """The deepest of ``layers`` in network order."""
    return max(layers, key=LAYER_NAMES.index)


def receptive_field(layer: str) -> tuple[int, int]:
    """(size, stride) in input pixels of one unit of ``layer``: relu5_1 -> (156, 16)."""
    size, jump = 1, 1
    for kind, _ in layer_sequence(layer):
        size += 2 * jump if kind == "conv" else jump
        jump *= 1 if kind == "conv" else 2
    return size, jump


def halo(layers) -> int:
    """Context (px) a tile needs on each side for ``layers`` to match the untiled network.

    The receptive-field radius of the deepest layer, rounded up to a multiple of 16
    (VGG-19's largest stride) so that a tile's pooled feature grids line up with the
    whole image's: 80 px for relu5_1.
    """
    radius = receptive_field(deepest_of(layers))[0] // 2
    return -(-radius // 16) * 16


def conv_channels() -> dict[str, tuple[int, int]]:
    """conv name -> (in_channels, out_channels) for the full VGG-19."""
    channels, previous = {}, 3
    for b, block in enumerate(_BLOCKS):
        for i, out in enumerate(block):
            channels[f"conv{b + 1}_{i + 1}"] = (previous, out)
            previous = out
    return channels


class VGG19Features(nn.Module):
    """VGG-19 features up to the deepest requested layer.

    Takes RGB images in [0, 1] shaped (N, 3, H, W); prepares them as the weights
    flavour expects (see ``set_input``), and returns
    ``{layer_name: activation}`` for the requested layers.
    """

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

    def forward(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - {"relu" + name[4:] for kind, name in self.sequence if kind == "conv"}
        if unknown:
            raise ValueError(f"layers {sorted(unknown)} are deeper than this network ({self.deepest})")
        pool = nn.functional.avg_pool2d if self.pooling == "avg" else nn.functional.max_pool2d
        x = self.prepare(image)
        out = {}
        for kind, name in self.sequence:
            if kind == "pool":
                x = pool(x, 2)
                continue
            x = torch.relu(self.convs[name](x))
            relu = "relu" + name[4:]
            if relu in wanted:
                out[relu] = x
                if len(out) == len(wanted):
                    break
        return out
