import dataclasses

import pytest
import torch

from largestyle.geometry.tiling import (
    Axis,
    BlendAccumulator,
    BlendGrid,
    Tile,
    ramp_window,
    shifts_for_passes,
)

SIZES = [(37, 53), (64, 33), (50, 50)]
TILES = [8, 16, 32]


def _grids():
    for h, w in SIZES:
        for tile in TILES:
            for shift in shifts_for_passes(tile, 3):
                yield pytest.param(h, w, tile, shift, id=f"{h}x{w}-t{tile}-s{shift}")


GRIDS = list(_grids())


def image(h, w, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, c, h, w, generator=g)


def blend(grid, x, fn=lambda t: t):
    padded = grid.pad(x)
    acc = BlendAccumulator(grid, x.shape[1])
    for tile in grid.tiles:
        acc.add(tile, fn(grid.cut(padded, tile)))
    return acc.result()


@pytest.mark.parametrize("h,w,tile,shift", GRIDS)
def test_crop_inverts_pad_exactly(h, w, tile, shift):
    grid = BlendGrid.plan(h, w, tile, shift)
    x = image(h, w)
    padded = grid.pad(x)
    assert padded.shape[-2:] == grid.padded_shape
    assert torch.equal(grid.crop(padded), x)


@pytest.mark.parametrize("h,w,tile", [(20, 53, 32), (53, 20, 32), (20, 30, 32), (30, 30, 30)])
def test_crop_inverts_pad_with_whole_axes(h, w, tile):
    grid = BlendGrid.plan(h, w, tile, shift=3)
    assert grid.rows.whole == (tile >= h) and grid.cols.whole == (tile >= w)
    x = image(h, w)
    padded = grid.pad(x)
    if grid.rows.whole:
        assert padded.shape[-2] == h
    if grid.cols.whole:
        assert padded.shape[-1] == w
    assert torch.equal(grid.crop(padded), x)


@pytest.mark.parametrize("h,w,tile,shift", GRIDS)
def test_windows_are_a_partition_of_unity(h, w, tile, shift):
    grid = BlendGrid.plan(h, w, tile, shift)
    acc = BlendAccumulator(grid, 1)
    for t in grid.tiles:
        acc.add(t, torch.ones(1, 1, t.height, t.width))
    torch.testing.assert_close(grid.crop(acc.weight), torch.ones(1, 1, h, w), atol=1e-6, rtol=0)

    cover = torch.zeros(1, 1, *grid.padded_shape)
    for t in grid.tiles:
        grid.cut(cover, t).add_(1)
    per_axis = (1 if grid.rows.whole else 2) * (1 if grid.cols.whole else 2)
    assert torch.equal(grid.crop(cover), torch.full((1, 1, h, w), float(per_axis)))


@pytest.mark.parametrize("h,w,tile,shift", GRIDS)
def test_split_and_blend_is_identity(h, w, tile, shift):
    grid = BlendGrid.plan(h, w, tile, shift)
    x = image(h, w, seed=1)
    torch.testing.assert_close(blend(grid, x), x, atol=1e-6, rtol=0)


def test_blend_order_does_not_matter():
    grid = BlendGrid.plan(37, 53, 16, 3)
    x = image(37, 53, seed=2)
    padded = grid.pad(x)
    forward, backward = BlendAccumulator(grid, 3), BlendAccumulator(grid, 3)
    for t in grid.tiles:
        forward.add(t, grid.cut(padded, t) * (1 + t.index))
    for t in reversed(grid.tiles):
        backward.add(t, grid.cut(padded, t) * (1 + t.index))
    torch.testing.assert_close(forward.result(), backward.result(), atol=1e-5, rtol=1e-6)
    assert forward.added == backward.added == len(grid.tiles)


