import hashlib
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from largestyle.network import weightfiles
from largestyle.core.errors import LargestyleError
from largestyle.network.vgg import TORCHVISION_INDEX, VGG19Features
from largestyle.core.vgg import conv_channels
from largestyle.network.flavours import IMAGENET_MEAN, IMAGENET_STD
from largestyle.network.weightfiles import (FLAVOURS, WeightsFile, detect_format, read_weights, sha256_of,
                                    to_torchvision_state, write_compact)
from largestyle.network.weights import randomise

ALL_CONVS = tuple(conv_channels())


@pytest.fixture(scope="module")
def canonical():
    network = VGG19Features("relu5_4")
    randomise(network)
    return {f"{name}.{part}": getattr(conv, part).detach().clone()
            for name, conv in network.convs.items() for part in ("weight", "bias")}


def assert_same(state, expected):
    assert list(state) == list(expected)
    for key in expected:
        assert state[key].dtype == torch.float32
        assert torch.equal(state[key], expected[key]), key


def save_torchvision(path, canonical, prefix=True, classifier=True):
    state = to_torchvision_state(canonical)
    if not prefix:
        state = {key.removeprefix("features."): value for key, value in state.items()}
    if classifier:
        state["classifier.0.weight"] = torch.zeros(4, 8)
    torch.save(state, path)
    return path


def save_lasagne(path, canonical):
    arrays = [canonical[f"{name}.{part}"].numpy() for name in ALL_CONVS for part in ("weight", "bias")]
    with open(path, "wb") as stream:
        pickle.dump({"param values": arrays}, stream, protocol=2)
    return path


def caffe_conversion(canonical):
    """The torchvision network re-expressed for Caffe input (BGR, x * 256 - mean, no std)."""
    weight, bias = canonical["conv1_1.weight"], canonical["conv1_1.bias"]
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN)
    caffe_mean_rgb = torch.tensor(FLAVOURS["caffe"].mean[::-1])
    shift = (caffe_mean_rgb / 256 - mean) / torch.tensor(IMAGENET_STD)
    state = dict(canonical)
    state["conv1_1.bias"] = bias + (weight * shift.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    state["conv1_1.weight"] = (weight / (256 * std)).flip(1)
    return state


def features(state, x):
    """relu1_1, relu1_2, relu2_1 of the conv stack on an already prepared input."""
    out = {}
    for name in ("conv1_1", "conv1_2", "pool", "conv2_1"):
        if name == "pool":
            x = F.avg_pool2d(x, 2)
            continue
        x = torch.relu(F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1))
        out["relu" + name[4:]] = x
    return out


def test_every_format_reads_back_the_same_state(tmp_path, canonical):
    files = {
        "full.pth": ("torchvision", "torchvision", save_torchvision(tmp_path / "full.pth", canonical)),
        "bare.pth": ("torchvision", "torchvision",
                     save_torchvision(tmp_path / "bare.pth", canonical, prefix=False, classifier=False)),
        "vgg_conv.pth": ("named", "gatys", tmp_path / "vgg_conv.pth"),
        "vgg19_normalized.pkl": ("lasagne", "lasagne", save_lasagne(tmp_path / "vgg19_normalized.pkl", canonical)),
    }
    torch.save(canonical, tmp_path / "vgg_conv.pth")
    for name, (format, flavour, path) in files.items():
        found = read_weights(path)
        assert (found.format, found.flavour) == (format, flavour), name
        assert detect_format(path) == format
        assert found.layers == ALL_CONVS
        assert found.sha256 == sha256_of(path)
        assert_same(found.state, canonical)

    compact = write_compact(read_weights(files["vgg19_normalized.pkl"][2]), tmp_path / "compact.pth")
    found = read_weights(compact)
    assert (found.format, found.flavour, found.chosen_by) == ("largestyle", "lasagne", "the file's flavour entry")
    assert_same(found.state, canonical)
    assert torch.load(compact, weights_only=True)["source_sha256"] == sha256_of(files["vgg19_normalized.pkl"][2])


