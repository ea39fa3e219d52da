import pytest
import torch
import torch.nn.functional as F

from largestyle.geometry.pyramid import MIN_LONG_SIDE, fit_long_side, level_shapes, long_sides, resize

TARGETS = [64, 447, 448, 512, 1000, 4096, 16384]


@pytest.mark.parametrize("target", TARGETS)
def test_long_sides(target):
    sides = long_sides(target)
    assert sides[-1] == target
    if target >= 2 * MIN_LONG_SIDE:
        assert MIN_LONG_SIDE <= sides[0] < 2 * MIN_LONG_SIDE
        assert len(sides) >= 2
    else:
        assert sides == [target]
    for smaller, larger in zip(sides, sides[1:]):
        assert abs(larger - 2 * smaller) <= 1


def test_long_sides_known_values():
    assert long_sides(448) == [224, 448]
    assert long_sides(1000) == [250, 500, 1000]
    assert long_sides(4096) == [256, 512, 1024, 2048, 4096]
    assert len(long_sides(16384)) == 7


@pytest.mark.parametrize("height, width", [(300, 500), (500, 300), (333, 1000), (1000, 333), (97, 61), (64, 64)])
@pytest.mark.parametrize("target", [300, 1000, 3000])
def test_level_shapes_keep_aspect_ratio(height, width, target):
    final = fit_long_side(height, width, target)
    shapes = level_shapes(*final)
    assert [max(h, w) for h, w in shapes] == long_sides(target)
    assert shapes[-1] == final
    for h, w in shapes:
        assert (h >= w) == (height >= width)
        # Rounding the short side to whole pixels moves it by at most half a pixel.
        assert abs(min(h, w) / max(h, w) - min(final) / max(final)) <= 0.5 / max(h, w) + 1e-12
        assert h / w == pytest.approx(height / width, rel=0.01)


def test_fit_long_side_orientation_and_minimum():
    assert fit_long_side(300, 600, 100) == (50, 100)
    assert fit_long_side(600, 300, 100) == (100, 50)
    assert fit_long_side(1, 1000, 100) == (1, 100)


def _checkerboard(h, w):
    return ((torch.arange(h).view(h, 1) + torch.arange(w).view(1, w)) % 2).float().expand(1, 3, h, w).clone()


def test_resize_shape_and_range():
    step = torch.zeros(1, 3, 16, 16)
    step[..., 8:] = 1
    up = resize(step, (40, 36))
    assert up.shape == (1, 3, 40, 36)
    # Plain bicubic overshoots at the edge; resize clamps to [0, 1].
    raw = F.interpolate(step, size=(40, 36), mode="bicubic", align_corners=False)
    assert raw.min() < 0 and raw.max() > 1
    assert up.min() >= 0 and up.max() <= 1
    assert up[..., :, :10].max() < 0.05 and up[..., :, -10:].min() > 0.95


def test_resize_is_antialiased():
    board = _checkerboard(64, 64)
    down = resize(board, (17, 13))
    assert down.shape == (1, 3, 17, 13)
    # Averaging a one-pixel checkerboard gives flat grey; point sampling would alias.
    assert down.mean().item() == pytest.approx(0.5, abs=0.01)
    assert down.std().item() < 0.02
    aliased = F.interpolate(board, size=(17, 13), mode="bicubic", align_corners=False)
    assert aliased.std().item() > 0.1


def test_resize_identity_when_shape_unchanged():
    image = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize(image, (20, 30)), image)
    assert torch.equal(resize(image, [20, 30]), image)


def test_resize_preserves_batch_and_channels():
    image = torch.rand(2, 4, 32, 24, generator=torch.Generator().manual_seed(1))
    out = resize(image, (16, 12))
    assert out.shape == (2, 4, 16, 12)
    torch.testing.assert_close(out.mean(dim=(2, 3)), image.mean(dim=(2, 3)), atol=0.02, rtol=0)
