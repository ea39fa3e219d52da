"""Reading every common VGG-19 weights file into one canonical form.

Canonical form: ``{"conv1_1.weight": (64, 3, 3, 3), "conv1_1.bias": (64,), ...}``,
float32, for the convs the file has (a prefix of conv1_1..conv5_4). Each file also
has a flavour: how its network expects its input, and the loss weights that suit it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import pickletools
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.atomic import atomic_write, storage_problem
from ..config.settings import WEIGHT_FORMATS
from ..core.errors import LargestyleError
from ..core.faults import kill_point
from .vgg import TORCHVISION_INDEX
from ..core.vgg import conv_channels
from .download import one_line, write_problem
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
# How a write of a converted file may go elsewhere, in the words of `weights convert` and `normalize`.
ANOTHER_OUTPUT = "choose another output file"
# Why a file cannot be read, after "weights file PATH ...": what is wrong, then what to do.
EMPTY = "is empty; download or convert it again"
DAMAGED = "is truncated or damaged (not a complete {kind} file); download or convert it again"
NOT_WEIGHTS = "is not a PyTorch or pickle weights file; give the path of a VGG-19 weights file (.pth or .pkl)"
USE_VGG19 = "give a VGG-19 weights file (`largestyle weights fetch` downloads one)"
NEW_PROTOCOL = ("is saved with pickle protocol {protocol}, which PyTorch's safe loader cannot read; if you trust "
                "it, load it with torch and save it again with torch.save's default protocol")
NEEDS_CODE = ("is a pickle that needs code to load (it refers to {name}), not a plain weights file; "
              "if you trust it, convert it with torch to a state dict first")


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
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise LargestyleError(f"weights file not found: {shown}; check the path") from None
    except OSError as exc:
        raise _cannot_read(shown, exc) from None
    if stat.S_ISDIR(mode):
        raise LargestyleError(f"weights file {shown} is a folder; give the path of a weights file (.pth or .pkl)")
    if not stat.S_ISREG(mode):
        raise LargestyleError(f"weights file {shown} is not a regular file (a pipe or a device?); "
                              "give the path of a weights file (.pth or .pkl)")
    try:
        sha256 = sha256_of(path)
        with open(path, "rb") as stream:
            head = stream.read(len(_LEGACY_TORCH_MAGIC))
    except OSError as exc:
        raise _cannot_read(shown, exc) from None
    if not head:
        raise LargestyleError(f"weights file {shown} {EMPTY}")

    is_torch = head.startswith(_ZIP_MAGIC) or head.startswith(_LEGACY_TORCH_MAGIC)
    if format == "lasagne" and is_torch:
        raise LargestyleError(f"weights file {shown} is not in the lasagne format: it is a PyTorch file; "
                              "leave out --weights-format to detect its format")
    if format == "lasagne" or (format is None and _looks_like_plain_pickle(path, head)):
        state = _from_lasagne(_unpickle_restricted(path, shown), shown)
        return _result(shown, "lasagne", "lasagne", sha256, state, "Lasagne pickle")

    content = _torch_load(path, shown)
    if isinstance(content, dict) and set(content) == {"state_dict"} and isinstance(content["state_dict"], dict):
        content = content["state_dict"]
    if not isinstance(content, dict):
        raise LargestyleError(f"weights file {shown} is not a VGG-19 (it holds a {type(content).__name__}, "
                              f"not a state dict); {USE_VGG19}")
    kind = _kind_of(content)
    wanted = {"torchvision": "torchvision", "caffe": "torchvision"}.get(format, format)
    if wanted is not None and kind != wanted:
        raise LargestyleError(f"weights file {shown} is not in the {format} format: it looks like {kind}; "
                              "leave out --weights-format to detect its format")

    if kind == "largestyle":
        flavour = content.get("flavour")
        if flavour not in FLAVOURS:
            raise LargestyleError(f"weights file {shown} names an unknown flavour {_short(repr(flavour))}; "
                                  "convert its source again")
        state = content.get("state")
        if not isinstance(state, dict):
            raise LargestyleError(f"weights file {shown} is a largestyle file without a state; "
                                  "convert its source again")
        return _result(shown, "largestyle", flavour, sha256, _checked(state, {}, shown), "the file's flavour entry")
    if kind == "named":
        return _result(shown, "named", "gatys", sha256, _checked(content, {}, shown), "named keys (vgg_conv.pth)")
    if kind == "torchvision":
        state = _from_torchvision(content, shown)
        flavour, chosen_by = _torchvision_flavour(state, sha256, format)
        return _result(shown, flavour, flavour, sha256, state, chosen_by)
    raise LargestyleError(f"weights file {shown} is not a VGG-19 (found {_describe_keys(content)}); {USE_VGG19}")


def write_compact(weights: WeightsFile, out_path, elsewhere: str = ANOTHER_OUTPUT) -> Path:
    """Save only the convs, as float32, atomically: temporary file, fsync, rename.

    A write that fails (a full disk, a read-only file system, ...) leaves no temporary
    file and an existing ``out_path`` untouched, and is a one-line ``LargestyleError``
    that ends with ``elsewhere``, the way to write somewhere else.
    """
    path = Path(out_path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LargestyleError(one_line(f"cannot write {os.fspath(out_path)}: directory {parent} does not exist; "
                                       f"create it or {elsewhere}"))
    content = {
        "format": COMPACT_FORMAT,
        "flavour": weights.flavour,
        "source_sha256": weights.sha256,
        "state": {key: value.detach().to(torch.float32).contiguous().clone()
                  for key, value in _checked(weights.state, {}, weights.path).items()},
    }
    try:
        with atomic_write(path) as stream:
            recording = _Recording(stream)
            try:
                torch.save(content, recording)
            except Exception:
                # torch's writer may swallow a failed write and fail later with its own complaint.
                if recording.error is not None:
                    raise recording.error from None
                raise
    except OSError as exc:
        raise LargestyleError(write_problem(out_path, exc, elsewhere)) from None
    return path


class _Recording:
    """A binary stream that keeps the first OSError its writes raised."""

    def __init__(self, stream):
        self.stream = stream
        self.error = None

    def write(self, data) -> int:
        try:
            kill_point("weights-write")
            return self.stream.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self.stream, name)


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


def _torch_load(path: Path, shown: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notes on pickle protocols are not the user's concern
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch.load raises many kinds on files that are not weights; say which case it is
        raise _unreadable(path, shown) from None


def _cannot_read(shown: str, exc: OSError) -> LargestyleError:
    return LargestyleError(f"cannot read weights file {shown}: {storage_problem(exc)}; "
                           "check the path and that the file can be read")


def _unreadable(path: Path, shown: str) -> LargestyleError:
    """Why a file that failed to load is not a weights file, worded for the user."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(len(_LEGACY_TORCH_MAGIC))
            stream.seek(0)
            if not head:
                return LargestyleError(f"weights file {shown} {EMPTY}")
            if head.startswith(_ZIP_MAGIC):
                kind, scan = "PyTorch", _zip_scan(path)
            elif head.startswith(_LEGACY_TORCH_MAGIC):
                # magic number, protocol version, system info, the object, its storage keys; then raw data
                kind, scan = "PyTorch", _pickle_scan(stream, count=5)
            elif _is_pickle_head(head):
                kind, scan = "pickle", _pickle_scan(stream, count=1)
            else:
                scan = None
    except OSError as exc:
        return _cannot_read(shown, exc)
    if scan is None:
        return LargestyleError(f"weights file {shown} {NOT_WEIGHTS}")
    if scan is _DAMAGED:
        return LargestyleError(f"weights file {shown} {DAMAGED.format(kind=kind)}")
    names, protocol = scan
    plain = _plain_globals()
    unsafe = [name for name in names if name not in plain]
    if unsafe:
        return LargestyleError(f"weights file {shown} {NEEDS_CODE.format(name=_short(unsafe[0]))}")
    if kind == "PyTorch" and protocol >= 4:  # its frames are beyond torch's weights-only unpickler
        return LargestyleError(f"weights file {shown} {NEW_PROTOCOL.format(protocol=protocol)}")
    # It parses and needs nothing unusual: the tensors' data must be missing or cut short.
    return LargestyleError(f"weights file {shown} {DAMAGED.format(kind=kind)}")


