"""Reading every common VGG-19 weights file into one canonical form.

Canonical form: ``{"conv1_1.weight": (64, 3, 3, 3), "conv1_1.bias": (64,), ...}``,
float32, for the convs the file has (a prefix of conv1_1..conv5_4). Each file also
has a flavour: how its network expects its input, and the loss weights that suit it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .config import WEIGHT_FORMATS
from .errors import LargestyleError
from .features import TORCHVISION_INDEX, conv_channels
from .flavours import FLAVOURS

FORMATS = WEIGHT_FORMATS
COMPACT_FORMAT = "largestyle-vgg19"
# sha256 prefixes of files whose flavour is known; the Caffe conversion's download
# script re-saves its file, so its hash is not listed.
KNOWN_SHA256 = {"dcbb9e9d": "torchvision"}
# Below this mean |conv1_1 weight| a torchvision-keyed file is taken as the Caffe conversion.
CAFFE_HEURISTIC_THRESHOLD = 0.05
_CHUNK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"
# torch.save's legacy (non-zip) format starts by pickling this magic number (protocol 2).
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


@dataclass(frozen=True)
class WeightsFile:
    path: str
    format: str  # one of FORMATS
    flavour: str  # key of FLAVOURS
    sha256: str  # full hex digest of the file
    state: dict  # canonical form: conv name + ".weight"/".bias" -> float32 tensor
    chosen_by: str  # how the flavour was decided

    @property
    def layers(self) -> tuple[str, ...]:
        """Conv names present, in network order."""
        return tuple(name for name in conv_channels() if f"{name}.weight" in self.state)


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path) -> str:
    """The format of the weights file at ``path`` (reads and checks the whole file)."""
    return read_weights(path).format


def read_weights(path, format: str | None = None) -> WeightsFile:
    """Read and check a VGG-19 weights file; ``format`` forces one of FORMATS."""
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise LargestyleError(f"unknown weights format {format!r}; choose from {', '.join(FORMATS)}")
    if not path.is_file():
        raise LargestyleError(f"weights file not found: {path}")
    try:
        sha256 = sha256_of(path)
        with open(path, "rb") as stream:
            head = stream.read(len(_LEGACY_TORCH_MAGIC))
    except OSError as exc:
        raise LargestyleError(f"cannot read weights file {path}: {exc.strerror or exc}") from None

    if format == "lasagne" or (format is None and _looks_like_plain_pickle(path, head)):
        state = _from_lasagne(_unpickle_restricted(path), path)
        return _result(path, "lasagne", "lasagne", sha256, state, "Lasagne pickle")

    content = _torch_load(path)
    if isinstance(content, dict) and set(content) == {"state_dict"} and isinstance(content["state_dict"], dict):
        content = content["state_dict"]
    if not isinstance(content, dict):
        raise LargestyleError(f"weights file {path} is not a VGG-19 (it holds a {type(content).__name__}, "
                              "not a state dict)")
    kind = _kind_of(content)
    wanted = {"torchvision": "torchvision", "caffe": "torchvision"}.get(format, format)
    if wanted is not None and kind != wanted:
        raise LargestyleError(f"weights file {path} is not in the {format} format: it looks like {kind}")

    if kind == "largestyle":
        flavour = content.get("flavour")
        if flavour not in FLAVOURS:
            raise LargestyleError(f"weights file {path} names an unknown flavour {flavour!r}")
        state = content.get("state")
        if not isinstance(state, dict):
            raise LargestyleError(f"weights file {path} is a largestyle file without a state")
        return _result(path, "largestyle", flavour, sha256, _checked(state, {}, path), "the file's flavour entry")
    if kind == "named":
        return _result(path, "named", "gatys", sha256, _checked(content, {}, path), "named keys (vgg_conv.pth)")
    if kind == "torchvision":
        state = _from_torchvision(content, path)
        flavour, chosen_by = _torchvision_flavour(state, sha256, format)
        return _result(path, flavour, flavour, sha256, state, chosen_by)
    raise LargestyleError(f"weights file {path} is not a VGG-19 (found {_describe_keys(content)})")


def write_compact(weights: WeightsFile, out_path) -> Path:
    """Save only the convs, as float32, atomically: temporary file, fsync, rename."""
    path = Path(out_path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LargestyleError(f"cannot write {path}: directory {parent} does not exist")
    content = {
        "format": COMPACT_FORMAT,
        "flavour": weights.flavour,
        "source_sha256": weights.sha256,
        "state": {key: value.detach().to(torch.float32).contiguous().clone()
                  for key, value in _checked(weights.state, {}, weights.path).items()},
    }
    try:
        with atomic_write(path) as stream:
            torch.save(content, stream)
    except OSError as exc:
        raise LargestyleError(f"cannot write {path}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise LargestyleError(f"cannot write {path}: {_brief(exc)}") from None
    return path


def to_torchvision_state(state: dict) -> dict:
    """Canonical state -> torchvision keys (``features.N.weight``)."""
    out = {}
    for key, value in state.items():
        name, part = key.split(".")
        out[f"features.{TORCHVISION_INDEX[name]}.{part}"] = value
    return out



# --- reading containers ---------------------------------------------------------------------

def _looks_like_plain_pickle(path: Path, head: bytes) -> bool:
    if head.startswith(_ZIP_MAGIC) or head.startswith(_LEGACY_TORCH_MAGIC):
        return False
    return path.suffix.lower() == ".pkl" or head[:1] == b"\x80"


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds on files that are not weights
        raise LargestyleError(
            f"cannot read weights file {path}: truncated or not a weights file ({_brief(exc)})") from None


# What a pickle of numpy arrays needs; anything else could run code.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, path):
        super().__init__(stream, encoding="latin1")
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise LargestyleError(
                f"refusing to load {self.path}: the pickle wants {module}.{name}, which weight files "
                "never need (a pickle can run code)")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed numpy.core
        return super().find_class(module, name)


def _unpickle_restricted(path: Path):
    try:
        with open(path, "rb") as stream:
            return _RestrictedUnpickler(stream, path).load()
    except LargestyleError:
        raise
    except Exception as exc:
        raise LargestyleError(
            f"cannot read weights file {path}: truncated or not a weights file ({_brief(exc)})") from None


# --- from each layout to the canonical form -------------------------------------------------

_NAMED_KEY = re.compile(r"conv[1-5]_[1-4]\.(weight|bias)")
_INDEX_KEY = re.compile(r"(\d+)\.(weight|bias)")


def _strip(key: str) -> str:
    key = key.removeprefix("module.")
    return key.removeprefix("features.")


def _kind_of(content: dict) -> str:
    if content.get("format") == COMPACT_FORMAT:
        return "largestyle"
    keys = [key for key in content if isinstance(key, str)]
    if any(_INDEX_KEY.fullmatch(_strip(key)) for key in keys):
        return "torchvision"
    if any(_NAMED_KEY.fullmatch(key) for key in keys):
        return "named"
    return "something else"


def _from_torchvision(content: dict, path) -> dict:
    by_index = {index: name for name, index in TORCHVISION_INDEX.items()}
    state, source, extra = {}, {}, []
    for key, value in content.items():
        if not isinstance(key, str) or key.removeprefix("module.").startswith("classifier."):
            continue
        match = _INDEX_KEY.fullmatch(_strip(key))
        if not match or int(match[1]) not in by_index:
            extra.append(key)
            continue
        canonical = f"{by_index[int(match[1])]}.{match[2]}"
        state[canonical], source[canonical] = value, key
    if extra:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {_listing(extra)}; "
                              f"VGG-19 convs are at features.{','.join(map(str, TORCHVISION_INDEX.values()))})")
    return _checked(state, source, path)


def _from_lasagne(content, path: Path) -> dict:
    if not isinstance(content, dict) or not isinstance(content.get("param values"), (list, tuple)):
        raise LargestyleError(
            f"weights file {path} is not a VGG-19 (a pickle without the Lasagne 'param values' list)")
    arrays = list(content["param values"])
    if not all(isinstance(array, np.ndarray) for array in arrays):
        raise LargestyleError(f"weights file {path} is not a VGG-19 ('param values' holds non-arrays)")
    names = list(conv_channels())
    convs = []
    # Pairs (weight, bias) per conv; fully connected layers (2-D weights) may follow.
    while len(arrays) >= 2 and arrays[0].ndim == 4:
        convs.append((arrays.pop(0), arrays.pop(0)))
    if any(array.ndim == 4 for array in arrays):
        raise LargestyleError(f"weights file {path} is not a VGG-19 (its 'param values' are not "
                              "(weight, bias) pairs of convs)")
    if len(convs) > len(names):
        raise LargestyleError(f"weights file {path} is not a VGG-19 ({len(convs)} convs, VGG-19 has {len(names)})")
    state = {}
    for name, (weight, bias) in zip(names, convs):
        state[f"{name}.weight"] = torch.from_numpy(np.array(weight, dtype=np.float32))
        state[f"{name}.bias"] = torch.from_numpy(np.array(bias, dtype=np.float32))
    return _checked(state, {}, path)


def _checked(state: dict, source: dict, path) -> dict:
    """``state`` (canonical keys) checked against VGG-19, as float32 tensors in network order."""
    channels = conv_channels()
    unknown = [key for key in state if not (isinstance(key, str) and _NAMED_KEY.fullmatch(key))]
    if unknown:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {_listing(unknown)})")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise LargestyleError(f"weights file {path}: {key} holds a {type(value).__name__}, not a tensor")
    present = [name for name in channels if f"{name}.weight" in state or f"{name}.bias" in state]
    if not present:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (no conv layers found)")
    if present != list(channels)[:len(present)]:
        missing = next(name for name, have in zip(channels, present) if name != have)
        raise LargestyleError(
            f"weights file {path} is not a VGG-19 (it has {', '.join(present)} but not {missing}; "
            "the convs must run from conv1_1 in network order)")
    out = {}
    for name in present:
        c_in, c_out = channels[name]
        for part, shape in (("weight", (c_out, c_in, 3, 3)), ("bias", (c_out,))):
            key = f"{name}.{part}"
            if key not in state:
                raise LargestyleError(f"weights file {path} has {name} without its {part}")
            value = state[key]
            if tuple(value.shape) != shape:
                stored = f" (stored as {source[key]})" if key in source and source[key] != key else ""
                raise LargestyleError(f"weights file {path}: {key}{stored} has shape {tuple(value.shape)}, "
                                      f"VGG-19 needs {shape}")
            out[key] = value.detach().to(torch.float32).contiguous()
    return out


def _torchvision_flavour(state: dict, sha256: str, format: str | None) -> tuple[str, str]:
    for prefix, flavour in KNOWN_SHA256.items():
        if sha256.startswith(prefix):
            return flavour, "known sha256"
    if format in ("torchvision", "caffe"):
        return format, "--weights-format"
    # The Caffe network takes 0-255 input, so its first filters are about 58x smaller.
    size = state["conv1_1.weight"].abs().mean().item()
    if size > CAFFE_HEURISTIC_THRESHOLD:
        return "torchvision", f"heuristic: mean |conv1_1 weight| {size:.3g} > {CAFFE_HEURISTIC_THRESHOLD}"
    return "caffe", f"heuristic: mean |conv1_1 weight| {size:.3g} <= {CAFFE_HEURISTIC_THRESHOLD}"


def _result(path, format, flavour, sha256, state, chosen_by) -> WeightsFile:
    return WeightsFile(str(path), format, flavour, sha256, state, chosen_by)


def _describe_keys(content: dict) -> str:
    keys = [str(key) for key in content]
    return f"keys {_listing(keys)}" if keys else "an empty dict"


def _listing(keys, limit: int = 4) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _brief(exc: BaseException) -> str:
    """An exception as one short line."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."
