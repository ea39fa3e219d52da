"""A second device on a CPU-only machine: tensors "on the accelerator" that compute on the CPU and refuse to mix.

The accelerator is PyTorch's ``meta`` device, the one device besides the CPU that a CPU-only
build can name and guard. Inside ``FakeAccelerator()``, a tensor made on or moved to it is an
``OnAccelerator``: its data is an ordinary CPU tensor, but it reports ``device='meta'``, its
results stay on the fake device, and an operation that mixes it with a host tensor (other than a 0-dimensional one, which
PyTorch takes as a scalar) raises ``MixedDevices``, as CUDA would. Copies between the two (``.to``,
``.cpu()``, ``copy_``) are the only crossings, and ``crossings`` counts them. So code that
renders correctly on this device keeps every tensor on the side it belongs, without a GPU.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

ACCELERATOR = torch.device("meta")
HOST = torch.device("cpu")
aten = torch.ops.aten
# Copies: the only operations allowed to take tensors on both sides.
CROSSING = {aten.copy_.default, aten._to_copy.default, aten._copy_from.default, aten._copy_from_and_resize.default}


class MixedDevices(RuntimeError):
    """An operation took tensors on the fake accelerator and on the host."""


class OnAccelerator(torch.Tensor):
    """A tensor on the fake accelerator; ``inner`` holds its values on the CPU."""

    inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls, inner.size(), strides=inner.stride(), storage_offset=inner.storage_offset(), dtype=inner.dtype,
            layout=inner.layout, device=ACCELERATOR, requires_grad=inner.requires_grad)

    def __init__(self, inner: torch.Tensor):
        self.inner = inner

    def __repr__(self) -> str:
        return f"OnAccelerator({self.inner!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise MixedDevices(f"{func} ran outside FakeAccelerator()")


def _is_accelerator(device) -> bool:
    return device is not None and torch.device(device).type == ACCELERATOR.type


class FakeAccelerator(TorchDispatchMode):
    """While active, ``meta`` is the fake accelerator; ``crossings`` counts host <-> device copies."""

    def __init__(self):
        super().__init__()
        self.crossings = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_accelerator = [isinstance(t, OnAccelerator) for t in tensors]
        wanted = kwargs.get("device")
        if func not in CROSSING and any(on_accelerator):
            hosts = [t for t, fake in zip(tensors, on_accelerator) if not fake and t.dim() > 0]
            if hosts:
                shapes = [tuple(t.shape) for t in hosts]
                raise MixedDevices(f"{func} mixes tensors on the accelerator with host tensors of shapes {shapes}")
        if func in CROSSING and len({isinstance(t, OnAccelerator) for t in tensors}) > 1 or (
                func is aten._to_copy.default and _is_accelerator(wanted) != on_accelerator[0]):
            self.crossings += 1
        if _is_accelerator(wanted):
            kwargs["device"] = HOST
        inners = {id(t.inner): t for t in tensors if isinstance(t, OnAccelerator)}
        result = func(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
        if func is aten._to_copy.default:
            to_accelerator = _is_accelerator(wanted) if wanted is not None else on_accelerator[0]
        else:
            to_accelerator = any(on_accelerator) or _is_accelerator(wanted)
        if func is aten.copy_.default:  # copies into its first argument, wherever that lives
            return args[0]

        def wrap(value):
            if not isinstance(value, torch.Tensor):
                return value
            if id(value) in inners:  # an in-place operation returns its own argument
                return inners[id(value)]
            return OnAccelerator(value) if to_accelerator else value

        return tree_map(wrap, result)


def _unwrap(value):
    return value.inner if isinstance(value, OnAccelerator) else value