_DAMAGED = object()  # what the scans below return for a container or pickle that does not parse
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
               "BINUNICODE8"}
_SILENT_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "MARK"}
_LARGEST_PICKLE = 64 << 20  # a state dict's pickle is kilobytes; its tensors' data is stored apart


def _is_pickle_head(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _zip_scan(path: Path):
    """_pickle_scan of a torch.save zip file's pickle; None if it is another kind of zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist()
                       if info.filename == "data.pkl" or info.filename.endswith("/data.pkl")]
            if not members:
                return None
            if members[0].file_size > _LARGEST_PICKLE:
                return _DAMAGED
            data = archive.read(members[0])
    except OSError:
        raise
    except Exception:  # BadZipFile, EOFError, a bad CRC, ...
        return _DAMAGED
    return _pickle_scan(io.BytesIO(data), count=1)


def _pickle_scan(stream, count: int):
    """(the module.name of every global, the highest protocol) of the next ``count`` pickles in
    ``stream``, or _DAMAGED if they do not parse.

    Read statically (nothing is loaded): a pickle's code comes in through its globals.
    """
    names, protocol = [], 0
    for _ in range(count):
        pushed, memo = [], {}
        try:
            for opcode, arg, _position in pickletools.genops(stream):
                op = opcode.name
                if op == "PROTO":
                    protocol = max(protocol, int(arg))
                elif op == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op == "STACK_GLOBAL":
                    module, name = (pushed[-2:] if len(pushed) >= 2 else [None, None])
                    both = isinstance(module, str) and isinstance(name, str)
                    names.append(f"{module}.{name}" if both else "a global it builds at load time")
                if op in _STRING_OPS:
                    pushed.append(arg if isinstance(arg, str) else None)
                elif op in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(arg))
                elif op == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = pushed[-1] if pushed else None
                elif op not in _SILENT_OPS:
                    pushed.append(None)
                del pushed[:-2]
        except OSError:
            raise
        except Exception:  # unknown opcode, exhausted before STOP, a bad argument
            return _DAMAGED
    return names, protocol


def _plain_globals() -> set:
    """What torch's weights-only loader accepts: tensors, storages, ordered dicts, ..."""
    try:
        from torch import _weights_only_unpickler as unpickler

        return set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    except Exception:  # its private helpers moved: take its documented core
        return {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.Size"}


# What a pickle of numpy arrays needs; anything else could run code.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _NeedsCode(Exception):
    """A pickle names a global that weights never need."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream):
        super().__init__(stream, encoding="latin1")

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise _NeedsCode(f"{module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed numpy.core
        return super().find_class(module, name)


def _unpickle_restricted(path: Path, shown: str):
    """The pickle at ``path``, refusing anything but numpy arrays in plain containers (a pickle can run code)."""
    try:
        with open(path, "rb") as stream:
            return _RestrictedUnpickler(stream).load()
    except _NeedsCode as exc:
        raise LargestyleError(f"weights file {shown} {NEEDS_CODE.format(name=_short(str(exc)))}") from None
    except OSError as exc:
        raise _cannot_read(shown, exc) from None
    except Exception:  # truncated, not a pickle, or a pickle of something else
        raise _unreadable(path, shown) from None


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
        places = ",".join(map(str, TORCHVISION_INDEX.values()))
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {_listing(extra)}; "
                              f"VGG-19 convs are at features.{places}); {USE_VGG19}")
    return _checked(state, source, path)


def _from_lasagne(content, path: Path) -> dict:
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
    with np.errstate(all="ignore"):  # values too large for float32 become infinite, which _checked refuses
        for name, (weight, bias) in zip(names, convs):
            state[f"{name}.weight"] = torch.from_numpy(np.array(weight, dtype=np.float32))
            state[f"{name}.bias"] = torch.from_numpy(np.array(bias, dtype=np.float32))
    return _checked(state, {}, path)


def _checked(state: dict, source: dict, path) -> dict:
    """``state`` (canonical keys) checked against VGG-19, as float32 tensors in network order."""
    channels = conv_channels()
    unknown = [key for key in state if not (isinstance(key, str) and _NAMED_KEY.fullmatch(key))]
    if unknown:
        raise LargestyleError(f"weights file {path} is not a VGG-19 (unexpected keys {_listing(unknown)}); "
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
        c_in, c_out = channels[name]
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
            out[key] = value.detach().to(torch.float32).contiguous()
            bad = int((~torch.isfinite(out[key])).sum())
            if bad:
                raise LargestyleError(f"weights file {path}: {key}{stored} holds {bad} NaN or infinite "
                                      f"value{'s' if bad > 1 else ''}; the file is damaged: download or convert "
                                      "it again")
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
    keys = [_short(str(key)) for key in keys]
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _short(text: str, limit: int = 60) -> str:
    """Text taken from a file, cut to fit in a message."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