@pytest.mark.parametrize("h,w,tile,shift", [(37, 53, 8, 0), (64, 33, 16, 5), (50, 50, 32, 11)])
def test_pointwise_map_commutes_with_blending(h, w, tile, shift):
    grid = BlendGrid.plan(h, w, tile, shift)
    x = image(h, w, seed=3) * 4 - 2
    fn = lambda t: torch.sigmoid(3 * t)  # noqa: E731
    torch.testing.assert_close(blend(grid, x, fn), fn(x), atol=1e-6, rtol=0)


def test_tile_covering_the_image_is_a_single_unpadded_tile():
    grid = BlendGrid.plan(21, 17, 32)
    assert grid.rows.whole and grid.cols.whole
    assert len(grid.tiles) == 1
    (t,) = grid.tiles
    assert (t.top, t.left, t.height, t.width) == (0, 0, 21, 17)
    assert grid.padded_shape == (21, 17)
    assert grid.rows.pad_before == grid.rows.pad_after == grid.cols.pad_before == grid.cols.pad_after == 0
    assert torch.equal(grid.window(t), torch.ones(1, 1, 21, 17))
    assert grid.pixels_per_pass() == 21 * 17
    x = image(21, 17, seed=4)
    assert torch.equal(grid.pad(x), x)
    assert torch.equal(blend(grid, x), x)


@pytest.mark.parametrize("tile", [2, 4, 8, 16, 30, 64])
def test_ramp_window_values(tile):
    s = tile // 2
    w = ramp_window(1000, tile)
    assert w.shape == (tile,)
    assert bool((w > 0).all())
    assert w[0].item() == pytest.approx(0.5 / s, rel=1e-6) and w[-1].item() == pytest.approx(0.5 / s, rel=1e-6)
    assert w.min().item() == pytest.approx(0.5 / s, rel=1e-6)
    assert int(w.argmax()) in (s - 1, s)
    assert w.max().item() == pytest.approx(1 - 0.5 / s, rel=1e-6)
    assert torch.equal(w[:s] + w[s:], torch.ones(s))
    torch.testing.assert_close(w, w.flip(0), atol=1e-6, rtol=0)


def test_grid_window_is_outer_product_of_axis_windows():
    grid = BlendGrid.plan(37, 12, 16)
    assert not grid.rows.whole and grid.cols.whole
    t = grid.tiles[0]
    win = grid.window(t, dtype=torch.float64)
    assert win.shape == (1, 1, 16, 12) and win.dtype == torch.float64
    expected = torch.outer(ramp_window(37, 16, torch.float64), torch.ones(12, dtype=torch.float64))
    assert torch.equal(win[0, 0], expected)
    both = BlendGrid.plan(37, 53, 16).window(t)
    assert torch.equal(both[0, 0], torch.outer(ramp_window(37, 16), ramp_window(53, 16)))