def test_forced_formats(tmp_path, canonical):
    path = save_torchvision(tmp_path / "w.pth", canonical)
    for format in ("torchvision", "caffe"):
        found = read_weights(path, format)
        assert (found.format, found.flavour, found.chosen_by) == (format, format, "--weights-format")
    pkl = save_lasagne(tmp_path / "w.bin", canonical)
    assert read_weights(pkl, "lasagne").flavour == "lasagne"
    with pytest.raises(LargestyleError, match="w.pth is not in the named format"):
        read_weights(path, "named")
    with pytest.raises(LargestyleError, match="unknown weights format"):
        read_weights(path, "keras")


def test_caffe_conversion_computes_the_same_features(tmp_path, canonical):
    torchvision_file = read_weights(save_torchvision(tmp_path / "tv.pth", canonical))
    caffe_file = read_weights(save_torchvision(tmp_path / "caffe.pth", caffe_conversion(canonical)))
    assert torchvision_file.flavour == "torchvision" and torchvision_file.chosen_by.startswith("heuristic: ")
    assert caffe_file.flavour == "caffe" and caffe_file.chosen_by.startswith("heuristic: ")
    image = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    expected = features(torchvision_file.state, FLAVOURS["torchvision"].prepare(image))
    got = features(caffe_file.state, FLAVOURS["caffe"].prepare(image))
    for layer in expected:
        # Zero padding means different pixels in the two input conventions: compare the interior.
        inner = (..., slice(2, -2), slice(2, -2))
        assert torch.allclose(got[layer][inner], expected[layer][inner], rtol=1e-4, atol=1e-4), layer


def test_known_sha256_decides_the_flavour(tmp_path, canonical, monkeypatch):
    path = save_torchvision(tmp_path / "caffe.pth", caffe_conversion(canonical))
    monkeypatch.setitem(weightfiles.KNOWN_SHA256, sha256_of(path)[:8], "torchvision")
    found = read_weights(path, "caffe")
    assert (found.flavour, found.chosen_by) == ("torchvision", "known sha256")


def test_file_may_stop_early_but_must_start_at_conv1_1(tmp_path, canonical):
    upto = ALL_CONVS[:ALL_CONVS.index("conv5_1") + 1]
    state = {key: value for key, value in canonical.items() if key.split(".")[0] in upto}
    found = read_weights(save_torchvision(tmp_path / "short.pth", state, prefix=False, classifier=False))
    assert found.layers == upto and found.layers[-1] == "conv5_1"
    del state["conv1_1.weight"], state["conv1_1.bias"]
    with pytest.raises(LargestyleError, match=r"headless.pth is not a VGG-19 .*not conv1_1"):
        read_weights(save_torchvision(tmp_path / "headless.pth", state))


