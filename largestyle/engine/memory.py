"""How much memory optimising an image needs, and how much there is."""

from __future__ import annotations

import functools
import json
import math
import os
import platform
from pathlib import Path

import torch

from ..core.atomic import atomic_write
from ..config.settings import CPU_RAM_SHARE, CUDA_FREE_SHARE
from ..config.validation import MIN_TILE
from ..core.transfer import to_device
from ..core.errors import LargestyleError
from ..network.vgg import VGG19Features
from ..core.vgg import GRID, channels, deepest_of, stride
from ..core.version import __version__
from ..network.recording import Recording

# Image-sized float buffers besides the network's activations: L-BFGS keeps two per
# history entry; the image, its gradient, the best point, the search direction, the
# previous gradient and the content image make six more.
FIXED_IMAGE_BUFFERS = 6
# Buffers of the whole level that a blend-tiled level keeps: canvas, padded canvas and
# content, the accumulator's sums (3 + 1 channels), the level content and the result.
BLEND_CANVAS_BUFFERS = 8
# Image-sized buffers that stay in RAM when a level's buffers are memory-mapped files:
# the level's content, the gradient and the line search's copies of it (blend: the
# padded canvases on their way to the files, and the blended result).
MAPPED_RESIDENT_BUFFERS = 4
# Backward-pass temporaries (gradients of the widest layers, allocator slack), as a
# multiple of one 64-channel activation.
TRANSIENT_ACTIVATIONS = 4
# A forward pass without gradients holds about this many 64-channel activations at once.
FORWARD_ACTIVATIONS = 3


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LargestyleError(f"--device {name}: no CUDA device is available here (use --device cpu)")
    return device


def is_out_of_memory(exc: BaseException) -> bool:
    """True for host or device out-of-memory errors, which PyTorch raises in several forms."""
    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.OutOfMemoryError))
            or any(sign in text for sign in ("out of memory", "can't allocate memory", "not enough memory")))


def available_ram() -> int:
    """MemAvailable from /proc/meminfo, or free physical pages where that is missing."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget(device: torch.device, override: int | None = None) -> int:
    """Bytes a level may use: ``override``, else a share of free GPU memory or available RAM."""
    if override:
        return override
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_FREE_SHARE)
    return int(available_ram() * CPU_RAM_SHARE)


CALIBRATION_FILE = "calibration.json"


def calibration_path() -> Path:
    """Where measured calibrations are kept between runs: $XDG_CACHE_HOME/largestyle (or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "largestyle" / CALIBRATION_FILE


@functools.lru_cache(maxsize=None)
def saved_bytes_per_pixel(layers: tuple[str, ...], pooling: str, device_type: str, dtype: torch.dtype,
                          compute_dtype: torch.dtype | None = None) -> float:
    """``measure_saved_bytes_per_pixel``, kept per device, dtypes and versions in the calibration file."""
    device_name = torch.cuda.get_device_name() if device_type == "cuda" else platform.machine()
    key = "|".join((device_type, device_name, str(dtype), str(compute_dtype), torch.__version__, __version__, pooling,
                    ",".join(layers)))
    path = calibration_path()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict) or not isinstance(known.get(key), (int, float)):
        known = known if isinstance(known, dict) else {}
        known[key] = measure_saved_bytes_per_pixel(layers, pooling, device_type, dtype, compute_dtype)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as stream:
                stream.write(json.dumps(known, indent=1).encode())
        except OSError:
            pass  # an unwritable cache only costs a re-measurement next time
    return float(known[key])


