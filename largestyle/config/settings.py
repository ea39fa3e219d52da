"""Every render setting and its default, in one place.

The CLI builds its options and ``--help`` from the field metadata here, and the
Python API takes the same names as keyword arguments, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields

from ..core.errors import LargestyleError
from ..core.units import parse_bytes
from ..core.vgg import GRID, LAYER_NAMES
from ..geometry.printsize import parse_print_size, print_pixels

# Content, style and TV weights. The content and style terms are scale-free (divided by their
# targets' mean squares), so these hold for every weights file. Measured on the demo's pair with
# the random network: at 256 and 512 px the content target's mean square is 1.4-1.6 and the
# style term of the starting image is 10-16x smaller than its unnormalised value, so these
# keep the balance that the earlier defaults (1, 1, 10 on unnormalised terms) gave there.
DEFAULT_LOSS_WEIGHTS = (1.5, 10.0, 10.0)
# Formats of weight files that --weights-format can force (see largestyle.network.weightfiles).
WEIGHT_FORMATS = ("torchvision", "caffe", "lasagne", "named", "largestyle")
# Smallest tile side: smaller tiles are mostly border, where VGG's deep layers see only padding.
MIN_TILE = 32
# A render saves its in-level progress every this many loss evaluations or seconds,
# whichever comes first (and always at a level's or blend tile's end). A 4096 px
# level state is about 5 GB, so saving every few evaluations would cost more than it saves.
CHECKPOINT_EVALUATIONS = 20
CHECKPOINT_SECONDS = 600.0
# Largest output long side: 128k px, far beyond any print (a 300 dpi print 10 m long is 118k px).
MAX_SIDE = 1 << 17
# Largest loss or layer weight: the float32 loss stays finite with room for the terms' own size.
MAX_WEIGHT = 1e12
# Seeds are what torch.Generator.manual_seed takes without wrapping.
MAX_SEED = 2**63 - 1
# Evaluations over which --tolerance measures a level's relative improvement.
CONVERGENCE_WINDOW = 10
# Default memory budgets: shares of the free GPU memory, or of the RAM available on the CPU.
CUDA_FREE_SHARE = 0.8
CPU_RAM_SHARE = 0.5
# Output file formats by extension.
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

def _opt(default, help: str, **extra):
    """A field whose metadata also describes its command-line option."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class RenderConfig:
    """Settings of one render. Immutable; use ``dataclasses.replace`` to vary."""

    target_size: int = _opt(512, "long side of the output in pixels")
    content_weight: float | None = _opt(
        None, f"weight of the content loss, relative to its target's mean square (default: {DEFAULT_LOSS_WEIGHTS[0]:g})")
    style_weight: float | None = _opt(
        None, f"weight of the style loss, relative to each layer's target Gram (default: {DEFAULT_LOSS_WEIGHTS[1]:g})")
    tv_weight: float | None = _opt(
        None, f"weight of the total-variation (smoothness) loss (default: {DEFAULT_LOSS_WEIGHTS[2]:g})")
    style_scale: float = _opt(1.0, "style image long side as a multiple of each level's long side")
    content_layers: tuple[str, ...] = _opt(("relu4_2",), "VGG-19 layers for the content loss", list=True)
    style_layers: tuple[str, ...] = _opt(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "VGG-19 layers for the style loss", list=True)
    style_layer_weights: tuple[float, ...] | None = _opt(
        None, "relative weight of each style layer (default: equal)", list=True)
    init: str = _opt("content", "start of the first level: content, noise (seeded by --seed), or an image file "
                                "(e.g. an earlier render), resized to the first level")
    optimizer: str = _opt("lbfgs", "optimiser of each level: lbfgs, or adam (first-order, steps of --learning-rate)",
                          choices=("lbfgs", "adam"))
    learning_rate: float = _opt(0.02, "Adam's step size, in image units (pixels in [0, 1]); only with --optimizer adam")
    # 0.001: the largest tolerance whose final loss stayed within 1% of the full budget's on three
    # pairs at two sizes, while saving 39% of the evaluations (bench/bench_convergence.py).
    tolerance: float = _opt(0.001, "a level ends early once its best loss has improved by less than this fraction "
                                   f"over the last {CONVERGENCE_WINDOW} evaluations (0: every level runs all its "
                                   "--iterations)")
    pooling: str = _opt("avg", "VGG-19 pooling", choices=("avg", "max"))
    iterations: int = _opt(100, "loss evaluations per level (per tile and pass when tiled)")
    first_level_factor: int = _opt(3, "the first (smallest) level gets this many times --iterations")
    history_size: int = _opt(16, "L-BFGS history length")
    tiling: str = _opt("auto", "how a level over the memory budget is tiled: exact (one optimisation, loss and "
                       "gradient computed per tile), blend (tiles optimised apart, feathered together) or auto "
                       "(exact where its whole-level buffers fit the budget, else blend)",
                       choices=("auto", "exact", "blend"))
    passes: int = _opt(3, "blend passes over a tiled level; the grid shifts between passes")
    tile_size: int | None = _opt(None, "tile side (exact: core side) in pixels, a multiple of 16 "
                                 "(default: largest that fits --max-memory)")
    max_memory: int | None = _opt(
        None, f"memory budget, e.g. 4GB (default: {CUDA_FREE_SHARE * 100:.0f}%% of free GPU memory, or "
              f"{CPU_RAM_SHARE * 100:.0f}%% of available RAM on CPU)",
        parse=parse_bytes)
    max_ram: int | None = _opt(
        None, "RAM for a level's own buffers (image, gradient, L-BFGS history, blend canvases), e.g. 8GB; a level "
              f"needing more keeps them in memory-mapped files in the job directory (default: {CPU_RAM_SHARE * 100:.0f}%% of available "
              "RAM)",
        parse=parse_bytes)
    print_size: str | None = _opt(
        None, "physical output size, e.g. 24x36in or 60x90cm: with --dpi it sets the pixel size (instead of "
              "--target-size), turned to the content's orientation")
    print_fit: str = _opt("inside", "how the content meets --print-size: inside (the whole content, within the "
                                    "print) or crop (fill the print exactly, cropping the content's centre)",
                          choices=("inside", "crop"))
    dpi: float = _opt(300.0, "pixels per inch: written into the output file, and used by --print-size")
    bit_depth: int = _opt(8, "bits per channel of the output: 16 needs .tif or .png", choices=(8, 16), output=True)
    jpeg_quality: int = _opt(95, "JPEG quality, 1-100 (JPEGs are written without chroma subsampling)", output=True)
    alpha: str = _opt("keep", "a content image's transparency: keep (the output gets it back, at the output's "
                              "size) or composite (the content is laid over white and the output is opaque)",
                      choices=("keep", "composite"))
    max_input_pixels: int = _opt(1_000_000_000, "largest input image accepted, in pixels (width x height); "
                                                "larger files are refused before decoding")
    preserve_colors: str = _opt(
        "none", "keep the content's colours: luminance (the render's luminance with the content's chroma, in YIQ) or "
                "histogram (the style image's colours matched to the content's mean and covariance first)",
        choices=("none", "luminance", "histogram"))
    remove_noise: float = _opt(0.0, "after rendering, total-variation denoising of this weight (scikit-image's "
                                    "denoise_tv_chambolle, e.g. 0.02; 0: off)", output=True)
    seed: int = _opt(0, "seed for noise initialisation")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N")
    weights: str | None = _opt(
        None, "VGG-19 weights file, or 'random' (default: search weights/ and the torch hub cache)")
    weights_format: str | None = _opt(
        None, "format of --weights (default: detected)", choices=WEIGHT_FORMATS)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise a one-line LargestyleError naming the option for the first setting out of range."""
        self._check_whole_numbers()
        self._check_real_numbers()
        self._check_layers()
        self._check_machine()
        self._check_output()
        self._check_choices()

    def _check_whole_numbers(self) -> None:
        for name, low in (("target_size", 16), ("iterations", 1), ("first_level_factor", 1),
                          ("history_size", 1), ("passes", 1), ("seed", 0), ("max_input_pixels", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                _bad(f"--{name.replace('_', '-')} must be a whole number of at least {low}, got {value!r}")
        if self.target_size > MAX_SIDE:
            _bad(f"--target-size must be at most {MAX_SIDE} px, got {self.target_size}")
        if self.seed > MAX_SEED:
            _bad(f"--seed must be at most {MAX_SEED}, got {self.seed}")

    def _check_real_numbers(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "dpi"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                _bad(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_WEIGHT:
                _bad(f"--{name.replace('_', '-')} must be between 0 and {MAX_WEIGHT:g}, got {value:g}")
        for name in ("learning_rate", "tolerance", "remove_noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                _bad(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        if not 0 < self.learning_rate <= 1:
            _bad(f"--learning-rate must be above 0 and at most 1, got {self.learning_rate:g}")
        if not 0 <= self.tolerance < 1:
            _bad(f"--tolerance must be at least 0 and below 1, got {self.tolerance:g}")
        if not 0 <= self.remove_noise <= 10:
            _bad(f"--remove-noise must be from 0 (off) to 10, got {self.remove_noise:g}")
        if not 0 < self.style_scale <= 64:
            _bad(f"--style-scale must be above 0 and at most 64, got {self.style_scale:g}")

    def _check_layers(self) -> None:
        for layer in self.content_layers + self.style_layers:
            if layer not in LAYER_NAMES:
                _bad(f"unknown layer {layer!r}; choose from {', '.join(LAYER_NAMES)}")
        if not self.style_layers and not self.content_layers:
            _bad("at least one content or style layer is needed")
        for option, layers in (("--content-layers", self.content_layers), ("--style-layers", self.style_layers)):
            if len(set(layers)) != len(layers):
                _bad(f"{option} names a layer twice: {','.join(layers)}")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                _bad(f"--style-layer-weights has {len(self.style_layer_weights)} values "
                     f"for {len(self.style_layers)} style layers")
            if not all(isinstance(w, (int, float)) and math.isfinite(w) and 0 <= w <= MAX_WEIGHT
                       for w in self.style_layer_weights) or not sum(self.style_layer_weights) > 0:
                _bad(f"--style-layer-weights must be finite numbers from 0 to {MAX_WEIGHT:g}, not all zero")

    def _check_machine(self) -> None:
        """Tiles, memory budgets and the device."""
        if self.tile_size is not None and (self.tile_size < MIN_TILE or self.tile_size % GRID):
            _bad(f"--tile-size must be a multiple of {GRID} and at least {MIN_TILE}, got {self.tile_size}")
        if self.max_memory is not None and self.max_memory <= 0:
            _bad("--max-memory must be positive")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            _bad(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.max_ram is not None and self.max_ram <= 0:
            _bad("--max-ram must be positive")

    def _check_output(self) -> None:
        """Resolution, JPEG quality and print size."""
        if not 0 < self.dpi <= 100_000:
            _bad(f"--dpi must be a positive number of pixels per inch, got {self.dpi}")
        if not 1 <= self.jpeg_quality <= 100:
            _bad(f"--jpeg-quality must be 1-100, got {self.jpeg_quality}")
        if self.print_size is not None:
            size = parse_print_size(self.print_size)  # raises with an example of the form
            longest = max(print_pixels(size, self.dpi))
            if longest > MAX_SIDE:
                _bad(f"--print-size {self.print_size} at {self.dpi:g} dpi is {longest} px on its long side, more than "
                     f"{MAX_SIDE}; choose a smaller --print-size or a lower --dpi")

    def _check_choices(self) -> None:
        if not isinstance(self.init, str) or not self.init.strip():
            _bad(f"--init must be content, noise or an image file, got {self.init!r}")
        for name in ("optimizer", "preserve_colors", "pooling", "tiling", "weights_format", "print_fit",
                     "alpha", "bit_depth"):
            choices = _FIELDS[name].metadata["choices"]
            if getattr(self, name) not in choices + ((None,) if name == "weights_format" else ()):
                _bad(f"--{name} must be one of {', '.join(choices)}")

    @property
    def init_image(self) -> str | None:
        """The --init image file, or None when the first level starts from the content or noise."""
        return None if self.init in ("content", "noise") else self.init

    def input_files(self) -> dict[str, str]:
        """The files besides the content and style that a render reads, by role: weights, an --init image."""
        files = {"weights file": self.weights} if self.weights not in (None, "random") else {}
        return {**files, **({"init image": self.init_image} if self.init_image else {})}

    @property
    def size_options(self) -> str:
        """The options that set the output's size, as advice should name them."""
        return "--print-size (or --dpi)" if self.print_size else "--target-size"

    @property
    def layer_weights(self) -> dict[str, float]:
        """Style layer -> weight; equal weights sum to 1."""
        weights = self.style_layer_weights or (1.0,) * len(self.style_layers)
        total = sum(weights) or 1.0
        return {layer: w / total for layer, w in zip(self.style_layers, weights)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in fields(RenderConfig)}


def _bad(message: str):
    raise LargestyleError(message)


def output_only(name: str, settings: dict) -> bool:
    """Whether a setting changes only how the output file is written, not the render, given all ``settings``.

    --dpi is written into the file, and sizes the output only with --print-size.
    """
    if name == "dpi":
        return settings.get("print_size") is None
    return bool(_FIELDS[name].metadata.get("output"))


def option_fields():
    """The fields that are command-line options, in declaration order."""
    return fields(RenderConfig)


def make_config(**options) -> RenderConfig:
    """Build a config from keyword options, with a clear error for unknown names."""
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise LargestyleError(f"unknown option(s): {', '.join(unknown)}")
    converted = {}
    for name, value in options.items():
        meta = _FIELDS[name].metadata
        if value is not None and "parse" in meta:
            value = meta["parse"](value)
        if value is not None and meta.get("list") and not isinstance(value, tuple):
            value = tuple(value)
        converted[name] = value
    return RenderConfig(**converted)
