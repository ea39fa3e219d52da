"""`largestyle weights fetch|info|convert`, --weights random, and the one fetch a render tries."""

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

import largestyle.network.weights as weights_module
from largestyle.cli.main import main
from largestyle.network.vgg import TORCHVISION_INDEX, VGG19Features
from largestyle.network.weights import Source, compact_name, randomise

FAST = ["--target-size", "48", "--iterations", "2", "--first-level-factor", "1"]


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """A full torchvision-format VGG-19 state dict with random values."""
    network = VGG19Features("relu5_4")
    randomise(network)
    state = {f"features.{TORCHVISION_INDEX[name]}.{part}": getattr(conv, part).detach().clone()
             for name, conv in network.convs.items() for part in ("weight", "bias")}
    state["classifier.0.weight"] = torch.zeros(8, 8)
    path = tmp_path_factory.mktemp("source") / "vgg19-full.pth"
    torch.save(state, path)
    return path


@pytest.fixture
def images(tmp_path):
    y, x = np.mgrid[0:32, 0:48]
    Image.fromarray((np.stack([x * 5, y * 7, x + y], -1) % 256).astype(np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    return tmp_path / "c.png", tmp_path / "s.png"


@pytest.fixture
def local_source(torchvision_file, monkeypatch):
    digest = hashlib.sha256(torchvision_file.read_bytes()).hexdigest()
    source = Source(torchvision_file.as_uri(), "vgg19-dcbb9e9d.pth", digest[:8])
    monkeypatch.setitem(weights_module.SOURCES, "torchvision", source)
    return source


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fetch_keeps_only_the_features(tmp_path, capsys, local_source, torchvision_file):
    code, out, err = run(capsys, "weights", "fetch", "--dir", tmp_path / "w", "-q")
    assert code == 0, err
    saved = tmp_path / "w" / compact_name("torchvision")
    assert saved.is_file() and f"saved {saved}" in out
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [saved.name]  # the full download is gone
    assert saved.stat().st_size < torchvision_file.stat().st_size
    code, out, _ = run(capsys, "weights", "info", saved)
    assert code == 0 and "torchvision" in out and "16 conv layers" in out and "usable       yes" in out


def test_fetch_with_a_bad_hash_saves_nothing(tmp_path, capsys, monkeypatch, torchvision_file):
    monkeypatch.setitem(weights_module.SOURCES, "torchvision",
                        Source(torchvision_file.as_uri(), "vgg19-dcbb9e9d.pth", "00000000"))
    code, _, err = run(capsys, "weights", "fetch", "--dir", tmp_path / "w", "-q")
    assert code == 2 and "sha256" in err and "Traceback" not in err
    assert not any((tmp_path / "w").iterdir()) if (tmp_path / "w").exists() else True


def test_render_fetches_once_then_uses_trained_weights(tmp_path, capsys, monkeypatch, local_source, images):
    monkeypatch.delenv("LARGESTYLE_NO_FETCH")
    weights_dir = tmp_path / "weights"
    monkeypatch.setenv("LARGESTYLE_WEIGHTS_DIR", str(weights_dir))
    content, style = images
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, err
    assert "fetching them once" in err and (weights_dir / compact_name("torchvision")).is_file()
    assert "weights torchvision (" in err and "RANDOM" not in err
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o2.png", *FAST)
    assert code == 0 and "fetching" not in err  # found now: no second download


def test_render_offline_carries_on_with_random_weights(tmp_path, capsys, monkeypatch, images):
    monkeypatch.delenv("LARGESTYLE_NO_FETCH")
    monkeypatch.setitem(weights_module.SOURCES, "torchvision",
                        Source((tmp_path / "unreachable.pth").as_uri(), "vgg19-dcbb9e9d.pth", "dcbb9e9d"))
    content, style = images
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, err
    assert "largestyle: warning: cannot download" in err and "RANDOM" in err
    assert Image.open(tmp_path / "o.png").size == (48, 32)


def test_weights_random_is_explicit_and_does_not_fetch(tmp_path, capsys, monkeypatch, images):
    monkeypatch.delenv("LARGESTYLE_NO_FETCH")
    content, style = images
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST, "--weights", "random")
    assert code == 0 and "fetching" not in err and "weights random" in err


def test_convert_then_render_with_the_file(tmp_path, capsys, torchvision_file, images):
    out = tmp_path / "compact.pth"
    code, text, err = run(capsys, "weights", "convert", torchvision_file, out)
    assert code == 0, err
    assert "torchvision flavour, 16 conv layers" in text
    content, style = images
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST, "--weights", out)
    assert code == 0 and f"weights torchvision ({out}, sha256 " in err and "by the file's flavour entry" in err


@pytest.mark.parametrize("command", [["info"], ["convert"]])
def test_bad_weights_file_is_one_line(tmp_path, capsys, command):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"\x80\x02not really a pickle")
    args = ["weights", *command, bad] + ([tmp_path / "out.pth"] if command == ["convert"] else [])
    code, _, err = run(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err
    assert not (tmp_path / "out.pth").exists()


def test_render_with_a_bad_weights_file_fails_before_rendering(tmp_path, capsys, images):
    content, style = images
    bad = tmp_path / "broken.pth"
    bad.write_text("not weights")
    code, _, err = run(capsys, "render", content, style, "-o", tmp_path / "o.png", "--weights", bad)
    assert code == 2 and str(bad) in err and not (tmp_path / "o.png").exists()
