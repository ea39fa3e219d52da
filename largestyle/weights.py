"""Finding, fetching and loading VGG-19 weights, with a seeded random network as fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import LargestyleError
from .features import VGG19Features
from .flavours import FLAVOURS
from .weightfiles import read_weights, write_compact

WEIGHTS_DIR_ENV = "LARGESTYLE_WEIGHTS_DIR"
# Set to 1 to stop `largestyle render` from trying to download weights it cannot find.
NO_FETCH_ENV = "LARGESTYLE_NO_FETCH"
# The random network is the same for every render, whatever --seed says.
RANDOM_SEED = 19


@dataclass(frozen=True)
class Source:
    """Where a flavour's official file is published."""

    url: str
    file: str
    sha256: str | None  # the published hash (or its prefix); None where the publisher gives none


SOURCES = {
    "torchvision": Source("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    # The neural-style ports' Caffe conversion; its download script re-saves the file, so no hash holds.
    "caffe": Source("https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth", "vgg19-d01eb7cb.pth", None),
}
TORCHVISION_URL = SOURCES["torchvision"].url


def compact_name(flavour: str) -> str:
    """File name of the features-only file that ``fetch`` and ``convert`` write."""
    return f"vgg19-{flavour}-features.pth"


# Searched for, in order, in each weights directory.
KNOWN_FILES = (compact_name("torchvision"), compact_name("caffe"), "vgg19-dcbb9e9d.pth", "vgg19-d01eb7cb.pth",
               "vgg19_normalized.pkl", "vgg_conv.pth")

RANDOM_WEIGHTS_WARNING = (
    "no trained VGG-19 weights found: using a seeded RANDOM network, which transfers colour and "
    "texture but far less of a painting's style. For real results run `largestyle weights fetch` "
    f"(or download {TORCHVISION_URL} into the weights/ folder, or pass --weights PATH)."
)


@dataclass(frozen=True)
class WeightsInfo:
    """What a render used: recorded with its settings."""

    flavour: str
    path: str | None = None
    sha256: str | None = None
    format: str | None = None
    chosen_by: str | None = None

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


def load_network(weights: str | None, deepest: str, pooling: str,
                 weights_format: str | None = None) -> tuple[VGG19Features, WeightsInfo]:
    """The network for a render: from ``weights`` (a path, or 'random'), found on disk, or random."""
    path = None if weights == "random" else Path(weights) if weights else find_weights()
    network = VGG19Features(deepest, pooling)
    if path is None:
        randomise(network)
        return network, WeightsInfo("random", chosen_by="--weights random" if weights else "no weights file found")
    found = read_weights(path, weights_format)
    missing = [name for name in network.convs if f"{name}.weight" not in found.state]
    if missing:
        raise LargestyleError(
            f"weights file {path} stops before {missing[0]}, but the layers in use need up to {deepest}")
    network.convs.load_state_dict({key: value for key, value in found.state.items()
                                   if key.split(".")[0] in network.convs})
    network.set_input(FLAVOURS[found.flavour])
    return network, WeightsInfo(found.flavour, str(path), found.sha256, found.format, found.chosen_by)


def fetch(flavour: str = "torchvision", directory: Path | None = None, progress: bool = True) -> Path:
    """Download a flavour's official file, check it, keep only its features (about 80 MB)."""
    from .fetch import download

    source = SOURCES[flavour]
    directory = Path(directory) if directory else default_weights_dir()
    full = download(source.url, directory / source.file, source.sha256, progress=progress)
    try:
        return write_compact(read_weights(full, flavour), directory / compact_name(flavour))
    finally:
        full.unlink(missing_ok=True)


@torch.no_grad()
def randomise(network: VGG19Features) -> None:
    """Seeded He-normal weights, each layer rescaled to mean activation 1.

    He initialisation keeps activations from vanishing on average; the rescale
    (on a fixed smooth random image) removes the drift that 16 layers still show,
    so every layer's Gram matrices have comparable magnitude.
    """
    network.set_input(FLAVOURS["random"])
    generator = torch.Generator().manual_seed(RANDOM_SEED)
    probe = torch.rand(1, 3, 8, 8, generator=generator).to(next(network.parameters()).dtype)
    x = torch.nn.functional.interpolate(probe, size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    x = network.prepare(x)
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