def test_axis_plan_geometry():
    ax = Axis.plan(37, 8, shift=2)
    s = 4
    assert (ax.pad_before, ax.padded_length) == (s + 2, ax.pad_before + 37 + ax.pad_after)
    assert len(ax.starts) == -(-(37 + 2) // s) + 1
    assert ax.starts == tuple(k * s for k in range(len(ax.starts)))
    assert ax.padded_length == (len(ax.starts) + 1) * s
    assert s <= ax.pad_after < 2 * s
    assert ax.starts[-1] + ax.tile == ax.padded_length


def test_tiles_are_row_major_and_counted():
    grid = BlendGrid.plan(37, 53, 16, 2)
    tiles = grid.tiles
    assert len(tiles) == len(grid.rows.starts) * len(grid.cols.starts)
    assert [t.index for t in tiles] == list(range(len(tiles)))
    assert [(t.row, t.col) for t in tiles] == sorted((t.row, t.col) for t in tiles)
    assert all(isinstance(t, Tile) and (t.height, t.width) == (16, 16) for t in tiles)
    assert grid.pixels_per_pass() == len(tiles) * 16 * 16
    padded = grid.pad(image(37, 53))
    t = tiles[-1]
    assert grid.cut(padded, t).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("tile,passes,expected", [(16, 1, (0,)), (16, 3, (0, 3, 5)), (8, 4, (0, 1, 2, 3)),
                                                  (4, 5, (0, 0, 1, 1, 1))])
def test_shifts_for_passes(tile, passes, expected):
    shifts = shifts_for_passes(tile, passes)
    assert shifts == expected
    assert all(0 <= s < tile // 2 for s in shifts)


def test_shifts_move_seams_relative_to_the_image():
    tile, length = 16, 53
    seams = []
    for shift in shifts_for_passes(tile, 3):
        ax = Axis.plan(length, tile, shift)
        seams.append({start - ax.pad_before for start in ax.starts})
    assert len(seams) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert seams[i].isdisjoint(seams[j])


@pytest.mark.parametrize("tile", [3, 7, 1, 0])
def test_odd_or_tiny_tile_rejected(tile):
    with pytest.raises(ValueError):
        Axis.plan(50, tile)
    with pytest.raises(ValueError):
        BlendGrid.plan(50, 50, tile)


@pytest.mark.parametrize("shift", [-1, 8, 9, 100])
def test_shift_out_of_range_rejected(shift):
    with pytest.raises(ValueError):
        Axis.plan(50, 16, shift)
    with pytest.raises(ValueError):
        BlendGrid.plan(50, 50, 16, shift)


def test_result_before_all_tiles_added_raises():
    grid = BlendGrid.plan(37, 53, 8, 1)
    padded = grid.pad(image(37, 53))
    acc = BlendAccumulator(grid, 3)
    with pytest.raises(RuntimeError):
        acc.result()
    for t in grid.tiles[:-5]:
        acc.add(t, grid.cut(padded, t))
    with pytest.raises(RuntimeError):
        acc.result()
    for t in grid.tiles[-5:]:
        acc.add(t, grid.cut(padded, t))
    assert acc.added == len(grid.tiles)
    assert acc.result().shape == (1, 3, 37, 53)


def test_result_with_a_middle_tile_missing_raises():
    # Every pixel keeps a positive weight here, so only the tile count can tell.
    grid = BlendGrid.plan(37, 53, 8)
    padded = grid.pad(image(37, 53))
    acc = BlendAccumulator(grid, 3)
    skipped = grid.tiles[len(grid.tiles) // 2]
    for t in grid.tiles:
        if t != skipped:
            acc.add(t, grid.cut(padded, t))
    assert bool((grid.crop(acc.weight) > 0).all())
    with pytest.raises(RuntimeError, match="incomplete"):
        acc.result()


def test_add_rejects_wrong_shape_duplicates_and_foreign_tiles():
    grid = BlendGrid.plan(37, 53, 8)
    acc = BlendAccumulator(grid, 3)
    with pytest.raises(ValueError):
        acc.add(grid.tiles[0], torch.zeros(1, 3, 8, 7))
    acc.add(grid.tiles[0], torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError):
        acc.add(grid.tiles[0], torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError):
        acc.add(dataclasses.replace(grid.tiles[0], index=10**6), torch.zeros(1, 3, 8, 8))
    assert acc.added == 1


def test_geometry_is_immutable():
    grid = BlendGrid.plan(37, 53, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.rows.tile = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.rows = Axis.plan(37, 4)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.tiles[0].top = 1  # type: ignore[misc]


def test_padding_is_always_legal_for_reflect():
    checked = 0
    for length in range(3, 70):
        for tile in range(2, length, 2):
            for shift in range(tile // 2):
                ax = Axis.plan(length, tile, shift)
                assert ax.pad_before < length and ax.pad_after < length
                assert ax.pad_before - ax.starts[0] >= tile // 2
                assert ax.padded_length - length - ax.pad_before == ax.pad_after
                assert ax.starts[-1] + tile == ax.padded_length
                checked += 1
    assert checked > 1000
