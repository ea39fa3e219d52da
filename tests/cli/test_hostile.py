"""Hostile input, table-driven: every case is one line on stderr, exit status 2, and nothing of the user's touched.

Each case runs the command line in a folder of decoy user files (a photo, an artwork,
documents, a folder of pictures). Whatever the case, the folder is hashed before and
after: no file outside the output and the job directory may change, and a refused
render writes no output.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from largestyle.cli.main import main

FAST = ["--target-size", "32", "--iterations", "2", "--first-level-factor", "1", "--weights", "random"]


def snapshot(folder: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every entry below ``folder`` (links not followed) with its content hash, except ``skip`` and below."""
    found = {}
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        for name in dirs + files:
            path = root / name
            if any(path == s or s in path.parents for s in skip):
                continue
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = "link to " + os.readlink(path)
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = "special"
    return found


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user's folder: a photo, an artwork, documents and a folder of pictures; the working directory."""
    home = tmp_path / "home"
    home.mkdir()
    y, x = np.mgrid[0:24, 0:36]
    photo = np.stack([x / 36, y / 24, 0.5 + 0.5 * np.sin(x / 3)], axis=-1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(home / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(home / "art.png")
    (home / "notes.txt").write_text("my notes\n")
    (home / "docs").mkdir()
    (home / "docs" / "letter.txt").write_text("dear ...\n")
    (home / "pics").mkdir()
    (home / "pics" / "output.png").write_bytes((home / "art.png").read_bytes())
    (home / "pics" / "report.html").write_text("<p>my page</p>")
    monkeypatch.chdir(home)
    return home


def render(*args) -> list[str]:
    return ["render", "photo.png", "art.png", *map(str, args)]


def finished_job(home: Path, *extra) -> Path:
    """Render o.png for real (tiny), so a case can damage what it left."""
    assert main(render("-o", "o.png", *FAST, *extra)) == 0
    return home / "o.job"


def interrupted_job(home: Path) -> Path:
    """A job whose status says it stopped mid-way: the next run resumes from its checkpoints."""
    job = finished_job(home)
    status = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))
    return job


