"""Finding and loading VGG-19 weights, with a seeded random network as fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import LargestyleError
from .features import TORCHVISION_INDEX, VGG19Features, layer_sequence

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# File names searched for, in order, in each weights directory.
KNOWN_FILES = ("vgg19-dcbb9e9d.pth",)
WEIGHTS_DIR_ENV = "LARGESTYLE_WEIGHTS_DIR"
# The random network is the same for every render, whatever --seed says.
RANDOM_SEED = 19

RANDOM_WEIGHTS_WARNING = (
    "no trained VGG-19 weights found: using a seeded RANDOM network, which transfers colour and "
    "texture but far less of a painting's style. For real results download "
    f"{TORCHVISION_URL} into the weights/ folder (or pass --weights PATH)."
)


@dataclass(frozen=True)
class WeightsInfo:
    flavour: str  # 'torchvision' or 'random'
    path: str | None

    @property
    def is_random(self) -> bool:
        return self.flavour == "random"


def default_weights_dir() -> Path:
    """$LARGESTYLE_WEIGHTS_DIR, else the ``weights/`` folder beside the package."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights"


def search_dirs() -> list[Path]:
    return [default_weights_dir(), Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights() -> Path | None:
    for directory in search_dirs():
        for name in KNOWN_FILES:
            if (directory / name).is_file():
                return directory / name
    return None


def load_network(weights: str | None, deepest: str, pooling: str) -> tuple[VGG19Features, WeightsInfo]:
    """The network for a render: from ``weights`` (a path), found on disk, or random."""
    path = Path(weights) if weights else find_weights()
    network = VGG19Features(deepest, pooling)
    if path is None:
        randomise(network)
        return network, WeightsInfo("random", None)
    network.convs.load_state_dict(read_torchvision_state(path, network))
    return network, WeightsInfo("torchvision", str(path))


def read_torchvision_state(path: Path, network: VGG19Features) -> dict[str, torch.Tensor]:
    """Conv weights for ``network`` from a torchvision VGG-19 state dict (full or features only)."""
    if not path.is_file():
        raise LargestyleError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds on files that are not state dicts
        raise LargestyleError(f"cannot read weights file {path}: not a PyTorch state dict ({exc})") from None
    if not isinstance(state, dict):
        raise LargestyleError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    state = {key.removeprefix("features."): value for key, value in state.items()}
    wanted = {}
    for name, conv in network.convs.items():
        index = TORCHVISION_INDEX[name]
        for part, expected in (("weight", conv.weight), ("bias", conv.bias)):
            key = f"{index}.{part}"
            if key not in state:
                raise LargestyleError(f"weights file {path} has no features.{key}: not a torchvision VGG-19")
            if tuple(state[key].shape) != tuple(expected.shape):
                raise LargestyleError(
                    f"weights file {path}: features.{key} has shape {tuple(state[key].shape)}, "
                    f"VGG-19 needs {tuple(expected.shape)}")
            wanted[f"{name}.{part}"] = state[key].float()
    return wanted


@torch.no_grad()
def randomise(network: VGG19Features) -> None:
    """Seeded He-normal weights, each layer rescaled to mean activation 1.

    He initialisation keeps activations from vanishing on average; the rescale
    (on a fixed smooth random image) removes the drift that 16 layers still show,
    so every layer's Gram matrices have comparable magnitude.
    """
    generator = torch.Generator().manual_seed(RANDOM_SEED)
    probe = torch.rand(1, 3, 8, 8, generator=generator)
    x = torch.nn.functional.interpolate(probe, size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    x = (x - network.mean) / network.std
    for kind, name in network.sequence:
        if kind == "pool":
            pool = torch.nn.functional.avg_pool2d if network.pooling == "avg" else torch.nn.functional.max_pool2d
            x = pool(x, 2)
            continue
        conv = network.convs[name]
        fan_in = conv.in_channels * 9
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        conv.bias.zero_()
        x = torch.relu(conv(x))
        scale = x.mean().clamp_min(1e-6)
        conv.weight /= scale
        x = x / scale

