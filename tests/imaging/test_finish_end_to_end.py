"""--preserve-colors and --remove-noise through the command line, the API and the engine, on tiny images."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import largestyle
from largestyle.cli.main import main
from largestyle.config.settings import make_config
from largestyle.engine.engine import Engine
from largestyle.engine.records import finished_key
from largestyle.imaging.colours import match_colours
from largestyle.imaging.finish import finish_output
from largestyle.io.inputs import load_inputs
from largestyle.jobs.store import JobDirectory

SHALLOW = ["--content-layers", "relu2_1", "--style-layers", "relu1_1,relu2_1"]
FAST = ["--target-size", "64", "--iterations", "3", "--first-level-factor", "1", "--weights", "random", *SHALLOW]
TILING = {
    "whole": [],
    "exact": ["--tiling", "exact", "--max-memory", "1MB", "--tile-size", "32"],
    "blend": ["--tiling", "blend", "--max-memory", "1MB", "--tile-size", "48", "--passes", "1"],
}
FINISH = ["--preserve-colors", "luminance", "--remove-noise", "0.05"]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:72]
    content = np.stack([x / 72, y / 48, 0.5 + 0.5 * np.sin(x / 5)], axis=-1)
    paths = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray((content * 255).astype(np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(paths[1])
    return paths


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def options(arguments):
    """API keyword options from command-line ones."""
    pairs = dict(zip(arguments[::2], arguments[1::2]))
    converted = {key[2:].replace("-", "_"): value for key, value in pairs.items()}
    for name in ("target_size", "iterations", "first_level_factor", "tile_size", "passes"):
        if name in converted:
            converted[name] = int(converted[name])
    if "remove_noise" in converted:
        converted["remove_noise"] = float(converted["remove_noise"])
    for name in ("content_layers", "style_layers"):
        converted[name] = tuple(converted[name].split(","))
    return converted


def eight_bit(image):
    return (image.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.mark.parametrize("tiling", sorted(TILING))
def test_render_finishes_its_output_in_every_tiling(images, tmp_path, capsys, tiling):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, *TILING[tiling], *FINISH)
    assert code == 0, err
    if tiling != "whole":
        assert f"{tiling}, " in err and "px tiles" in err
    written = np.asarray(Image.open(out))
    raw = JobDirectory(tmp_path / "out.job").load(finished_key(0))[0]  # the render before it was finished
    config = make_config(**options(FAST + TILING[tiling] + FINISH))
    expected = finish_output(raw.clone(), load_inputs(*images, config).content, config)
    assert np.array_equal(written, eight_bit(expected))
    assert np.abs(written.astype(int) - eight_bit(raw)).max() > 2  # finishing changed it
    if tiling == "whole":  # the API finishes as the command line does
        finished = largestyle.render(*images, output="tensor", **options(FAST + FINISH))
        assert np.array_equal(eight_bit(finished), written)
    report = (tmp_path / "out.job" / "report.html").read_text()
    assert "preserve_colors" in report and "remove_noise" in report


def test_histogram_matching_is_applied_to_the_style_before_rendering(images):
    plain = options(FAST)
    inputs = load_inputs(*images, make_config(**plain))
    (style,) = inputs.styles
    matched = Engine(make_config(preserve_colors="histogram", **plain)).render(inputs.content, style)
    by_hand = Engine(make_config(**plain)).render(inputs.content, match_colours(style, inputs.content))
    unmatched = Engine(make_config(**plain)).render(inputs.content, style)
    assert torch.equal(matched, by_hand) and not torch.equal(matched, unmatched)
    assert (match_colours(style, inputs.content) - style).abs().mean() > 0.01  # a real change


def test_sixteen_bit_stays_sixteen_bit_and_a_new_remove_noise_rewrites_without_rendering(images, tmp_path, capsys):
    out = tmp_path / "out.tif"
    command = ["render", *images, "-o", out, *FAST, "--bit-depth", "16", "--preserve-colors", "luminance"]
    assert run_cli(capsys, *command, "--remove-noise", "0.05")[0] == 0
    first = tifffile.imread(out)
    assert first.dtype == np.uint16 and len(np.unique(first)) > 256 and (first % 257).any()
    code, err = run_cli(capsys, *command, "--remove-noise", "0.2")
    assert code == 0 and "writing the output again with --remove-noise (was 0.05, now 0.2)" in err
    assert "level 1/1 done" not in err  # not rendered again
    second = tifffile.imread(out)
    assert second.dtype == np.uint16 and np.abs(second.astype(int) - first).max() > 257
    code, err = run_cli(capsys, *command, "--remove-noise", "0.05")
    assert code == 0 and "level 1/1 done" not in err
    assert np.array_equal(tifffile.imread(out), first)  # from the same finished render, the same file
    status = json.loads((tmp_path / "out.job" / "status.json").read_text())
    assert status["state"] == "finished"


def test_a_bad_remove_noise_is_one_line(images, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--remove-noise", "11")
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("largestyle: error: ") and "--remove-noise" in lines[0]


def render_process(images, output, arguments, kill_at=""):
    env = {**os.environ, "LARGESTYLE_KILL_AT": kill_at}
    return subprocess.run([sys.executable, "-m", "largestyle", "render", *map(str, images), "-o", str(output),
                           "-q", *arguments], env=env, capture_output=True, text=True)


def test_a_stopped_finished_render_resumes_to_the_same_file(images, tmp_path, capsys):
    arguments = [*FAST, *TILING["exact"], *FINISH, "--iterations", "6", "--checkpoint-every", "2"]
    reference, output = tmp_path / "reference.png", tmp_path / "out.png"
    assert run_cli(capsys, "render", *images, "-o", reference, *arguments)[0] == 0  # uninterrupted, in this process
    stopped = render_process(images, output, arguments, "evaluation:4:TERM")
    assert stopped.returncode == 130 and not output.exists(), stopped.stderr
    resumed = render_process(images, output, arguments)
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes() == reference.read_bytes()
    assert "resumed" in (tmp_path / "out.job" / "events.jsonl").read_text().lower()


def test_remove_noise_without_scikit_image_is_refused_before_anything_is_written(images, tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.setattr("largestyle.imaging.finish.find_spec", lambda name: None)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--remove-noise", "0.05")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "needs scikit-image" in err
    assert not out.exists() and not (tmp_path / "out.job").exists()
    with pytest.raises(largestyle.LargestyleError, match="scikit-image"):
        largestyle.render(*images, **options(FAST), remove_noise=0.05)