def flip_byte(path: Path, offset: int = -40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def float_tiff(home: Path, value: float) -> str:
    pixels = np.full((16, 16, 3), 0.5, np.float32)
    pixels[3, 4, 1] = value
    tifffile.imwrite(home / "float.tif", pixels, photometric="rgb")
    return "float.tif"


def nan_weights(home: Path) -> str:
    """A torchvision-keyed VGG-19 file with one NaN in conv2_1."""
    from largestyle.core.vgg import conv_channels
    from largestyle.network.weightfiles import to_torchvision_state

    state = {}
    for name, (c_in, c_out) in conv_channels().items():
        state[f"{name}.weight"] = torch.full((c_out, c_in, 3, 3), 0.01)
        state[f"{name}.bias"] = torch.zeros(c_out)
    state["conv2_1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(to_torchvision_state(state), home / "nan.pth")
    return "nan.pth"


@dataclass
class Case:
    setup: Callable[[Path], list[str]]  # makes what the case needs; returns the command line
    expect: str  # words the one line must contain
    output: str | None = "out.png"  # the output the case names (never written)
    job: str | None = None  # the job directory it may create (default: OUTPUT.job)


CASES = {
    # --- data safety: outputs and job directories that would touch the user's files
    "output is the content": Case(lambda h: render("-o", "photo.png", *FAST), "would overwrite it", "photo.png"),
    "output is the style": Case(lambda h: render("-o", "art.png", *FAST), "the style image", "art.png"),
    "output reaches the content through ..": Case(
        lambda h: render("-o", "docs/../photo.png", *FAST), "is the content image", "photo.png"),
    "output is a symlink to the content": Case(
        lambda h: (os.symlink("photo.png", h / "link.png"), render("-o", "link.png", *FAST))[1],
        "is the content image", "link.png"),
    "output is a hard link to the style": Case(
        lambda h: (os.link(h / "art.png", h / "hard.png"), render("-o", "hard.png", *FAST))[1],
        "is the style image", "hard.png"),
    "output is the weights file": Case(
        lambda h: (Image.new("RGB", (4, 4)).save(h / "w.png"), render("-o", "w.png", "--weights", "w.png",
                                                                       "--target-size", "32"))[1],
        "is the weights file", "w.png"),
    "job dir . with --restart holds the inputs": Case(
        lambda h: render("-o", "result.png", "--job-dir", ".", "--restart", *FAST), "holds the content image",
        "result.png", job=None),
    "job dir holds the output": Case(
        lambda h: ((h / "jd").mkdir(), render("-o", "jd/out.png", "--job-dir", "jd", *FAST))[1], "holds the output",
        "jd/out.png", "jd"),
    "job dir is the output": Case(
        lambda h: render("-o", "out.png", "--job-dir", "out.png", *FAST), "is the output", "out.png"),
    "job dir is the content": Case(
        lambda h: render("-o", "out.png", "--job-dir", "photo.png", *FAST), "is the content image"),
    "job dir is a user's folder": Case(
        lambda h: render("-o", "out.png", "--job-dir", "docs", *FAST), "not a largestyle job directory"),
    "job dir is a user's folder with output.png": Case(
        lambda h: render("-o", "out.png", "--job-dir", "pics", "--restart", *FAST), "not a largestyle job directory"),
    "job dir is a file": Case(lambda h: render("-o", "out.png", "--job-dir", "notes.txt", *FAST), "not a folder"),
    "job dir cannot be made": Case(
        lambda h: render("-o", "out.png", "--job-dir", "/proc/largestyle-job", *FAST), "cannot use job directory"),
    # --- damaged job state
    "job.json truncated and a setting changed": Case(
        lambda h: (_truncate(interrupted_job(h) / "job.json"), render("-o", "o.png", *FAST, "--style-weight", "3"))[1],
        "job.json", "o.png"),
    "job.json replaced by other JSON": Case(
        lambda h: ((interrupted_job(h) / "job.json").write_text("{}"), render("-o", "o.png", *FAST, "--seed", "4"))[1],
        "job.json", "o.png"),
    "job.json swapped for another job's": Case(lambda h: _swapped_record(h), "made for another render", "o.png"),
    "checkpoint altered": Case(
        lambda h: (flip_byte(interrupted_job(h) / "checkpoints" / "plan.pt"), render("-o", "o.png", *FAST))[1],
        "plan.pt", "o.png"),
    "checkpoint record deleted": Case(
        lambda h: ((interrupted_job(h) / "checkpoints" / "sums.json").unlink(), render("-o", "o.png", *FAST))[1],
        "sums.json", "o.png"),
    # --- option values, checked before any work
    "infinite content weight": Case(lambda h: render("-o", "out.png", *FAST, "--content-weight", "inf"), "finite"),
    "NaN style weight": Case(lambda h: render("-o", "out.png", *FAST, "--style-weight", "nan"), "finite"),
    "negative tv weight": Case(lambda h: render("-o", "out.png", *FAST, "--tv-weight", "-1"), "--tv-weight"),
    "huge style weight": Case(lambda h: render("-o", "out.png", *FAST, "--style-weight", "1e30"), "between 0 and"),
    "infinite layer weight": Case(
        lambda h: render("-o", "out.png", *FAST, "--style-layer-weights", "1,inf,1,1,1"), "--style-layer-weights"),
    "negative seed": Case(lambda h: render("-o", "out.png", *FAST, "--seed", "-1"), "--seed"),
    "seed past 63 bits": Case(lambda h: render("-o", "out.png", *FAST, "--seed", str(2**64)), "--seed"),
    "zero style scale": Case(lambda h: render("-o", "out.png", *FAST, "--style-scale", "0"), "--style-scale"),
    "style scale beyond the budget": Case(
        lambda h: render("-o", "out.png", *FAST[2:], "--target-size", "2048", "--style-scale", "60"),
        "lower --style-scale to at most"),
    "tiny target size": Case(lambda h: render("-o", "out.png", *FAST[2:], "--target-size", "8"), "--target-size"),
    "absurd target size": Case(
        lambda h: render("-o", "out.png", *FAST[2:], "--target-size", "100000000"), "at most"),
    "absurd print size": Case(
        lambda h: render("-o", "out.png", *FAST[2:], "--print-size", "100000x100000in"), "smaller --print-size"),
    "print size and target size": Case(
        lambda h: render("-o", "out.png", *FAST, "--print-size", "4x6in"), "drop --target-size"),
    "unreadable print size": Case(lambda h: render("-o", "out.png", *FAST[2:], "--print-size", "big"), "24x36in"),
    "thin content at a print size names --print-size": Case(
        lambda h: (Image.new("RGB", (400, 2)).save(h / "thin.png"),
                   ["render", "thin.png", "art.png", "-o", "out.png", *FAST[2:], "--print-size", "2x1in",
                    "--dpi", "40"])[1], "raise --print-size"),
    "zero dpi": Case(lambda h: render("-o", "out.png", *FAST, "--dpi", "0"), "--dpi"),
    "jpeg quality 101": Case(lambda h: render("-o", "out.jpg", *FAST, "--jpeg-quality", "101"), "--jpeg-quality",
                             "out.jpg"),
    "unknown memory unit": Case(lambda h: render("-o", "out.png", *FAST, "--max-memory", "12XB"), "memory size"),
    "tile size off the grid": Case(lambda h: render("-o", "out.png", *FAST, "--tile-size", "33"), "--tile-size"),
    "no iterations": Case(lambda h: render("-o", "out.png", *FAST[2:], "--iterations", "0"), "--iterations"),
    "checkpoint every 0": Case(lambda h: render("-o", "out.png", *FAST, "--checkpoint-every", "0"),
                               "--checkpoint-every"),
    # --- the command line itself
    "misspelt option": Case(lambda h: render("-o", "out.png", "--styel-weight", "3"), "see 'largestyle render --help'"),
    "missing style argument": Case(lambda h: ["render", "photo.png"], "--help"),
    "invalid choice": Case(lambda h: render("-o", "out.png", "--tiling", "sideways"), "invalid choice"),
    "missing init image": Case(lambda h: render("-o", "out.png", "--init", "sideways.png"), "init image not found"),
    "unknown command": Case(lambda h: ["paint", "photo.png"], "see 'largestyle --help'", None),
    # --- outputs that cannot be written
    "gif output": Case(lambda h: render("-o", "out.gif", *FAST), "unsupported output type", "out.gif"),
    "output folder missing": Case(lambda h: render("-o", "nowhere/out.png", *FAST), "does not exist",
                                  "nowhere/out.png"),
    "output name too long": Case(lambda h: render("-o", "x" * 250 + ".png", *FAST), "use a shorter name",
                                 "x" * 250 + ".png"),
    "16-bit JPEG": Case(lambda h: render("-o", "out.jpg", *FAST, "--bit-depth", "16"), "JPEG holds 8 bits",
                        "out.jpg"),
    "output is a folder": Case(lambda h: render("-o", "docs", *FAST), "unsupported output type", None),
    # --- inputs that are not images
    "content missing": Case(lambda h: ["render", "gone.png", "art.png", "-o", "out.png", *FAST], "not found"),
    "content is a folder": Case(lambda h: ["render", "docs", "art.png", "-o", "out.png", *FAST], "directory"),
    "content is a character device": Case(
        lambda h: ["render", "/dev/null", "art.png", "-o", "out.png", *FAST], "/dev/null"),
    "content is text named .jpg": Case(
        lambda h: ((h / "fake.jpg").write_text("hello"), ["render", "fake.jpg", "art.png", "-o", "out.png", *FAST])[1],
        "not an image"),
    "content truncated": Case(
        lambda h: ((h / "cut.png").write_bytes((h / "photo.png").read_bytes()[:120]),
                   ["render", "cut.png", "art.png", "-o", "out.png", *FAST])[1], "cut.png"),
    "style empty": Case(
        lambda h: ((h / "empty.png").write_bytes(b""), ["render", "photo.png", "empty.png", "-o", "out.png", *FAST])[1],
        "empty"),
    "content with NaN pixels": Case(
        lambda h: ["render", float_tiff(h, float("nan")), "art.png", "-o", "out.png", *FAST], "NaN"),
    "weights with NaN": Case(
        lambda h: render("-o", "out.png", "--target-size", "32", "--weights", nan_weights(h)), "NaN"),
    "weights not a weights file": Case(
        lambda h: ((h / "w.pth").write_bytes(b"\x80\x04K\x01."), render("-o", "out.png", "--target-size", "32",
                                                                         "--weights", "w.pth"))[1], "w.pth"),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:50])


def _swapped_record(home: Path) -> list[str]:
    """job.json of a render with --seed 5 put in place of an interrupted one's, then run with --seed 5."""
    assert main(render("-o", "other.png", *FAST, "--seed", "5")) == 0
    job = interrupted_job(home)
    (job / "job.json").write_bytes((home / "other.job" / "job.json").read_bytes())
    return render("-o", "o.png", *FAST, "--seed", "5")


@pytest.mark.parametrize("name", CASES)
def test_hostile_case_is_one_line_and_touches_nothing(name, home, capsys):
    case = CASES[name]
    args = case.setup(home)
    capsys.readouterr()
    output = home / case.output if case.output else None
    job = home / case.job if case.job else (output.with_name(output.stem + ".job") if output else None)
    skip = tuple(p for p in (output, job) if p is not None)
    existed = output is not None and (output.exists() or output.is_symlink())
    before_output = snapshot(home, ()) if existed else None
    before = snapshot(home, skip)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("largestyle: error: "), err
    assert "Traceback" not in err
    assert case.expect in lines[0], lines[0]
    assert snapshot(home, skip) == before
    if existed:  # an output that was an input (or a link to one) is exactly as it was
        assert snapshot(home, ())[case.output] == before_output[case.output]
    elif output is not None:
        assert not output.exists()


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
