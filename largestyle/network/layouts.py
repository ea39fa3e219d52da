"""From each file layout (torchvision keys, named keys, a Lasagne list) to the canonical form, checked.

Canonical form: ``{"conv1_1.weight": (64, 3, 3, 3), "conv1_1.bias": (64,), ...}``,
float32, for the convs the file has (a prefix of conv1_1..conv5_4).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..core.errors import LargestyleError
from ..core.vgg import conv_channels
from .formats import COMPACT_FORMAT, USE_VGG19, listing
from .vgg import TORCHVISION_INDEX

_NAMED_KEY = re.compile(r"conv[1-5]_[1-4]\.(weight|bias)")
_INDEX_KEY = re.compile(r"(\d+)\.(weight|bias)")


def to_torchvision_state(state: dict) -> dict:
    """Canonical state -> torchvision keys (``features.N.weight``)."""
    out = {}
    for key, value in state.items():
        name, part = key.split(".")
        out[f"features.{TORCHVISION_INDEX[name]}.{part}"] = value
    return out


def _strip(key: str) -> str:
    key = key.removeprefix("module.")
    return key.removeprefix("features.")


def kind_of(content: dict) -> str:
    """The layout of a loaded state dict: largestyle, torchvision, named or something else."""
    if content.get("format") == COMPACT_FORMAT:
        return "largestyle"
    keys = [key for key in content if isinstance(key, str)]
    if any(_INDEX_KEY.fullmatch(_strip(key)) for key in keys):
        return "torchvision"
    if any(_NAMED_KEY.fullmatch(key) for key in keys):
        return "named"
    return "something else"


def describe_keys(content: dict) -> str:
    keys = [str(key) for key in content]
    return f"keys {listing(keys)}" if keys else "an empty dict"


def from_torchvision(content: dict, path) -> dict:
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
        places = ",".join(map(str, TORCHVISION_INDEX.values()))
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {listing(extra)}; "
                              f"VGG-19 convs are at features.{places}); {USE_VGG19}")
    return checked(state, source, path)


def from_lasagne(content, path: Path) -> dict:
    if not isinstance(content, dict) or not isinstance(content.get("param values"), (list, tuple)):
        raise LargestyleError(
            f"weights file {path} is not a VGG-19 (a pickle without the Lasagne 'param values' list); {USE_VGG19}")
    arrays = list(content["param values"])
    if not all(isinstance(array, np.ndarray) for array in arrays):
        raise LargestyleError(f"weights file {path} is not a VGG-19 ('param values' holds non-arrays); "
                              f"{USE_VGG19}")
    if not all(array.dtype.kind in "fiu" for array in arrays):
        raise LargestyleError(f"weights file {path} is not a VGG-19 ('param values' holds arrays of "
                              f"something other than real numbers); {USE_VGG19}")
    names = list(conv_channels())
    convs = []
    # Pairs (weight, bias) per conv; fully connected layers (2-D weights) may follow.
    while len(arrays) >= 2 and arrays[0].ndim == 4:
        convs.append((arrays.pop(0), arrays.pop(0)))
    if any(array.ndim == 4 for array in arrays):
        raise LargestyleError(f"weights file {path} is not a VGG-19 (its 'param values' are not "
                              f"(weight, bias) pairs of convs); {USE_VGG19}")
    if len(convs) > len(names):
        raise LargestyleError(f"weights file {path} is not a VGG-19 ({len(convs)} convs, VGG-19 has {len(names)}); "
                              f"{USE_VGG19}")
    state = {}
    with np.errstate(all="ignore"):  # values too large for float32 become infinite, which checked refuses
        for name, (weight, bias) in zip(names, convs):
            state[f"{name}.weight"] = torch.from_numpy(np.array(weight, dtype=np.float32))
            state[f"{name}.bias"] = torch.from_numpy(np.array(bias, dtype=np.float32))
    return checked(state, {}, path)


def checked(state: dict, source: dict, path) -> dict:
    """``state`` (canonical keys) checked against VGG-19, as float32 tensors in network order.

    ``source`` maps a canonical key to the key it is stored under in the file, for messages.
    """
    channels = conv_channels()
    unknown = [key for key in state if not (isinstance(key, str) and _NAMED_KEY.fullmatch(key))]
    if unknown:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {listing(unknown)}); "
                              f"{USE_VGG19}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise LargestyleError(f"weights file {path}: {key} holds a {type(value).__name__}, not a tensor; "
                                  f"{USE_VGG19}")
        if value.is_complex() or value.dtype == torch.bool or value.is_quantized or value.is_meta \
                or value.layout != torch.strided:
            raise LargestyleError(f"weights file {path}: {key} holds {str(value.dtype).removeprefix('torch.')} "
                                  f"values, not plain real numbers; {USE_VGG19}")
    present = [name for name in channels if f"{name}.weight" in state or f"{name}.bias" in state]
    if not present:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (no conv layers found); {USE_VGG19}")
    if present != list(channels)[:len(present)]:
        missing = next(name for name, have in zip(channels, present) if name != have)
        raise LargestyleError(
            f"weights file {path} is not a VGG-19 (it has {', '.join(present)} but not {missing}; "
            f"the convs must run from conv1_1 in network order); {USE_VGG19}")
    out = {}
    for name in present:
        out.update(_conv(name, channels[name], state, source, path))
    return out


def _conv(name: str, channels: tuple[int, int], state: dict, source: dict, path):
    """(key, float32 tensor) of conv ``name``'s weight and bias, checked for shape and finite values."""
    c_in, c_out = channels
    for part, shape in (("weight", (c_out, c_in, 3, 3)), ("bias", (c_out,))):
        key = f"{name}.{part}"
        if key not in state:
            raise LargestyleError(f"weights file {path} has {name} without its {part}; the file is damaged: "
                                  "download or convert it again")
        value = state[key]
        stored = f" (stored as {source[key]})" if key in source and source[key] != key else ""
        if tuple(value.shape) != shape:
            raise LargestyleError(f"weights file {path}: {key}{stored} has shape {tuple(value.shape)}, "
                                  f"VGG-19 needs {shape}; {USE_VGG19}")
        value = value.detach().to(torch.float32).contiguous()
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise LargestyleError(f"weights file {path}: {key}{stored} holds {bad} NaN or infinite "
                                  f"value{'s' if bad > 1 else ''}; the file is damaged: download or convert "
                                  "it again")
        yield key, value
