"""End-to-end command-line runs on tiny images."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from largestyle.cli.main import main
from largestyle.config.settings import option_fields

# Tiny and quick: one 64 px level, a few evaluations.
FAST = ["--target-size", "64", "--iterations", "3", "--first-level-factor", "1"]
# A budget no level fits in, with a tile size given, forces blend tiling.
TILED = ["--max-memory", "1MB", "--tile-size", "32", "--passes", "2", "--tiling", "blend"]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:72]
    content = np.stack([x / 72, y / 48, 0.5 + 0.5 * np.sin(x / 5)], axis=-1)
    content_path = tmp_path / "content.png"
    Image.fromarray((content * 255).astype(np.uint8)).save(content_path)
    style_path = tmp_path / "style.jpg"
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(style_path)
    return content_path, style_path


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


def test_render_tiled_end_to_end(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", content, style, "-o", out, *FAST, *TILED)
    assert code == 0, err
    result = Image.open(out)
    assert result.size == (64, 43)  # long side exactly the target, aspect of 72x48 kept
    assert "blend" in err and "32 px tiles" in err
    resized = np.asarray(Image.open(content).convert("RGB").resize(result.size), dtype=float)
    assert np.abs(np.asarray(result, dtype=float) - resized).mean() > 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.png")]  # no temporary left


def test_random_weights_warning(images, tmp_path, capsys):
    content, style = images
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "o.jpg", *FAST, "--quiet")
    assert code == 0
    assert "warning: no trained VGG-19 weights found" in err
    assert "vgg19-dcbb9e9d.pth" in err
    assert "level 1/1" not in err  # --quiet hides progress, not warnings
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"


def test_log_lines_when_not_a_terminal(images, tmp_path, capsys):
    content, style = images
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST)
    assert code == 0
    assert "level 1/1: 64x43 whole, 3 evaluations" in err
    assert "level 1/1 done" in err and "wrote" in err


def _assert_clean_failure(code, err, out):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("largestyle: error: "), err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("problem, message", [
    ("missing", "content image not found"),
    ("text", "not an image file"),
    ("truncated", "corrupt or truncated"),
    ("empty", "not an image file"),
])
def test_bad_content_file(images, tmp_path, capsys, problem, message):
    _, style = images
    bad = tmp_path / "bad.png"
    if problem == "text":
        bad = tmp_path / "notes.jpg"
        bad.write_text("not a picture\n")
    elif problem == "truncated":
        good = tmp_path / "good.png"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 100).save(good)
        bad.write_bytes(good.read_bytes()[:80])
    elif problem == "empty":
        bad.write_bytes(b"")
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", bad, style, "-o", out, *FAST)
    _assert_clean_failure(code, err, out)
    assert message in err and str(bad) in err


def test_bad_style_file_names_the_style(images, tmp_path, capsys):
    content, _ = images
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", content, tmp_path / "nope.png", "-o", out, *FAST)
    _assert_clean_failure(code, err, out)
    assert "style image not found" in err


@pytest.mark.parametrize("target, message", [
    ("missing-dir/out.png", "does not exist"),
    ("out.gif", "unsupported output type"),
    ("out", "unsupported output type"),
])
def test_unwritable_output(images, tmp_path, capsys, target, message):
    content, style = images
    out = tmp_path / target
    code, err = run_cli(capsys, "render", content, style, "-o", out, *FAST)
    _assert_clean_failure(code, err, out)
    assert message in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_output_directory(images, tmp_path, capsys):
    content, style = images
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    code, err = run_cli(capsys, "render", content, style, "-o", locked / "o.png", *FAST)
    _assert_clean_failure(code, err, locked / "o.png")
    assert "permission denied" in err


def test_bad_option_value(images, tmp_path, capsys):
    content, style = images
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "o.png", "--tile-size", "40")
    _assert_clean_failure(code, err, tmp_path / "o.png")
    assert "--tile-size must be a multiple of 16" in err


def test_debug_shows_traceback(images, tmp_path):
    content, _ = images
    with pytest.raises(Exception, match="style image not found"):
        main(["render", str(content), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"), "--debug"])


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in option_fields():
        assert "--" + field.name.replace("_", "-") in text
    assert "(default: 512)" in text and "(default: relu4_2)" in text and "(default: avg)" in text


def test_python_dash_m_runs(images, tmp_path):
    content, style = images
    out = tmp_path / "m.png"
    result = subprocess.run([sys.executable, "-m", "largestyle", "render", str(content), str(style),
                             "-o", str(out), *FAST], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (64, 43)
    missing = subprocess.run([sys.executable, "-m", "largestyle", "render", "nope.png", str(style)],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_budget_too_small_for_any_tile(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "render", content, style, "-o", out, *FAST, "--max-memory", "1MB")
    _assert_clean_failure(code, err, out)
    assert "too small to tile" in err and "--max-memory" in err


def test_out_of_memory_is_one_clear_line(images, tmp_path, capsys, monkeypatch):
    from largestyle.engine.engine import Engine

    def exhausted(*args, **kwargs):
        torch.empty(2 ** 50, dtype=torch.uint8)  # the host allocator's real error

    monkeypatch.setattr(Engine, "render", exhausted)
    content, style = images
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "o.png", *FAST)
    assert code == 1 and err.strip() == ("largestyle: error: out of memory; set a smaller --max-memory "
                                         "(or --tile-size) so more levels are tiled")
    assert not (tmp_path / "o.png").exists()


def test_plan_shows_levels_without_rendering(images, tmp_path, capsys):
    content, style = images
    code = main(["plan", str(content), str(style), "--target-size", "500", "--max-memory", "300MB",
                 "--tiling", "exact", "--weights", "random"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["level", "size", "strategy", "tiles"]
    assert lines[1].startswith("1") and "250x166" in lines[1] and "whole" in lines[1]
    assert "500x333" in lines[2] and "exact" in lines[2] and "80 px" in lines[2]
    assert lines[-5].startswith("evals: expected at --tolerance 0.001") and "at its cap would take" in lines[-5]
    assert lines[-4].startswith("total: about") and "µs per pixel" in lines[-4]
    assert lines[-3].startswith("memory model: ") and "calibration.json" in lines[-3]
    assert lines[-2] == "output: 500 x 333 px = 1.67 x 1.11 in (4.23 x 2.82 cm) at 300 dpi"
    assert lines[-1] == ("method: L-BFGS from the content; each level ends once it improves by less than 0.001 "
                         "over 10 evaluations")
    assert not list(tmp_path.glob("*.png"))[2:]  # only the two inputs: nothing rendered
    code = main(["plan", str(content), str(style), "--target-size", "500", "--max-memory", "90MB",
                 "--tiling", "exact", "--weights", "random"])
    assert code == 2 and "too small for exact tiling" in capsys.readouterr().err


def test_auto_tiling_takes_exact_where_its_buffers_fit_else_blend(images, capsys):
    content, style = images
    for budget, strategy in (("300MB", "exact"), ("120MB", "blend")):
        assert main(["plan", str(content), str(style), "--target-size", "500", "--max-memory", budget,
                     "--weights", "random"]) == 0
        assert capsys.readouterr().out.splitlines()[2].split()[2] == strategy
