"""Every render setting and its default, in one place.

The CLI builds its options and ``--help`` from the field metadata here, and the
Python API takes the same names as keyword arguments, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from ..core.errors import LargestyleError
from ..core.units import parse_bytes
from . import validation

# Content, style and TV weights. The content and style terms are scale-free (divided by their
# targets' mean squares), so these hold for every weights file. Measured on the demo's pair with
# the random network: at 256 and 512 px the content target's mean square is 1.4-1.6 and the
# style term of the starting image is 10-16x smaller than its unnormalised value, so these
# keep the balance that the earlier defaults (1, 1, 10 on unnormalised terms) gave there.
DEFAULT_LOSS_WEIGHTS = (1.5, 10.0, 10.0)
# Formats of weight files that --weights-format can force (see largestyle.network.weightfiles).
WEIGHT_FORMATS = ("torchvision", "caffe", "lasagne", "named", "largestyle")
# A render saves its in-level progress every this many loss evaluations or seconds,
# whichever comes first (and always at a level's or blend tile's end). A 4096 px
# level state is about 5 GB, so saving every few evaluations would cost more than it saves.
CHECKPOINT_EVALUATIONS = 20
CHECKPOINT_SECONDS = 600.0
# Evaluations over which --tolerance measures a level's relative improvement.
CONVERGENCE_WINDOW = 10
# Share of its --iterations cap that a level used at the default --tolerance, measured by
# bench/bench_convergence.py --pyramid-size 512 on three pairs (docs/benchmarks.md): the first
# level used 155, 300 and 186 of 300, the second 88, 52 and 100 of 100. `plan` estimates times
# with the means, for any --tolerance at least the default (a larger one stops no later on the
# same path); with a smaller one it assumes the cap.
EXPECTED_SHARE = (0.71, 0.80)  # first level, later levels
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
    style_blend: tuple[float, ...] | None = _opt(
        None, "with several style images, the weight of each in the style target, e.g. 3,1 "
              "(each layer's target is the weighted mean of the styles' Gram matrices; default: equal)", list=True)
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
    precision: str = _opt("fp32", "the network's convolutions in fp32, or bf16 (autocast: faster on GPUs with "
                                  "bfloat16 units; Gram sums, losses and the optimiser stay fp32)",
                          choices=("fp32", "bf16"))
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
        validation.validate(self, {name: field.metadata["choices"] for name, field in _FIELDS.items()
                                   if "choices" in field.metadata})


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
    def compute_dtype(self):
        """The convolutions' autocast dtype under --precision (torch.bfloat16), or None for float32."""
        import torch  # here, so that reading and checking options does not load PyTorch

        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def layer_weights(self) -> dict[str, float]:
        """Style layer -> weight; equal weights sum to 1."""
        weights = self.style_layer_weights or (1.0,) * len(self.style_layers)
        total = sum(weights) or 1.0
        return {layer: w / total for layer, w in zip(self.style_layers, weights)}

    def blend_weights(self, styles: int) -> tuple[float, ...]:
        """Each of ``styles`` style images' share of the style target (summing to 1); --style-blend
        must give one weight per style."""
        weights = self.style_blend or (1.0,) * styles
        if len(weights) != styles:
            _bad(f"--style-blend has {len(weights)} weight{'s' if len(weights) != 1 else ''} for {styles} style "
                 f"image{'s' if styles != 1 else ''}; give one weight per style image")
        total = sum(weights)
        return tuple(weight / total for weight in weights)

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