def bad_files(tmp_path, canonical):
    whole = save_torchvision(tmp_path / "whole.pth", canonical).read_bytes()
    transposed = dict(canonical)
    transposed["conv3_1.weight"] = canonical["conv3_1.weight"].transpose(0, 1)
    vgg16 = {f"features.{index}.{part}": torch.zeros(1) for index in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
             for part in ("weight", "bias")}
    cases = {
        "truncated.pth": (whole[:len(whole) // 2], r"truncated or damaged \(not a complete PyTorch file\)"),
        "random.pth": (np.random.default_rng(0).bytes(4096), "not a PyTorch or pickle weights file"),
        "empty.pth": (b"", "is empty"),
        "text.pth": (b"these are not the weights you are looking for\n", "not a PyTorch or pickle weights file"),
        "empty.pkl": (b"", "is empty"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save(to_torchvision_state(transposed), tmp_path / "transposed.pth")
    cases["transposed.pth"] = (None, r"conv3_1.weight \(stored as features.10.weight\) has shape "
                                     r"\(128, 256, 3, 3\), VGG-19 needs \(256, 128, 3, 3\)")
    torch.save(vgg16, tmp_path / "vgg16.pth")
    cases["vgg16.pth"] = (None, r"is not a VGG-19 \(unexpected keys features.17.weight")
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "resnet.pth")
    cases["resnet.pth"] = (None, r"is not a VGG-19 \(found keys conv1.weight\)")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    cases["list.pth"] = (None, "is not a VGG-19 .it holds a list")
    cases["missing.pth"] = (None, "weights file not found: ")
    return cases


def test_bad_files_fail_with_one_line_naming_the_file(tmp_path, canonical):
    for name, (_, message) in bad_files(tmp_path, canonical).items():
        with pytest.raises(LargestyleError, match=message) as caught:
            read_weights(tmp_path / name)
        text = str(caught.value)
        assert str(tmp_path / name) in text and "\n" not in text, name


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {self.marker}",)


class Evaluate:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_malicious_pickles_are_refused(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps({"param values": [Exploit(marker)]}, protocol=2))
    with pytest.raises(LargestyleError) as caught:
        read_weights(path)
    assert str(path) in str(caught.value)
    if suffix == ".pkl":
        assert "posix.system" in str(caught.value) or "os.system" in str(caught.value)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(Evaluate(), protocol=4))  # protocol 2 would name it __builtin__.eval
    with pytest.raises(LargestyleError, match="builtins.eval"):
        read_weights(path, "lasagne")


def test_write_compact_round_trip_keeps_only_convs(tmp_path, canonical):
    source = read_weights(save_torchvision(tmp_path / "full.pth", canonical))
    out = write_compact(source, tmp_path / "compact.pth")
    found = read_weights(out)
    assert (found.flavour, found.format) == ("torchvision", "largestyle")
    assert_same(found.state, canonical)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compact.pth", "full.pth"]


def test_write_compact_failures_leave_nothing_behind(tmp_path, canonical, monkeypatch):
    weights = WeightsFile("memory", "named", "gatys", "0" * 64,
                          {k: v for k, v in canonical.items() if k.startswith("conv1_1")}, "test")
    with pytest.raises(LargestyleError, match="nowhere/out.pth: directory .* does not exist"):
        write_compact(weights, tmp_path / "nowhere" / "out.pth")
    assert not (tmp_path / "nowhere").exists()

    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(LargestyleError, match="locked/out.pth: .*[Pp]ermission denied"):
                write_compact(weights, locked / "out.pth")
            assert list(locked.iterdir()) == []
        finally:
            locked.chmod(0o700)

    target = tmp_path / "out.pth"
    target.write_bytes(b"old")

    def failing_save(obj, stream, *args, **kwargs):
        stream.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(LargestyleError, match="out.pth: the disk is full; free some space"):
        write_compact(weights, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pth"]


def test_prepare_known_pixel():
    pixel = torch.tensor([0.5, 0.25, 1.0]).view(1, 3, 1, 1)
    torchvision = FLAVOURS["torchvision"].prepare(pixel).flatten()
    expected = [(0.5 - 0.485) / 0.229, (0.25 - 0.456) / 0.224, (1.0 - 0.406) / 0.225]
    assert torch.allclose(torchvision, torch.tensor(expected))
    caffe = FLAVOURS["caffe"].prepare(pixel).flatten()  # BGR: 256 - 103.939, 64 - 116.779, 128 - 123.68
    assert torch.allclose(caffe, torch.tensor([152.061, -52.779, 4.32]), atol=1e-4)


def test_flavour_defaults():
    assert set(FLAVOURS) == {"torchvision", "caffe", "lasagne", "gatys", "random",
                             "torchvision-normalized", "caffe-normalized"}
    assert FLAVOURS["caffe-normalized"].scale == 256 and FLAVOURS["caffe-normalized"].channels == "BGR"
    # Loss weights are no longer a flavour's: the loss terms are scale-free (tests/gatys/test_losses.py).
    assert not any(hasattr(flavour, "style_weight") for flavour in FLAVOURS.values())
    assert FLAVOURS["random"].mean == FLAVOURS["torchvision"].mean


def test_sha256_of(tmp_path):
    data = np.random.default_rng(1).bytes(3 * (1 << 20) + 17)
    (tmp_path / "blob").write_bytes(data)
    assert sha256_of(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_torchvision_keys_match_the_network_positions(canonical):
    keys = to_torchvision_state(canonical)
    assert f"features.{TORCHVISION_INDEX['conv5_4']}.bias" in keys and len(keys) == 32
