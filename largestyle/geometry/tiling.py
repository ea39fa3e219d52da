"""Blend tiling: cut an image into half-overlapping tiles and stitch them back.

Geometry (``Axis``, ``Tile``, ``BlendGrid``) is immutable and holds no pixels.
Tiled axes are reflect-padded so that every original pixel lies in exactly two
tiles per axis, and the per-axis ramp windows of those two tiles sum to one.
``BlendAccumulator`` sums ``window * tile`` and ``window`` independently of the
order tiles arrive in, and divides once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.transfer import beside, to_device

__all__ = [
    "Axis",
    "BlendAccumulator",
    "BlendGrid",
    "HaloTile",
    "Tile",
    "halo_tiles",
    "ramp_window",
    "shifts_for_passes",
]


def ramp_window(length: int, tile: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """1-D blend window for an axis of ``length`` pixels cut into ``tile``-pixel tiles.

    Whole axis (``tile >= length``): ``length`` ones. Otherwise a linear ramp of
    ``tile`` values, ``w[i] = 1 - |i + 0.5 - S| / S`` with ``S = tile // 2``:
    strictly positive, ``0.5 / S`` at both ends, and ``w[i] + w[i + S] == 1``.
    """
    if tile >= length:
        return torch.ones(length, dtype=dtype)
    _check_tile(tile)
    stride = tile // 2
    rising = (torch.arange(stride, dtype=dtype) + 0.5) / stride
    # The falling half is built as 1 - rising so the two overlapping halves
    # sum to one in floating point, not just on paper.
    return torch.cat([rising, 1 - rising])


def _check_tile(tile: int) -> None:
    if tile < 2 or tile % 2:
        raise ValueError(f"tile size must be an even number >= 2, got {tile}")


@dataclass(frozen=True)
class Axis:
    """How one image axis is padded and cut.

    Tiled axes: stride ``S = tile // 2``; tiles start at ``k * S`` in padded
    coordinates and every original pixel is covered by exactly two tiles.
    Both paddings are ``< length`` so reflect padding is legal.
    """

    length: int
    tile: int
    shift: int
    pad_before: int
    pad_after: int
    starts: tuple[int, ...]

    @classmethod
    def plan(cls, length: int, tile: int, shift: int = 0) -> Axis:
        if length < 1:
            raise ValueError(f"axis length must be positive, got {length}")
        if tile >= length:
            # One tile covers the axis; there is no seam to move, so shift is moot.
            return cls(length, tile, 0, 0, 0, (0,))
        _check_tile(tile)
        stride = tile // 2
        if not 0 <= shift < stride:
            raise ValueError(f"shift must be in [0, {stride}), got {shift}")
        pad_before = stride + shift
        count = -(-(length + shift) // stride) + 1
        pad_after = (count + 1) * stride - length - pad_before
        # pad_before < tile and stride <= pad_after < tile, and tile < length.
        assert pad_before < length and pad_after < length, (length, tile, shift)
        return cls(length, tile, shift, pad_before, pad_after,
                   tuple(k * stride for k in range(count)))

    @property
    def whole(self) -> bool:
        return self.tile >= self.length

    @property
    def extent(self) -> int:
        """Pixels per tile along this axis: ``length`` if whole, else ``tile``."""
        return self.length if self.whole else self.tile

    @property
    def padded_length(self) -> int:
        return self.pad_before + self.length + self.pad_after

    def window(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """This axis's per-tile window (length ``extent``)."""
        return ramp_window(self.length, self.tile, dtype)