def measure_saved_bytes_per_pixel(layers: tuple[str, ...], pooling: str, device_type: str,
                                  dtype: torch.dtype, compute_dtype: torch.dtype | None = None) -> float:
    """Bytes an evaluation keeps per input pixel until its backward pass, measured.

    Counts the distinct storages that autograd saves while the network's pass is recorded,
    and the features the losses read (float32 copies under --precision bf16), at two sizes;
    the difference divided by the pixel difference removes the size-independent part
    (weights). Memory layout, not weight values, decides this, so an untrained network of
    the same shape serves.
    """
    network = to_device(VGG19Features(deepest_of(layers), pooling), device_type).to(dtype)
    network.compute_dtype = compute_dtype

    def saved_bytes(side: int) -> int:
        storages = {}

        def keep(tensor):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()

        def pack(tensor):
            keep(tensor)
            return tensor

        x = torch.rand(1, 3, side, side, device=device_type, dtype=dtype)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            recording = Recording(network, x, layers)
        for features in recording.features.values():
            keep(features)
        return sum(storages.values())

    small, large = 64, 128
    return (saved_bytes(large) - saved_bytes(small)) / (large ** 2 - small ** 2)


@functools.lru_cache(maxsize=None)
def network_bytes(layers: tuple[str, ...], pooling: str) -> int:
    network = VGG19Features(deepest_of(layers), pooling)
    return sum(p.numel() * 4 for p in network.parameters())


def content_cache_per_pixel(content_layers: tuple[str, ...], element: int) -> float:
    """Bytes per image pixel of exact tiling's cached content targets: each layer's channels at its stride.

    relu4_2: 512 channels at stride 8, so 512 / 64 x 4 = 32 bytes per pixel in float32;
    relu2_1: 128 channels at stride 2, 128 bytes per pixel.
    """
    return sum(channels(layer) / stride(layer) ** 2 * element for layer in content_layers)


# The most pixels one network pass may take: its widest activation (64 channels after conv1)
# stays under 2^31 elements, past which some PyTorch and cuDNN kernels fail or fall back to
# slow 64-bit indexing. Only a GPU's budget reaches it (a whole 8192 x 4096 level).
MAX_PASS_PIXELS = (2**31 - 1) // 64
MAX_PASS_SIDE = math.isqrt(MAX_PASS_PIXELS) // GRID * GRID


