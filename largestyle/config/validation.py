"""The checks a RenderConfig runs on itself: each raises a one-line LargestyleError naming the option."""

from __future__ import annotations

import math
import re

from ..core.errors import LargestyleError
from ..core.vgg import GRID, LAYER_NAMES
from ..geometry.printsize import parse_print_size, print_pixels

# Smallest tile side: smaller tiles are mostly border, where VGG's deep layers see only padding.
MIN_TILE = 32
# Largest output long side: 128k px, far beyond any print (a 300 dpi print 10 m long is 118k px).
MAX_SIDE = 1 << 17
# Largest loss or layer weight: the float32 loss stays finite with room for the terms' own size.
MAX_WEIGHT = 1e12
# Seeds are what torch.Generator.manual_seed takes without wrapping.
MAX_SEED = 2**63 - 1


def validate(config, options: dict[str, tuple]) -> None:
    """Raise for the first setting of ``config`` out of range; ``options``: each option's choices."""
    whole_numbers(config)
    real_numbers(config)
    layers(config)
    machine(config)
    output(config)
    choices(config, options)


def whole_numbers(config) -> None:
    for name, low in (("target_size", 16), ("iterations", 1), ("first_level_factor", 1),
                      ("history_size", 1), ("passes", 1), ("seed", 0), ("max_input_pixels", 1)):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            _bad(f"--{name.replace('_', '-')} must be a whole number of at least {low}, got {value!r}")
    if config.target_size > MAX_SIDE:
        _bad(f"--target-size must be at most {MAX_SIDE} px, got {config.target_size}")
    if config.seed > MAX_SEED:
        _bad(f"--seed must be at most {MAX_SEED}, got {config.seed}")


def real_numbers(config) -> None:
    for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "dpi"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            _bad(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    for name in ("content_weight", "style_weight", "tv_weight"):
        value = getattr(config, name)
        if value is not None and not 0 <= value <= MAX_WEIGHT:
            _bad(f"--{name.replace('_', '-')} must be between 0 and {MAX_WEIGHT:g}, got {value:g}")
    for name in ("learning_rate", "tolerance", "remove_noise"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _bad(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    if not 0 < config.learning_rate <= 1:
        _bad(f"--learning-rate must be above 0 and at most 1, got {config.learning_rate:g}")
    if not 0 <= config.tolerance < 1:
        _bad(f"--tolerance must be at least 0 and below 1, got {config.tolerance:g}")
    if not 0 <= config.remove_noise <= 10:
        _bad(f"--remove-noise must be from 0 (off) to 10, got {config.remove_noise:g}")
    if not 0 < config.style_scale <= 64:
        _bad(f"--style-scale must be above 0 and at most 64, got {config.style_scale:g}")


def layers(config) -> None:
    for layer in config.content_layers + config.style_layers:
        if layer not in LAYER_NAMES:
            _bad(f"unknown layer {layer!r}; choose from {', '.join(LAYER_NAMES)}")
    if not config.style_layers and not config.content_layers:
        _bad("at least one content or style layer is needed")
    for option, layers in (("--content-layers", config.content_layers), ("--style-layers", config.style_layers)):
        if len(set(layers)) != len(layers):
            _bad(f"{option} names a layer twice: {','.join(layers)}")
    if config.style_layer_weights is not None and len(config.style_layer_weights) != len(config.style_layers):
        _bad(f"--style-layer-weights has {len(config.style_layer_weights)} values "
             f"for {len(config.style_layers)} style layers")
    for option, weights in (("--style-layer-weights", config.style_layer_weights),
                            ("--style-blend", config.style_blend)):
        if weights is not None and not proportions(weights):
            _bad(f"{option} must be finite numbers from 0 to {MAX_WEIGHT:g}, not all zero, "
                 f"got {','.join(map(str, weights)) or 'none'}")


def machine(config) -> None:
    """Tiles, memory budgets and the device."""
    if config.tile_size is not None and (config.tile_size < MIN_TILE or config.tile_size % GRID):
        _bad(f"--tile-size must be a multiple of {GRID} and at least {MIN_TILE}, got {config.tile_size}")
    if config.max_memory is not None and config.max_memory <= 0:
        _bad("--max-memory must be positive")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", config.device):
        _bad(f"--device must be auto, cpu, cuda or cuda:N, got {config.device!r}")
    if config.max_ram is not None and config.max_ram <= 0:
        _bad("--max-ram must be positive")


def output(config) -> None:
    """Resolution, JPEG quality and print size."""
    if not 0 < config.dpi <= 100_000:
        _bad(f"--dpi must be a positive number of pixels per inch, got {config.dpi}")
    if not 1 <= config.jpeg_quality <= 100:
        _bad(f"--jpeg-quality must be 1-100, got {config.jpeg_quality}")
    if config.print_size is not None:
        size = parse_print_size(config.print_size)  # raises with an example of the form
        longest = max(print_pixels(size, config.dpi))
        if longest > MAX_SIDE:
            _bad(f"--print-size {config.print_size} at {config.dpi:g} dpi is {longest} px on its long side, more than "
                 f"{MAX_SIDE}; choose a smaller --print-size or a lower --dpi")


def choices(config, options: dict[str, tuple]) -> None:
    """--init names something, and each option with choices holds one of ``options[name]``."""
    if not isinstance(config.init, str) or not config.init.strip():
        _bad(f"--init must be content, noise or an image file, got {config.init!r}")
    for name in ("optimizer", "preserve_colors", "pooling", "precision", "tiling", "weights_format", "print_fit",
                 "alpha", "bit_depth"):
        allowed = options[name]
        if getattr(config, name) not in allowed + ((None,) if name == "weights_format" else ()):
            _bad(f"--{name} must be one of {', '.join(map(str, allowed))}")


def proportions(weights) -> bool:
    """Whether ``weights`` are finite, non-negative, at most MAX_WEIGHT and not all zero."""
    return all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and 0 <= w <= MAX_WEIGHT
               for w in weights) and sum(weights) > 0


def _bad(message: str):
    raise LargestyleError(message)
