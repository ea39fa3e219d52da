"""Finding, fetching and loading VGG-19 weights, with a seeded random network as fallback."""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.atomic import remove_stale_temporaries
from ..core.errors import LargestyleError
from .vgg import VGG19Features
from .download import ANOTHER_FOLDER, PART_SUFFIX, FetchError, download, one_line, sha256_matches, write_problem
from .flavours import FLAVOURS
from .weightfiles import WeightsFile, read_weights, write_compact

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
    """What a render used: recorded with its settings.

    For a random network ``chosen_by`` says why: "--weights random" when asked for
    (no warning needed), "no weights file found" otherwise.
    """

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
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


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
    shown = os.fspath(weights) if weights else str(path)  # the path as the user gave it
    found = read_weights(shown, weights_format)
    missing = [name for name in network.convs if f"{name}.weight" not in found.state]
    if missing:
        raise LargestyleError(one_line(
            f"weights file {shown} stops before {missing[0]}, but the layers in use need up to {deepest}; "
            "use shallower layers or a complete weights file"))
    network.convs.load_state_dict({key: value for key, value in found.state.items()
                                   if key.split(".")[0] in network.convs})
    network.set_input(FLAVOURS[found.flavour])
    return network, WeightsInfo(found.flavour, str(path), found.sha256, found.format, found.chosen_by)


def fetch(flavour: str = "torchvision", directory: Path | None = None, progress: bool = True) -> Path:
    """Download a flavour's official file, check it, keep only its features (about 80 MB).

    What a killed fetch into the same folder left is dealt with first: its temporary
    files are removed, and a finished download it did not get to compact is compacted
    if it checks out (else removed) rather than downloaded again. One fetch at a time
    works in a folder; only the compact file remains.
    """
    source = SOURCES[flavour]
    directory = Path(directory) if directory else default_weights_dir()
    full, compact = directory / source.file, directory / compact_name(flavour)
    with _fetch_lock(directory, full):
        remove_stale_temporaries(compact)
        remove_stale_temporaries(full, PART_SUFFIX)
        try:
            found = _finished_download(full, source, flavour)
            if found is None:
                download(source.url, full, source.sha256, progress=progress)
                found = read_weights(full, flavour)
            return write_compact(found, compact, ANOTHER_FOLDER)
        finally:
            if full.is_file() or full.is_symlink():
                with contextlib.suppress(OSError):
                    full.unlink()


@contextlib.contextmanager
def _fetch_lock(directory: Path, full: Path):
    """Hold ``directory`` (made if missing) for one fetch; refuse if another process holds it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise FetchError(write_problem(full, exc)) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(f"another largestyle process is fetching weights into {directory}; "
                             "wait for it to finish, then run this again") from None
        except OSError:
            pass  # a file system without locks: go on unguarded
        yield
    finally:
        os.close(handle)


def _finished_download(full: Path, source: Source, flavour: str) -> WeightsFile | None:
    """The official file a killed fetch downloaded but did not compact, if it checks out; else removed."""
    if not full.is_file():
        return None
    try:
        found = read_weights(full, flavour)
    except LargestyleError:
        found = None
    if found is not None and (source.sha256 is None or sha256_matches(found.sha256, source.sha256)):
        return found
    try:
        full.unlink(missing_ok=True)
    except OSError as exc:
        raise FetchError(write_problem(full, exc)) from None
    return None


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
    for conv in network.convs.values():  # in network order, as the generator's draws always were
        fan_in = conv.in_channels * 9
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        conv.bias.zero_()
    def rescale(name, conv, activations):
        (x,) = activations
        scale = x.mean().clamp_min(1e-6)
        conv.weight /= scale
        return [x / scale]

    network.walk([network.prepare(x)], rescale)
