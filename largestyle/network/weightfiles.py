"""Reading every common VGG-19 weights file into one canonical form.

Canonical form: ``{"conv1_1.weight": (64, 3, 3, 3), "conv1_1.bias": (64,), ...}``,
float32, for the convs the file has (a prefix of conv1_1..conv5_4). Each file also
has a flavour: how its network expects its input, and the loss weights that suit it.

This module decides a file's format and flavour; the pieces live beside it: ``formats``
(the formats, ``WeightsFile``, message words), ``containers`` (torch and pickle files,
read safely), ``layouts`` (each layout to the checked canonical form) and ``compact``
(writing largestyle's own file). Their public names are importable from here too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.errors import LargestyleError, one_line
from ..core.hashing import sha256_of
from .compact import ANOTHER_OUTPUT, write_compact
from .containers import looks_like_plain_pickle, torch_load, unpickle_restricted
from .flavours import FLAVOURS
from .formats import COMPACT_FORMAT, EMPTY, FORMATS, LEGACY_TORCH_MAGIC, USE_VGG19, WeightsFile, cannot_read, \
    is_torch_head, short
from .layouts import checked, describe_keys, from_lasagne, from_torchvision, kind_of, to_torchvision_state

__all__ = ["ANOTHER_OUTPUT", "CAFFE_HEURISTIC_THRESHOLD", "COMPACT_FORMAT", "FLAVOURS", "FORMATS", "KNOWN_SHA256",
           "WeightsFile", "detect_format", "read_weights", "sha256_of", "to_torchvision_state", "write_compact"]

# sha256 prefixes of files whose flavour is known; the Caffe conversion's download
# script re-saves its file, so its hash is not listed.
KNOWN_SHA256 = {"dcbb9e9d": "torchvision"}
# Below this mean |conv1_1 weight| a torchvision-keyed file is taken as the Caffe conversion.
CAFFE_HEURISTIC_THRESHOLD = 0.05


def detect_format(path) -> str:
    """The format of the weights file at ``path`` (reads and checks the whole file)."""
    return read_weights(path).format


def read_weights(path, format: str | None = None) -> WeightsFile:
    """Read and check a VGG-19 weights file; ``format`` forces one of FORMATS.

    Every problem with the file is a ``LargestyleError`` of one line that names ``path``
    as given, says what is wrong and what to do.
    """
    try:
        return _read_weights(os.fspath(path), Path(path), format)
    except LargestyleError as exc:
        text = one_line(str(exc))  # names and keys come from the user and the file
        if text != str(exc):
            raise LargestyleError(text) from None
        raise


def _read_weights(shown: str, path: Path, format: str | None) -> WeightsFile:
    if format is not None and format not in FORMATS:
        raise LargestyleError(f"unknown weights format {format!r}; choose from {', '.join(FORMATS)}")
    sha256, head = _hash_and_head(shown, path)
    if format == "lasagne" and is_torch_head(head):
        raise LargestyleError(f"weights file {shown} is not in the lasagne format: it is a PyTorch file; "
                              "leave out --weights-format to detect its format")
    if format == "lasagne" or (format is None and looks_like_plain_pickle(path, head)):
        state = from_lasagne(unpickle_restricted(path, shown), shown)
        return _result(shown, "lasagne", "lasagne", sha256, state, "Lasagne pickle")
    return _read_torch_file(shown, path, format, sha256)


def _hash_and_head(shown: str, path: Path) -> tuple[str, bytes]:
    """The sha256 and first bytes of the file at ``path``, once it is known to be a regular file, not empty."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise LargestyleError(f"weights file not found: {shown}; check the path") from None
    except OSError as exc:
        raise cannot_read(shown, exc) from None
    if stat.S_ISDIR(mode):
        raise LargestyleError(f"weights file {shown} is a folder; give the path of a weights file (.pth or .pkl)")
    if not stat.S_ISREG(mode):
        raise LargestyleError(f"weights file {shown} is not a regular file (a pipe or a device?); "
                              "give the path of a weights file (.pth or .pkl)")
    try:
        sha256 = sha256_of(path)
        with open(path, "rb") as stream:
            head = stream.read(len(LEGACY_TORCH_MAGIC))
    except OSError as exc:
        raise cannot_read(shown, exc) from None
    if not head:
        raise LargestyleError(f"weights file {shown} {EMPTY}")
    return sha256, head


def _read_torch_file(shown: str, path: Path, format: str | None, sha256: str) -> WeightsFile:
    content = torch_load(path, shown)
    if isinstance(content, dict) and set(content) == {"state_dict"} and isinstance(content["state_dict"], dict):
        content = content["state_dict"]
    if not isinstance(content, dict):
        raise LargestyleError(f"weights file {shown} is not a VGG-19 (it holds a {type(content).__name__}, "
                              f"not a state dict); {USE_VGG19}")
    kind = kind_of(content)
    wanted = {"torchvision": "torchvision", "caffe": "torchvision"}.get(format, format)
    if wanted is not None and kind != wanted:
        raise LargestyleError(f"weights file {shown} is not in the {format} format: it looks like {kind}; "
                              "leave out --weights-format to detect its format")

    if kind == "largestyle":
        flavour = content.get("flavour")
        if flavour not in FLAVOURS:
            raise LargestyleError(f"weights file {shown} names an unknown flavour {short(repr(flavour))}; "
                                  "convert its source again")
        state = content.get("state")
        if not isinstance(state, dict):
            raise LargestyleError(f"weights file {shown} is a largestyle file without a state; "
                                  "convert its source again")
        return _result(shown, "largestyle", flavour, sha256, checked(state, {}, shown), "the file's flavour entry")
    if kind == "named":
        return _result(shown, "named", "gatys", sha256, checked(content, {}, shown), "named keys (vgg_conv.pth)")
    if kind == "torchvision":
        state = from_torchvision(content, shown)
        flavour, chosen_by = _torchvision_flavour(state, sha256, format)
        return _result(shown, flavour, flavour, sha256, state, chosen_by)
    raise LargestyleError(f"weights file {shown} is not a VGG-19 (found {describe_keys(content)}); {USE_VGG19}")


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
