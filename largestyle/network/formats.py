"""What every weights-file module shares: the formats, a read file, and the words of their messages.

Canonical form: ``{"conv1_1.weight": (64, 3, 3, 3), "conv1_1.bias": (64,), ...}``,
float32, for the convs the file has (a prefix of conv1_1..conv5_4).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.settings import WEIGHT_FORMATS
from ..core.atomic import storage_problem
from ..core.errors import LargestyleError
from ..core.vgg import conv_channels

FORMATS = WEIGHT_FORMATS
# The "format" entry of the compact features-only files that `weights convert|normalize|fetch` write.
COMPACT_FORMAT = "largestyle-vgg19"
ZIP_MAGIC = b"PK\x03\x04"
# torch.save's legacy (non-zip) format starts by pickling this magic number (protocol 2).
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
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


def is_torch_head(head: bytes) -> bool:
    """Whether a file's first bytes are those of a torch.save file (zip or legacy)."""
    return head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_MAGIC)


def cannot_read(shown: str, exc: OSError) -> LargestyleError:
    return LargestyleError(f"cannot read weights file {shown}: {storage_problem(exc)}; "
                           "check the path and that the file can be read")


def listing(keys, limit: int = 4) -> str:
    keys = [short(str(key)) for key in keys]
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def short(text: str, limit: int = 60) -> str:
    """Text taken from a file, cut to fit in a message."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
