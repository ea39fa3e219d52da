"""The finishing of a rendered output, the same for the command line, batch files and the API."""

from __future__ import annotations

from importlib.util import find_spec

import torch

from ..config.settings import RenderConfig
from ..core.errors import LargestyleError
from ..geometry.pyramid import crop, output_frame, resize
from .colours import transfer_luminance
from .denoise import remove_noise


def check_finishing(config: RenderConfig) -> None:
    """Refuse, before any work, a finishing step this installation cannot do.

    --remove-noise needs scikit-image: a requirement of largestyle, but an installation made
    without its dependencies may lack it.
    """
    if config.remove_noise > 0 and find_spec("skimage") is None:
        raise LargestyleError("--remove-noise needs scikit-image: install it (pip install scikit-image), "
                              "or render without --remove-noise")


def finish_output(image: torch.Tensor, content: torch.Tensor, config: RenderConfig) -> torch.Tensor:
    """The render ``image`` (3, H, W) finished as ``config`` asks, in place; returns it.

    First ``--preserve-colors luminance``: the image keeps its luminance and takes the chroma
    of ``content`` (the (3, h, w) content as the engine took it), cropped and resized to the
    output exactly as the engine does. Then ``--remove-noise``: tiled TV denoising. Values
    stay float in [0, 1]; the writer quantises, so 16-bit outputs keep 16 bits.
    """
    if config.preserve_colors == "luminance":
        shape, box = output_frame(config, *content.shape[-2:])
        if tuple(image.shape[-2:]) != tuple(shape):
            raise ValueError(f"a render of {tuple(image.shape[-2:])} px for an output frame of {shape} px")
        reference = resize(crop(content.reshape(1, *content.shape[-3:]).float(), box), shape)
        transfer_luminance(image, reference[0])
    if config.remove_noise > 0:
        remove_noise(image, config.remove_noise)
    return image
