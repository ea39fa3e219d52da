import pytest
import torch

from largestyle.core.units import parse_bytes
from largestyle.core.errors import LargestyleError
from largestyle.engine.memory import MemoryModel, memory_budget, resolve_device

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    return MemoryModel(("relu2_1", "relu1_1"), "avg", CPU, history_size=16)


def test_optimise_bytes_grows_linearly_with_pixels(model):
    pixels = lambda h, w: model.optimise_bytes(h, w) - model.fixed
    base = pixels(64, 64)
    assert base > 0
    assert pixels(64, 128) == pytest.approx(2 * base, rel=1e-6)
    assert pixels(128, 64) == pytest.approx(2 * base, rel=1e-6)
    assert pixels(256, 256) == pytest.approx(16 * base, rel=1e-6)
    assert model.optimise_bytes(1, 1) > model.fixed > 0


def test_measured_activation_bytes_are_plausible(model):
    # relu2_1 keeps at least the two full-resolution 64-channel float activations per pixel.
    assert model.activation_per_pixel >= 2 * 64 * 4
    assert model.image_per_pixel == (2 * 16 + 6) * 3 * 4
    deeper = MemoryModel(("relu3_1",), "avg", CPU, history_size=16)
    assert deeper.activation_per_pixel > model.activation_per_pixel
    assert deeper.fixed > model.fixed
    longer_history = MemoryModel(("relu2_1", "relu1_1"), "avg", CPU, history_size=32)
    assert longer_history.per_pixel > model.per_pixel


def test_largest_tile_fits_budget_and_is_maximal(model):
    h, w = 600, 800
    budget = model.canvas_bytes(h, w) + model.optimise_bytes(200, 200)
    tile = model.largest_tile(h, w, budget)
    assert tile is not None and tile % 16 == 0 and tile >= 32
    assert model.canvas_bytes(h, w) + model.optimise_bytes(tile, tile) <= budget
    assert model.canvas_bytes(h, w) + model.optimise_bytes(tile + 16, tile + 16) > budget
    assert tile == 192


def test_largest_tile_grows_with_budget(model):
    small = model.largest_tile(300, 300, model.canvas_bytes(300, 300) + model.optimise_bytes(72, 72))
    large = model.largest_tile(300, 300, model.canvas_bytes(300, 300) + model.optimise_bytes(264, 264))
    assert small == 64 and large == 256


def test_largest_tile_none_when_budget_too_small(model):
    h, w = 400, 400
    assert model.largest_tile(h, w, model.canvas_bytes(h, w) // 2) is None
    assert model.largest_tile(h, w, model.canvas_bytes(h, w) + model.optimise_bytes(20, 20)) is None
    assert model.largest_tile(h, w, 1) is None


def test_canvas_bytes_scale_with_pixels(model):
    assert model.canvas_bytes(100, 200) == 2 * model.canvas_bytes(100, 100) > 0


@pytest.mark.parametrize("text, expected", [
    ("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5g", 1_500_000_000), (1024, 1024),
    ("300mb", 300 * 10**6), (" 2 GiB ", 2 * 2**30), ("100", 100), ("2k", 2000), ("1TiB", 2**40),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "4XB", "", "GB", "1.2.3GB", "-4GB"])
def test_parse_bytes_rejects(text):
    with pytest.raises(LargestyleError, match="memory size"):
        parse_bytes(text)


def test_memory_budget_override():
    assert memory_budget(CPU, 123_456) == 123_456
    assert memory_budget(torch.device("cuda"), 7 * 2**30) == 7 * 2**30


def test_memory_budget_default_on_cpu_is_positive():
    assert memory_budget(CPU) > 0


def test_resolve_device():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_without_cuda_raises():
    with pytest.raises(LargestyleError, match="cuda"):
        resolve_device("cuda:0")


def test_calibration_is_measured_once_and_kept(tmp_path, monkeypatch):
    import json

    from largestyle.engine import memory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    real = memory.measure_saved_bytes_per_pixel

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(memory, "measure_saved_bytes_per_pixel", counted)
    layers = ("relu1_1", "relu2_1")
    for _ in range(2):
        memory.saved_bytes_per_pixel.cache_clear()  # a new process, as far as the cache knows
        value = memory.saved_bytes_per_pixel(layers, "avg", "cpu", torch.float32)
    assert len(calls) == 1 and value > 0
    stored = json.loads((tmp_path / "largestyle" / "calibration.json").read_text())
    assert list(stored.values()) == [value] and "float32" in next(iter(stored))
    (tmp_path / "largestyle" / "calibration.json").write_text("{ not json")
    memory.saved_bytes_per_pixel.cache_clear()
    assert memory.saved_bytes_per_pixel(layers, "avg", "cpu", torch.float32) == value and len(calls) == 2


def test_bf16_convolutions_halve_what_an_evaluation_keeps_per_pixel(model):
    """Under --precision bf16 the saved activations are bfloat16 and the losses widen one layer at a time."""
    rounded = MemoryModel(("relu2_1", "relu1_1"), "avg", CPU, history_size=16, compute_dtype=torch.bfloat16)
    assert rounded.activation_per_pixel == pytest.approx(model.activation_per_pixel / 2, rel=0.05)
    assert rounded.image_per_pixel == model.image_per_pixel  # the image and the optimiser stay float32


def test_calibrations_are_kept_per_version_and_precision(tmp_path, monkeypatch):
    import json

    from largestyle import __version__
    from largestyle.engine import memory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    memory.saved_bytes_per_pixel.cache_clear()
    for compute_dtype in (None, torch.bfloat16):
        memory.saved_bytes_per_pixel(("relu1_1",), "avg", "cpu", torch.float32, compute_dtype)
    keys = list(json.loads((tmp_path / "largestyle" / "calibration.json").read_text()))
    assert len(keys) == 2 and all(__version__ in key.split("|") for key in keys)
    assert sorted(key.split("|")[3] for key in keys) == ["None", "torch.bfloat16"]
