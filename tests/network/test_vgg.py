"""VGG-19 feature network (features.py) and its weights (weights.py)."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from largestyle.network import weights as weights_mod
from largestyle.core.vgg import LAYER_NAMES
from largestyle.core.errors import LargestyleError
from largestyle.network.vgg import TORCHVISION_INDEX, VGG19Features
from largestyle.core.vgg import conv_channels, deepest_of, layer_sequence, receptive_field
from largestyle.network.weights import (
    KNOWN_FILES,
    WEIGHTS_DIR_ENV,
    find_weights,
    load_network,
    randomise,
)
from largestyle.network.weightfiles import read_weights

BLOCK_FIRSTS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHANNELS = {"relu1": 64, "relu2": 128, "relu3": 256, "relu4": 512, "relu5": 512}

# torchvision's vgg19().features: conv, ReLU pairs with a MaxPool2d closing each block.
TORCHVISION_LAYOUT = ["C", "R", "C", "R", "M",
                      "C", "R", "C", "R", "M",
                      "C", "R", "C", "R", "C", "R", "C", "R", "M",
                      "C", "R", "C", "R", "C", "R", "C", "R", "M",
                      "C", "R", "C", "R", "C", "R", "C", "R", "M"]


def smooth_image(size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 8, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def deep():
    net = VGG19Features("relu5_1")
    randomise(net)
    return net


@pytest.fixture(scope="module")
def shallow():
    net = VGG19Features("relu2_1")
    randomise(net)
    return net


# --- layer bookkeeping ---------------------------------------------------------------

@pytest.mark.parametrize("layer, expected", [
    ("relu1_1", (3, 1)), ("relu1_2", (5, 1)), ("relu2_1", (10, 2)), ("relu2_2", (14, 2)),
    ("relu3_1", (24, 4)), ("relu4_1", (68, 8)), ("relu5_1", (156, 16)),
])
def test_receptive_field(layer, expected):
    assert receptive_field(layer) == expected


def test_layer_sequence_stops_at_requested_layer():
    sequence = layer_sequence("relu4_2")
    assert sequence[-1] == ("conv", "conv4_2")
    names = [name for _, name in sequence]
    assert "conv4_3" not in names and not any(n.startswith("conv5") for n in names)
    assert [name for kind, name in sequence if kind == "pool"] == ["pool1", "pool2", "pool3"]
    assert layer_sequence("relu1_1") == [("conv", "conv1_1")]
    assert len([k for k, _ in layer_sequence("relu5_4") if k == "conv"]) == 16


def test_layer_sequence_rejects_unknown_layer():
    with pytest.raises(ValueError):
        layer_sequence("relu6_1")
    with pytest.raises(ValueError):
        layer_sequence("conv1_1")


def test_deepest_of_uses_network_order():
    assert deepest_of(["relu4_2", "relu1_1", "relu3_4"]) == "relu4_2"
    assert deepest_of(["relu5_1", "relu4_4"]) == "relu5_1"


def test_network_builds_only_needed_convs():
    net = VGG19Features("relu4_2")
    assert list(net.convs) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                               "conv3_3", "conv3_4", "conv4_1", "conv4_2"]
    assert net.deepest == "relu4_2"
    assert net.convs["conv4_2"].in_channels == 512 and net.convs["conv3_1"].out_channels == 256
    assert not any(p.requires_grad for p in net.parameters())


def test_torchvision_index_matches_torchvision_layout():
    conv_positions = [i for i, kind in enumerate(TORCHVISION_LAYOUT) if kind == "C"]
    conv_names = [f"conv{layer[4:]}" for layer in LAYER_NAMES]
    assert [TORCHVISION_INDEX[name] for name in conv_names] == conv_positions
    assert TORCHVISION_INDEX["conv1_1"] == 0
    assert TORCHVISION_INDEX["conv4_2"] == 21
    assert TORCHVISION_INDEX["conv5_1"] == 28
    assert TORCHVISION_INDEX["conv5_4"] == 34


def test_conv_channels_chain():
    channels = conv_channels()
    names = list(channels)
    assert channels["conv1_1"] == (3, 64) and channels["conv5_4"] == (512, 512)
    for previous, name in zip(names, names[1:]):
        assert channels[name][0] == channels[previous][1]


# --- forward ---------------------------------------------------------------------------

def test_forward_returns_requested_layers_with_channels_and_strides(deep):
    image = smooth_image(64)
    out = deep(image, ["relu3_1", "relu1_2", "relu5_1", "relu4_2"])
    assert set(out) == {"relu3_1", "relu1_2", "relu5_1", "relu4_2"}
    for layer, activation in out.items():
        stride = receptive_field(layer)[1]
        assert activation.shape == (1, CHANNELS[layer[:5]], 64 // stride, 64 // stride)
        assert activation.min() >= 0
    assert out["relu3_1"].shape == (1, 256, 16, 16)


def test_forward_on_non_square_input(shallow):
    out = shallow(smooth_image(64)[..., :48, :], ["relu2_1"])
    assert out["relu2_1"].shape == (1, 128, 24, 32)


def test_forward_matches_manual_computation(shallow):
    image = smooth_image(32, seed=3)
    x = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.relu(shallow.convs["conv1_1"](x))
    relu1_1 = x
    x = torch.relu(shallow.convs["conv1_2"](x))
    x = F.avg_pool2d(x, 2)
    x = torch.relu(shallow.convs["conv2_1"](x))
    out = shallow(image, ["relu1_1", "relu2_1"])
    torch.testing.assert_close(out["relu1_1"], relu1_1)
    torch.testing.assert_close(out["relu2_1"], x)


def test_shallower_layers_do_not_depend_on_network_depth(deep):
    shallow = VGG19Features("relu1_2")
    shallow.convs.load_state_dict({k: v for k, v in deep.convs.state_dict().items()
                                   if k.startswith("conv1_")})
    image = smooth_image(32, seed=4)
    torch.testing.assert_close(shallow(image, ["relu1_2"])["relu1_2"], deep(image, ["relu1_2"])["relu1_2"])


def test_layer_deeper_than_network_raises(shallow):
    with pytest.raises(ValueError, match="deeper"):
        shallow(smooth_image(32), ["relu3_1"])
    with pytest.raises(ValueError):
        shallow(smooth_image(32), ["relu1_1", "relu2_2"])


def test_invalid_pooling_raises():
    with pytest.raises(ValueError):
        VGG19Features("relu1_1", pooling="min")


def test_max_and_avg_pooling_differ(shallow):
    max_net = VGG19Features("relu2_1", pooling="max")
    max_net.load_state_dict(shallow.state_dict())
    image = smooth_image(32, seed=5)
    avg_out, max_out = shallow(image, ["relu1_2", "relu2_1"]), max_net(image, ["relu1_2", "relu2_1"])
    # Before the first pooling they agree; after it they differ.
    torch.testing.assert_close(avg_out["relu1_2"], max_out["relu1_2"])
    assert not torch.allclose(avg_out["relu2_1"], max_out["relu2_1"], rtol=1e-3, atol=1e-3)
    assert avg_out["relu2_1"].shape == max_out["relu2_1"].shape


# --- random weights -------------------------------------------------------------------

def test_randomise_is_deterministic(shallow):
    other = VGG19Features("relu2_1")
    randomise(other)
    for key, value in shallow.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key
    assert shallow.convs["conv1_1"].weight.abs().sum() > 0
    assert torch.count_nonzero(shallow.convs["conv1_1"].bias) == 0


def test_randomise_prefix_matches_deeper_network(shallow, deep):
    # Seeded layer by layer, so a shallow network is a prefix of a deep one.
    for key, value in shallow.convs.state_dict().items():
        assert torch.equal(value, deep.convs.state_dict()[key]), key


def test_random_activations_neither_vanish_nor_explode(deep):
    out = deep(smooth_image(64, seed=7), BLOCK_FIRSTS)
    for layer in BLOCK_FIRSTS:
        mean = out[layer].mean().item()
        assert 0.1 <= mean <= 10, (layer, mean)


# --- loading torchvision weights ------------------------------------------------------

def _torchvision_state(deepest="relu5_4", prefix="features.", seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = conv_channels()
    state = {}
    for kind, name in layer_sequence(deepest):
        if kind != "conv":
            continue
        cin, cout = channels[name]
        index = TORCHVISION_INDEX[name]
        # He-scaled, as trained torchvision filters are: the flavour heuristic reads conv1_1's size.
        state[f"{prefix}{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"{prefix}{index}.bias"] = torch.randn(cout, generator=g)
    return state


@pytest.fixture(scope="module")
def full_state_file(tmp_path_factory):
    state = _torchvision_state("relu5_4")
    state["classifier.0.weight"] = torch.randn(4, 5)
    path = tmp_path_factory.mktemp("weights") / "vgg19-full.pth"
    torch.save(state, path)
    return path, state


def test_load_full_torchvision_state(full_state_file):
    path, state = full_state_file
    network, info = load_network(str(path), "relu5_1", "avg")
    assert info.flavour == "torchvision" and info.path == str(path) and not info.is_random
    assert network.pooling == "avg"
    for name, conv in network.convs.items():
        index = TORCHVISION_INDEX[name]
        assert torch.equal(conv.weight, state[f"features.{index}.weight"]), name
        assert torch.equal(conv.bias, state[f"features.{index}.bias"]), name


def test_read_features_only_state_without_prefix(tmp_path):
    state = _torchvision_state("relu2_1", prefix="")
    path = tmp_path / "features.pth"
    torch.save(state, path)
    wanted = read_weights(path).state
    assert set(wanted) == {f"{n}.{p}" for n in ("conv1_1", "conv1_2", "conv2_1") for p in ("weight", "bias")}
    assert torch.equal(wanted["conv2_1.weight"], state["5.weight"])
    network, _ = load_network(str(path), "relu2_1", "max")
    assert torch.equal(network.convs["conv1_2"].weight, state["2.weight"])
    assert network.pooling == "max"


def test_half_precision_weights_are_converted_to_float(tmp_path):
    state = {k: v.half() for k, v in _torchvision_state("relu1_2").items()}
    path = tmp_path / "half.pth"
    torch.save(state, path)
    network, _ = load_network(str(path), "relu1_2", "avg")
    assert network.convs["conv1_1"].weight.dtype == torch.float32
    torch.testing.assert_close(network.convs["conv1_1"].weight, state["features.0.weight"].float())


def _expect_error(path, deepest="relu2_1"):
    with pytest.raises(LargestyleError) as info:
        load_network(str(path), deepest, "avg")
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing_key_raises(tmp_path):
    state = _torchvision_state("relu2_1")
    del state["features.5.bias"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    assert "conv2_1 without its bias" in _expect_error(path)
    with pytest.raises(LargestyleError, match="missing.pth"):
        load_network(str(path), "relu2_1", "avg")


def test_wrong_shape_raises(tmp_path):
    state = _torchvision_state("relu2_1")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    message = _expect_error(path)
    assert "features.2.weight" in message and "(64, 32, 3, 3)" in message


def test_missing_file_raises(tmp_path):
    _expect_error(tmp_path / "nowhere.pth")


def test_non_dict_file_raises(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    assert "list" in _expect_error(path)


@pytest.mark.parametrize("text", [
    "<html><body>404 Not Found</body></html>\n",
    "not a state dict\n",
    "",
    "hello, not weights\n",
    "this is text",
])
def test_text_file_raises(tmp_path, text):
    path = tmp_path / "weights.pth"
    path.write_text(text)
    _expect_error(path)


# --- finding weights ------------------------------------------------------------------

@pytest.fixture
def empty_search(tmp_path, monkeypatch):
    """Weights dir and torch hub dir, both empty."""
    weights_dir, hub_dir = tmp_path / "weights", tmp_path / "hub"
    weights_dir.mkdir()
    hub_dir.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_dir))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    return weights_dir, hub_dir


def test_find_weights_none_when_nothing_there(empty_search):
    assert find_weights() is None


def test_find_weights_honours_env_dir(empty_search):
    weights_dir, _ = empty_search
    (weights_dir / KNOWN_FILES[0]).write_bytes(b"x")
    assert find_weights() == weights_dir / KNOWN_FILES[0]


def test_find_weights_falls_back_to_hub_cache(empty_search):
    weights_dir, hub_dir = empty_search
    (hub_dir / "checkpoints").mkdir()
    (hub_dir / "checkpoints" / KNOWN_FILES[0]).write_bytes(b"x")
    assert find_weights() == hub_dir / "checkpoints" / KNOWN_FILES[0]
    # The weights dir comes first.
    (weights_dir / KNOWN_FILES[0]).write_bytes(b"x")
    assert find_weights() == weights_dir / KNOWN_FILES[0]


def test_find_weights_ignores_other_names_and_directories(empty_search):
    weights_dir, _ = empty_search
    (weights_dir / "other.pth").write_bytes(b"x")
    (weights_dir / KNOWN_FILES[0]).mkdir()
    assert find_weights() is None


def test_load_network_uses_found_weights(empty_search):
    weights_dir, _ = empty_search
    state = _torchvision_state("relu1_2", seed=3)
    torch.save(state, weights_dir / KNOWN_FILES[0])
    network, info = load_network(None, "relu1_2", "avg")
    assert info.flavour == "torchvision" and info.path == str(weights_dir / KNOWN_FILES[0])
    assert torch.equal(network.convs["conv1_2"].weight, state["features.2.weight"])


def test_load_network_falls_back_to_random(empty_search, shallow):
    network, info = load_network(None, "relu2_1", "avg")
    assert info.is_random and info.path is None and info.flavour == "random"
    for key, value in shallow.state_dict().items():
        assert torch.equal(value, network.state_dict()[key]), key


def test_default_weights_dir_without_env(monkeypatch):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    assert weights_mod.default_weights_dir() == Path(weights_mod.__file__).resolve().parents[2] / "weights"


def test_the_in_place_relu_gives_the_copying_relus_features_and_gradients():
    """Overwriting the convolutions' outputs and the incoming gradients changes no value, in float64."""
    network = VGG19Features("relu3_1").double()
    image = torch.rand(1, 3, 40, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    layers = ("relu1_1", "relu2_2", "relu3_1")
    results = []
    for relu in (None, torch.relu):
        if relu is not None:
            network.relu = relu
        x = image.clone().requires_grad_(True)
        features = network(x, layers)
        # relu3_1's gradient arrives expanded (not writable in place); the others come from convolutions.
        total = features["relu3_1"].sum() + sum((f * f).sum() for f in features.values())
        (gradient,) = torch.autograd.grad(total, x)
        results.append((features, gradient))
    (in_place, in_place_gradient), (copying, copying_gradient) = results
    assert all(torch.equal(in_place[layer], copying[layer]) for layer in layers)
    assert torch.allclose(in_place_gradient, copying_gradient, rtol=1e-12, atol=0)
