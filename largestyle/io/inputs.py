"""From the user's images to what the engine takes, and the content's alpha back to the output.

The content is read no larger than the output uses (downscaled on load), the style no
larger than the last level uses; both in sRGB. The style is laid over white where it
is transparent. The content's alpha is kept for the output (``--alpha keep``: cropped
and resized as the content is) or the content is laid over white (``composite``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.messages import Info
from ..config.settings import RenderConfig
from .read import composite, probe_size, read_image
from ..geometry.printsize import describe
from ..geometry.pyramid import content_side, crop, output_frame, resize, style_side


@dataclass
class Inputs:
    content: torch.Tensor  # (3, H, W) sRGB in [0, 1], as the engine takes it
    style: torch.Tensor  # (3, h, w)
    alpha: torch.Tensor | None  # (1, H, W): the content's, to put back on the output
    shape: tuple[int, int]  # the output's (height, width)
    init: torch.Tensor | None = None  # (3, h, w): the --init image, when one is given
    messages: list[Info] = field(default_factory=list)  # what was done to the inputs, for the user


def _name(source) -> str:
    return Path(source).name if isinstance(source, (str, os.PathLike)) else "image"


def load_inputs(content, style, config: RenderConfig) -> Inputs:
    """Read ``content`` and ``style`` (paths, PIL images or arrays) for a render with ``config``."""
    limit = config.max_input_pixels
    needed = None
    if isinstance(content, (str, os.PathLike)):
        width, height = probe_size(content, "content", max_pixels=limit)
        needed = content_side(config, height, width)
    loaded = read_image(content, "content", max_pixels=limit, max_long_side=needed)
    shape, _ = output_frame(config, *loaded.rgb.shape[-2:])
    style_loaded = read_image(style, "style", max_pixels=limit, max_long_side=style_side(config, *shape))
    alpha = loaded.alpha
    rgb = loaded.rgb
    if alpha is not None and config.alpha == "composite":
        rgb, alpha = composite(loaded), None
    messages = [Info("input", f"content {_name(content)}: {note}") for note in loaded.notes]
    messages += [Info("input", f"style {_name(style)}: {note}") for note in style_loaded.notes]
    if loaded.alpha is not None:
        messages.append(Info("alpha", "the content's transparency is " + (
            "kept: the output gets its alpha channel" if alpha is not None else "laid over white")))
    size = describe(*shape, config.dpi)
    messages.append(Info("output-size", f"print {config.print_size} ({config.print_fit}): {size}"
                            if config.print_size else f"output {size}"))
    init = None
    if config.init_image is not None:  # the first level's start: read no larger than the output needs
        init_loaded = read_image(config.init_image, "init", max_pixels=limit, max_long_side=max(shape))
        init = composite(init_loaded)
        messages += [Info("input", f"init {_name(config.init_image)}: {note}") for note in init_loaded.notes]
    return Inputs(rgb, composite(style_loaded), alpha, shape, init, messages)


def output_alpha(inputs: Inputs, config: RenderConfig) -> torch.Tensor | None:
    """The content's alpha cropped and resized as the content was, to the output's size."""
    if inputs.alpha is None:
        return None
    _, box = output_frame(config, *inputs.alpha.shape[-2:])
    return resize(crop(inputs.alpha, box)[None], inputs.shape)[0]