class MemoryModel:
    """Estimated peak bytes of optimising an image of a given size, for one device, dtype and precision.

    Other transient buffers are counted at ``dtype``'s size whatever the precision, which
    keeps bf16's estimates on the safe side.
    """

    def __init__(self, layers, pooling: str, device: torch.device, history_size: int,
                 dtype: torch.dtype = torch.float32, content_layers=(), compute_dtype: torch.dtype | None = None):
        layers = tuple(layers)
        element = torch.finfo(dtype).bits // 8
        self.content_cache_per_pixel = content_cache_per_pixel(tuple(content_layers), element)
        # Measured with the convolutions in --precision's dtype: bf16 keeps half the activations.
        self.activation_per_pixel = saved_bytes_per_pixel(layers, pooling, device.type, dtype, compute_dtype)
        self.transient_per_pixel = TRANSIENT_ACTIVATIONS * 64 * element
        self.forward_per_pixel = FORWARD_ACTIVATIONS * 64 * element
        self.image_per_pixel = (2 * history_size + FIXED_IMAGE_BUFFERS) * 3 * element
        self.fixed = network_bytes(layers, pooling)
        self.element = element
        self.on_cpu = device.type == "cpu"

    @property
    def per_pixel(self) -> float:
        return self.activation_per_pixel + self.transient_per_pixel + self.image_per_pixel

    def optimise_bytes(self, height: int, width: int) -> int:
        """Peak bytes to optimise a height x width image (or tile) in one piece."""
        return int(self.fixed + height * width * self.per_pixel)

    def forward_bytes(self, height: int, width: int) -> int:
        """Peak bytes of a forward pass without gradients (style and content targets)."""
        return int(self.fixed + height * width * self.forward_per_pixel)

    def largest_forward_core(self, budget: int, context: int) -> int:
        """Largest core side (a multiple of 16, at least 16) whose window with ``context`` fits a forward pass."""
        room = max(0.0, (budget - self.fixed) / self.forward_per_pixel)
        return max(GRID, (min(int(room ** 0.5), MAX_PASS_SIDE) - 2 * context) // GRID * GRID)

    @staticmethod
    def one_pass(height: int, width: int) -> bool:
        """Whether a height x width image may go through the network in one pass (MAX_PASS_PIXELS)."""
        return height * width <= MAX_PASS_PIXELS

    def style_image_bytes(self, height: int, width: int) -> int:
        """A style image resized for a level: float32 RGB, and as much again for the resize's intermediate."""
        return int(height * width * 2 * 3 * 4)

    def canvas_bytes(self, height: int, width: int) -> int:
        """Bytes of the whole-level buffers that blend tiling keeps beside one tile."""
        return height * width * 3 * self.element * BLEND_CANVAS_BUFFERS

    def buffer_bytes(self, height: int, width: int) -> int:
        """Bytes of a whole optimisation's image-sized buffers: point, gradient, L-BFGS history."""
        return int(height * width * self.image_per_pixel)

    def resident_bytes(self, height: int, width: int) -> int:
        """What a level whose buffers are memory-mapped still keeps in the budget.

        On the CPU, a few image-sized buffers stay in RAM (MAPPED_RESIDENT_BUFFERS); on an
        accelerator they are in host memory, outside the device's budget.
        """
        return height * width * 3 * self.element * MAPPED_RESIDENT_BUFFERS if self.on_cpu else 0

    def tiled_bytes(self, height: int, width: int, tile: int, mapped: bool = False) -> int:
        """Peak bytes of a blend-tiled height x width level with square tiles of side ``tile``."""
        canvas = self.resident_bytes(height, width) if mapped else self.canvas_bytes(height, width)
        return canvas + self.optimise_bytes(tile, tile)

    def level_bytes(self, height: int, width: int, cache_content: bool = True) -> int:
        """Whole-level buffers of exact tiling: image, gradient, L-BFGS history, cached content targets."""
        content_cache = self.content_cache_per_pixel if cache_content else 0
        return int(height * width * (self.image_per_pixel + content_cache))

    def window_bytes(self, core: int, context: int) -> int:
        """One exact-tiling window's backward pass, the network's weights included."""
        return int(self.fixed + (core + 2 * context) ** 2 * (self.activation_per_pixel + self.transient_per_pixel))

    def exact_bytes(self, height: int, width: int, core: int, context: int, cache_content: bool = True,
                    on_host: bool = False, mapped: bool = False) -> int:
        """Peak device bytes of an exact-tiled level: one window, plus the level's buffers unless on the host."""
        if mapped:
            level = self.resident_bytes(height, width)
        else:
            level = 0 if on_host else self.level_bytes(height, width, cache_content)
        return self.window_bytes(core, context) + level

    def largest_core(self, height: int, width: int, budget: int, context: int, cache_content: bool = True,
                     host_budget: int | None = None, mapped: bool = False) -> int | None:
        """Largest exact-tiling core (a multiple of 16) whose window fits the device budget.

        The level's buffers share the device budget, or with ``host_budget`` they are
        kept in host memory and must fit there instead, or ``mapped`` they are files.
        """
        level = self.level_bytes(height, width, cache_content)
        if mapped:
            level = self.resident_bytes(height, width)
        elif host_budget is not None:
            if level > host_budget:
                return None
            level = 0
        room = budget - self.fixed - level
        if room <= 0:
            return None
        side = min(int((room / (self.activation_per_pixel + self.transient_per_pixel)) ** 0.5), MAX_PASS_SIDE)
        side = (side - 2 * context) // GRID * GRID
        return side if side >= GRID else None

    def largest_tile(self, height: int, width: int, budget: int, multiple: int = GRID,
                     mapped: bool = False) -> int | None:
        """Largest square tile side (a multiple of ``multiple``, at least MIN_TILE) that fits, or None."""
        room = budget - self.tiled_bytes(height, width, 0, mapped)  # the canvases and the weights
        if room <= 0:
            return None
        side = min(int((room / self.per_pixel) ** 0.5), MAX_PASS_SIDE) // multiple * multiple
        return side if side >= MIN_TILE else None
