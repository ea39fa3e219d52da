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
    styles: tuple[torch.Tensor, ...]  # each (3, h, w), blended by --style-blend
    alpha: torch.Tensor | None  # (1, H, W): the content's, to put back on the output
    shape: tuple[int, int]  # the output's (height, width)
    init: torch.Tensor | None = None  # (3, h, w): the --init image, when one is given
    messages: list[Info] = field(default_factory=list)  # what was done to the inputs, for the user


def _name(source) -> str:
    return Path(source).name if isinstance(source, (str, os.PathLike)) else "image"


def style_sources(style) -> tuple:
    """One style image (a path, PIL image or array) or a list or tuple of them, as a tuple."""
    return tuple(style) if isinstance(style, (list, tuple)) else (style,)


def style_roles(styles) -> dict[str, object]:
    """The style images by the role an error names: "style image", or "style image 2" of several."""
    if len(styles) == 1:
        return {"style image": styles[0]}
    return {f"style image {number}": style for number, style in enumerate(styles, 1)}


def load_inputs(content, style, config: RenderConfig) -> Inputs:
    """Read ``content`` and ``style`` (paths, PIL images or arrays; ``style`` may list several, blended
    by --style-blend) for a render with ``config``."""
    styles = style_sources(style)
    config.blend_weights(len(styles))  # refuses a --style-blend of the wrong length before anything is read
    limit = config.max_input_pixels
    needed = None
    if isinstance(content, (str, os.PathLike)):
        width, height = probe_size(content, "content", max_pixels=limit)
        needed = content_side(config, height, width)
    loaded = read_image(content, "content", max_pixels=limit, max_long_side=needed)
    shape, _ = output_frame(config, *loaded.rgb.shape[-2:])
    styles_loaded = [read_image(source, "style", max_pixels=limit, max_long_side=style_side(config, *shape))
                     for source in styles]
    alpha = loaded.alpha
    rgb = loaded.rgb
    if alpha is not None and config.alpha == "composite":
        rgb, alpha = composite(loaded), None
    messages = [Info("input", f"content {_name(content)}: {note}") for note in loaded.notes]
    messages += [Info("input", f"style {_name(source)}: {note}")
                 for source, loaded_style in zip(styles, styles_loaded) for note in loaded_style.notes]
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
    return Inputs(rgb, tuple(composite(loaded_style) for loaded_style in styles_loaded), alpha, shape, init, messages)


def output_alpha(inputs: Inputs, config: RenderConfig) -> torch.Tensor | None:
    """The content's alpha cropped and resized as the content was, to the output's size."""
    if inputs.alpha is None:
        return None
    _, box = output_frame(config, *inputs.alpha.shape[-2:])
    return resize(crop(inputs.alpha, box)[None], inputs.shape)[0]
