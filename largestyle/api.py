"""The Python API: one call renders; the engine below gives finer control."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .engine import events as ev
from .config.settings import RenderConfig, make_config
from .engine.engine import Engine
from .imaging.finish import check_finishing, finish_output
from .io.read import to_pil
from .io.inputs import load_inputs, output_alpha


class LargestyleWarning(UserWarning):
    """A notice from the engine, e.g. that untrained (random) weights are in use."""


def render(content, style, target_size: int = RenderConfig.target_size, *, progress: ev.Callback | None = None,
           output: str = "pil", **options):
    """Paint ``content`` in the style of ``style`` with ``target_size`` px on the long side.

    ``content`` and ``style`` may be file paths, PIL images, or H x W x 3 arrays
    (uint8, uint16, or float in [0, 1]); ``style`` may also be a list of them, whose
    Gram matrices are blended by ``style_blend`` (default: equal weights). ``options`` are the CLI's options with
    underscores (``style_weight=...``, ``tile_size=...``, ``max_memory="4GB"``);
    see ``largestyle.RenderConfig``. ``progress``, if given, receives every
    progress event (``largestyle.events``). Engine notices, such as the
    random-weights fallback, are raised as ``LargestyleWarning``.

    Returns an 8-bit RGB ``PIL.Image`` (save it with ``largestyle.save_image``, which
    embeds the sRGB profile and the dpi, or ``.save("out.png")``); ``output="array"``
    returns an H x W x 3 float32 array in [0, 1] instead, ``output="tensor"`` a
    (3, H, W) float tensor. A content image with transparency gives RGBA (4 channels)
    unless ``alpha="composite"``. Renders larger than RAM need a job directory for their
    memory-mapped buffers: use ``largestyle.run_job``.
    """
    if output not in ("pil", "array", "tensor"):
        raise ValueError(f"output must be 'pil', 'array' or 'tensor', not {output!r}")
    config = make_config(target_size=target_size, **options)
    check_finishing(config)

    def callback(event):
        if isinstance(event, ev.Notice):
            warnings.warn(event.message, LargestyleWarning, stacklevel=5)
        if progress is not None:
            progress(event)

    inputs = load_inputs(content, style, config)
    for message in inputs.messages:
        callback(message)
    image = Engine(config, callback).render(inputs.content, inputs.styles, inputs.init)
    image = finish_output(image, inputs.content, config)
    alpha = output_alpha(inputs, config)
    if alpha is not None:
        image = torch.cat([image, alpha])
    if output == "tensor":
        return image
    if output == "array":
        return np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    return to_pil(image)