@dataclass(frozen=True)
class Tile:
    """One tile's place in padded coordinates; ``index`` is row-major."""

    index: int
    row: int
    col: int
    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class BlendGrid:
    """2-D tiling of an (N, C, H, W) image: the product of two ``Axis`` plans."""

    rows: Axis
    cols: Axis

    @classmethod
    def plan(cls, height: int, width: int, tile: int, shift: int = 0) -> BlendGrid:
        """Same tile size and shift on both axes; an axis no longer than ``tile`` is whole."""
        return cls(Axis.plan(height, tile, shift), Axis.plan(width, tile, shift))

    @property
    def tiles(self) -> tuple[Tile, ...]:
        ncols = len(self.cols.starts)
        return tuple(
            Tile(r * ncols + c, r, c, top, left, self.rows.extent, self.cols.extent)
            for r, top in enumerate(self.rows.starts)
            for c, left in enumerate(self.cols.starts)
        )

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.rows.padded_length, self.cols.padded_length

    def pad(self, image: torch.Tensor) -> torch.Tensor:
        """Reflect-pad ``image`` (N, C, H, W) to ``padded_shape``."""
        self._check_shape(image, (self.rows.length, self.cols.length))
        if self.rows.whole and self.cols.whole:
            return image
        return F.pad(image, (self.cols.pad_before, self.cols.pad_after,
                             self.rows.pad_before, self.rows.pad_after), mode="reflect")

    def crop(self, padded: torch.Tensor) -> torch.Tensor:
        """Inverse of ``pad``: ``crop(pad(x))`` equals ``x`` exactly."""
        self._check_shape(padded, self.padded_shape)
        top, left = self.rows.pad_before, self.cols.pad_before
        return padded[..., top:top + self.rows.length, left:left + self.cols.length]

    def cut(self, padded: torch.Tensor, tile: Tile) -> torch.Tensor:
        """View of ``tile`` inside a padded tensor (no copy)."""
        return padded[..., tile.top:tile.top + tile.height, tile.left:tile.left + tile.width]

    def window(self, tile: Tile, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
        """(1, 1, h, w) separable blend weights for ``tile``."""
        del tile  # every tile of a grid has the same shape and window
        w = torch.outer(self.rows.window(dtype), self.cols.window(dtype))
        return to_device(w, device)[None, None]

    def pixels_per_pass(self) -> int:
        """Total tile pixels processed for one pass over the grid."""
        return len(self.rows.starts) * len(self.cols.starts) * self.rows.extent * self.cols.extent

    @staticmethod
    def _check_shape(t: torch.Tensor, hw: tuple[int, int]) -> None:
        if t.dim() != 4 or tuple(t.shape[-2:]) != hw:
            raise ValueError(f"expected an (N, C, {hw[0]}, {hw[1]}) tensor, got {tuple(t.shape)}")


def shifts_for_passes(tile: int, passes: int) -> tuple[int, ...]:
    """Grid shift for each pass, spread over ``[0, tile // 2)`` so seams move between passes."""
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    stride = tile // 2
    if stride < 1:
        return (0,) * passes
    return tuple(min(round(p * stride / passes), stride - 1) for p in range(passes))


class BlendAccumulator:
    """Order-independent weighted sum of processed tiles over a ``BlendGrid``.

    ``add`` may be called in any order; ``result`` divides once and crops.
    """

    def __init__(self, grid: BlendGrid, channels: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, allocate=None) -> None:
        """``allocate(shape, dtype)``, if given, makes the two sums (e.g. in memory-mapped files)."""
        self.grid = grid
        self.channels = channels
        h, w = grid.padded_shape
        allocate = allocate or (lambda shape, kind: torch.empty(shape, dtype=kind, device=device))
        self.total = allocate((1, channels, h, w), dtype).zero_()
        self.weight = allocate((1, 1, h, w), dtype).zero_()
        self._window = grid.window(grid.tiles[0], dtype, self.total.device)
        self._expected = frozenset(t.index for t in grid.tiles)
        self._seen: set[int] = set()

    def add(self, tile: Tile, pixels: torch.Tensor) -> None:
        """Blend ``pixels`` (1, C, h, w) in at ``tile``'s place."""
        expected = (1, self.channels, tile.height, tile.width)
        if tuple(pixels.shape) != expected:
            raise ValueError(f"expected tile pixels of shape {expected}, got {tuple(pixels.shape)}")
        if tile.index not in self._expected:
            raise ValueError(f"tile {tile.index} is not part of this grid")
        if tile.index in self._seen:
            # A second copy would double its weight and break the partition of unity.
            raise ValueError(f"tile {tile.index} was already added")
        pixels = beside(pixels, self.total).to(self.total.dtype)
        self.grid.cut(self.total, tile).add_(self._window * pixels)
        self.grid.cut(self.weight, tile).add_(self._window)
        self._seen.add(tile.index)

    def state(self) -> dict:
        """What ``restore`` needs to continue this accumulation exactly (for checkpoints)."""
        return {"total": self.total, "weight": self.weight, "seen": sorted(self._seen)}

    def restore(self, state: dict) -> None:
        self.total.copy_(state["total"])
        self.weight.copy_(state["weight"])
        self._seen = set(state["seen"])

    @property
    def added(self) -> int:
        """Number of distinct tiles added so far."""
        return len(self._seen)

    @property
    def complete(self) -> bool:
        return self._seen == self._expected

    def result(self) -> torch.Tensor:
        """(1, C, H, W) blended image.

        Raises RuntimeError unless every tile of the grid was added: a missing
        tile leaves zero weight or an unbalanced seam.
        """
        weight = self.grid.crop(self.weight)
        if not self.complete or not bool((weight > 0).all()):
            missing = sorted(self._expected - self._seen)
            raise RuntimeError(
                f"blend is incomplete: {self.added} of {len(self._expected)} tiles added "
                f"(missing indices {missing[:8]}{'...' if len(missing) > 8 else ''})")
        return self.grid.crop(self.total) / weight


@dataclass(frozen=True)
class HaloTile:
    """A core region and the window (core plus halo, clipped to the image) evaluated for it.

    Coordinates are (top, left, bottom, right), bottom and right exclusive. Cores
    partition the image; windows start on the same multiple of 16 as the cores.
    """

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    def cut(self, image: torch.Tensor) -> torch.Tensor:
        """The window's pixels of an (N, C, H, W) image."""
        top, left, bottom, right = self.window
        return image[..., top:bottom, left:right]

    def core_of(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """The core's part of features computed on the window, at a layer of ``stride``.

        Windows start on multiples of 16, so the window's feature grid lines up with
        the image's; a core ending at the image edge keeps pooling's floor.
        """
        top, left = self.window[:2]
        return features[..., (self.core[0] - top) // stride:(self.core[2] - top) // stride,
                        (self.core[1] - left) // stride:(self.core[3] - left) // stride]


def halo_tiles(height: int, width: int, core: int, halo: int) -> tuple[HaloTile, ...]:
    """Cores of side ``core`` covering a height x width image, each with ``halo`` px of context.

    ``core`` and ``halo`` must be multiples of 16, so every window starts where
    VGG-19's pooled grids (stride up to 16) line up with the whole image's.
    """
    if core < 16 or core % 16 or halo < 0 or halo % 16:
        raise ValueError(f"core ({core}) and halo ({halo}) must be multiples of 16, core >= 16")
    tiles = []
    for top in range(0, height, core):
        for left in range(0, width, core):
            bottom, right = min(top + core, height), min(left + core, width)
            window = (max(0, top - halo), max(0, left - halo), min(height, bottom + halo), min(width, right + halo))
            tiles.append(HaloTile((top, left, bottom, right), window))
    return tuple(tiles)
