"""Every crossing between host memory and the device the network runs on.

The engine, its level runners, the objectives, the tilings and the image readers and writers
move tensors between the two only through these functions, so each crossing is named where it
happens, and none hides in an expression. tests/engine/test_fake_device.py renders on a second
device without a GPU, where a tensor left on the wrong side fails at once.
"""

from __future__ import annotations

import torch

HOST = torch.device("cpu")


def to_device(value, device: torch.device | str):
    """``value`` on ``device``: a tensor, a module, or plain data (dicts, lists, tuples) holding tensors.

    A tensor already there is returned as it is, not copied.
    """
    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        return value.to(device)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(item, device) for item in value)
    return value


def to_host(value):
    """``value`` in host memory (see ``to_device``)."""
    return to_device(value, HOST)


def beside(value, other: torch.Tensor):
    """``value`` on the device where ``other`` lives: a window's result going back to the level's buffers."""
    return to_device(value, other.device)
