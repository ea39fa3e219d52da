"""Opening a weights file's container: torch.save files (zip or legacy) and plain pickles.

Nothing here runs code from a file: torch's weights-only loader, a pickle reader that
takes numpy arrays only, and for a file that fails to load, a static scan of its pickle
that says why, in words for the user.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..core.errors import LargestyleError
from .formats import (DAMAGED, EMPTY, LEGACY_TORCH_MAGIC, NEEDS_CODE, NEW_PROTOCOL, NOT_WEIGHTS, ZIP_MAGIC,
                      cannot_read, is_torch_head, short)

_DAMAGED = object()  # what the scans below return for a container or pickle that does not parse
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
               "BINUNICODE8"}
_SILENT_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "MARK"}
_LARGEST_PICKLE = 64 << 20  # a state dict's pickle is kilobytes; its tensors' data is stored apart
# What a pickle of numpy arrays needs; anything else could run code.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def looks_like_plain_pickle(path: Path, head: bytes) -> bool:
    if is_torch_head(head):
        return False
    return path.suffix.lower() == ".pkl" or head[:1] == b"\x80"


def torch_load(path: Path, shown: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notes on pickle protocols are not the user's concern
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch.load raises many kinds on files that are not weights; say which case it is
        raise _unreadable(path, shown) from None


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


def unpickle_restricted(path: Path, shown: str):
    """The pickle at ``path``, refusing anything but numpy arrays in plain containers (a pickle can run code)."""
    try:
        with open(path, "rb") as stream:
            return _RestrictedUnpickler(stream).load()
    except _NeedsCode as exc:
        raise LargestyleError(f"weights file {shown} {NEEDS_CODE.format(name=short(str(exc)))}") from None
    except OSError as exc:
        raise cannot_read(shown, exc) from None
    except Exception:  # truncated, not a pickle, or a pickle of something else
        raise _unreadable(path, shown) from None


def _unreadable(path: Path, shown: str) -> LargestyleError:
    """Why a file that failed to load is not a weights file, worded for the user."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(len(LEGACY_TORCH_MAGIC))
            stream.seek(0)
            if not head:
                return LargestyleError(f"weights file {shown} {EMPTY}")
            if head.startswith(ZIP_MAGIC):
                kind, scan = "PyTorch", _zip_scan(path)
            elif head.startswith(LEGACY_TORCH_MAGIC):
                # magic number, protocol version, system info, the object, its storage keys; then raw data
                kind, scan = "PyTorch", _pickle_scan(stream, count=5)
            elif _is_pickle_head(head):
                kind, scan = "pickle", _pickle_scan(stream, count=1)
            else:
                scan = None
    except OSError as exc:
        return cannot_read(shown, exc)
    if scan is None:
        return LargestyleError(f"weights file {shown} {NOT_WEIGHTS}")
    if scan is _DAMAGED:
        return LargestyleError(f"weights file {shown} {DAMAGED.format(kind=kind)}")
    names, protocol = scan
    plain = _plain_globals()
    unsafe = [name for name in names if name not in plain]
    if unsafe:
        return LargestyleError(f"weights file {shown} {NEEDS_CODE.format(name=short(unsafe[0]))}")
    if kind == "PyTorch" and protocol >= 4:  # its frames are beyond torch's weights-only unpickler
        return LargestyleError(f"weights file {shown} {NEW_PROTOCOL.format(protocol=protocol)}")
    # It parses and needs nothing unusual: the tensors' data must be missing or cut short.
    return LargestyleError(f"weights file {shown} {DAMAGED.format(kind=kind)}")


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
