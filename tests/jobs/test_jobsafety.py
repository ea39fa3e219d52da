"""Job directories never lose a user's file, never trust damaged state, and survive a full disk."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from largestyle.jobs import layout as joblayout
from largestyle.core.atomic import remove_stale_temporaries
from largestyle.cli.main import main
from largestyle.core.errors import LargestyleError
from largestyle.jobs.recorder import output_intact

SHALLOW = ["--content-layers", "relu2_1", "--style-layers", "relu1_1,relu2_1"]
FAST = ["--target-size", "64", "--iterations", "3", "--first-level-factor", "1", *SHALLOW, "--weights", "random"]
# Two levels with in-level checkpoints every 2 evaluations: several checkpoint writes per render.
TWO_LEVELS = ["--target-size", "448", "--iterations", "8", "--first-level-factor", "1", *SHALLOW,
              "--weights", "random", "--checkpoint-every", "2"]


def make_images(folder):
    rng = np.random.default_rng(0)
    paths = folder / "content.png", folder / "style.png"
    Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 255, (450, 450, 3), dtype=np.uint8)).save(paths[1])  # no blurry-style warning
    return paths


@pytest.fixture
def images(tmp_path):
    return make_images(tmp_path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The bytes of an uninterrupted TWO_LEVELS render of the ``images`` (the same pixels in every test)."""
    folder = tmp_path_factory.mktemp("reference")
    rendered = render_process(make_images(folder), folder / "reference.png", TWO_LEVELS)
    assert rendered.returncode == 0, rendered.stderr
    return (folder / "reference.png").read_bytes()


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def render_process(images, output, options, env=None, job_dir=None):
    extra = ["--job-dir", str(job_dir)] if job_dir else []
    return subprocess.run([sys.executable, "-m", "largestyle", "render", *map(str, images), "-o", str(output),
                           "-q", *options, *extra], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True)


def test_restart_removes_only_what_largestyle_wrote(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST)[0] == 0
    job = tmp_path / "o.job"
    decoys = tmp_path / "decoys"
    decoys.mkdir()
    (decoys / "plan.pt").write_text("not a checkpoint, the user's")
    (decoys / "level-1.png").write_text("the user's")
    (job / "mine.txt").write_text("a note the user left in the job directory")
    (job / "levels" / "sketch.png").write_text("the user's")
    for name in ("checkpoints", "report"):
        (job / name).rename(tmp_path / f"moved-{name}")
    os.symlink(decoys, job / "checkpoints")  # a link to the user's folder, named like ours
    (job / "report.html").unlink()
    os.symlink(decoys / "level-1.png", job / "report.html")
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--restart")
    assert code == 0, err
    assert sorted(p.name for p in decoys.iterdir()) == ["level-1.png", "plan.pt"]
    assert (decoys / "plan.pt").read_text() == "not a checkpoint, the user's"
    assert (job / "mine.txt").exists() and (job / "levels" / "sketch.png").exists()
    assert (job / "checkpoints").is_dir() and not (job / "checkpoints").is_symlink()


def test_clear_refuses_a_folder_without_the_marker(tmp_path):
    (tmp_path / "job.json").write_text("{}")
    with pytest.raises(LargestyleError, match="not a largestyle job directory"):
        joblayout.clear(tmp_path)
    assert (tmp_path / "job.json").exists()


def test_a_job_directory_from_before_the_marker_is_adopted(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST)[0] == 0
    (tmp_path / "o.job" / joblayout.MARKER_FILE).unlink()
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST)
    assert code == 0 and "already finished" in err
    assert joblayout.is_job_directory(tmp_path / "o.job")


@pytest.mark.parametrize("damage", ["missing", "truncated", "other JSON"])
def test_job_record_is_rebuilt_only_when_the_checkpoints_prove_the_render(images, reference, tmp_path, capsys,
                                                                           damage):
    out = tmp_path / "o.png"
    stopped = render_process(images, out, TWO_LEVELS, {"LARGESTYLE_KILL_AT": "evaluation:11:TERM"})
    assert stopped.returncode == 130, stopped.stderr
    record = tmp_path / "o.job" / "job.json"
    {"missing": record.unlink, "truncated": lambda: record.write_bytes(record.read_bytes()[:40]),
     "other JSON": lambda: record.write_text('{"version": "0.1.0"}')}[damage]()
    code, err = run_cli(capsys, "render", *images, "-o", out, *TWO_LEVELS, "-q", "--seed", "3")
    assert code == 2 and "job.json" in err and "--restart" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(capsys, "render", *images, "-o", out, *TWO_LEVELS)
    assert code == 0, err
    assert "rebuilt it" in err
    assert out.read_bytes() == reference
    assert json.loads(record.read_text())["settings"]["target_size"] == 448


def test_a_damaged_output_is_written_again_from_the_checkpoints(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST)[0] == 0
    good = out.read_bytes()
    assert output_intact(tmp_path / "o.job", out)
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "o.job" / "output.png").write_bytes(bytes(damaged))
    out.write_bytes(bytes(damaged))
    assert not output_intact(tmp_path / "o.job", out)
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST)
    assert code == 0 and "writing it again from the checkpoints" in err
    assert out.read_bytes() == good and output_intact(tmp_path / "o.job", out)


def test_stale_temporaries_of_a_killed_run_are_removed_and_nothing_else(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST)[0] == 0
    job = tmp_path / "o.job"
    stale = [tmp_path / ".o.png.k1ll3d_x.tmp", job / ".status.json.abcdefgh.tmp",
             job / "checkpoints" / ".plan.pt.zz9_zz9z.tmp"]
    kept = [tmp_path / ".o.png.notours.tmp", tmp_path / ".photo.png.abcdefgh.tmp", job / ".mine.abcdefgh.tmp"]
    for path in stale + kept:
        path.write_text("left over")
    live = tmp_path / ".o.png.livewrit.tmp"
    live.write_text("being written")
    with open(live) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as atomic_write holds its temporary file
        code, err = run_cli(capsys, "render", *images, "-o", out, *FAST)
        assert code == 0, err
        assert live.exists()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert remove_stale_temporaries(out) == [live]


def test_full_disk_during_a_checkpoint_write_keeps_the_last_one_and_resumes(images, reference, tmp_path):
    out = tmp_path / "o.png"
    full = render_process(images, out, TWO_LEVELS, {"LARGESTYLE_KILL_AT": "checkpoint-write:3:ENOSPC"})
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert "the disk is full" in lines[0] and "the last checkpoint is kept" in lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.rglob(".*.tmp")]
    status = json.loads((tmp_path / "o.job" / "status.json").read_text())
    assert status["state"] == "failed"
    resumed = render_process(images, out, TWO_LEVELS)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, where the machine lets the tests mount one; grown by calling it with a size."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the injected ENOSPC test covers the same path")

    def grow(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    yield mount, grow
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_really_full_disk_stops_cleanly_and_resumes_once_space_returns(images, reference, tmp_path,
                                                                         small_disk):
    disk, grow = small_disk
    out = tmp_path / "o.png"
    full = render_process(images, out, TWO_LEVELS, job_dir=disk / "o.job")
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert "the disk is full" in lines[0] or "no space" in lines[0].lower()
    assert not out.exists()
    assert not [p for p in disk.rglob(".*.tmp")]  # no temporary file left on the full disk
    grow("64m")
    resumed = render_process(images, out, TWO_LEVELS, job_dir=disk / "o.job")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference


def test_a_loss_that_becomes_infinite_names_its_term_and_keeps_the_checkpoints(images, tmp_path, capsys,
                                                                            monkeypatch):
    import largestyle.gatys.objective as objective

    calls = {"n": 0}
    real = objective.style_loss

    def blows_up(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("inf") if calls["n"] > 11 else value

    monkeypatch.setattr(objective, "style_loss", blows_up)
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "render", *images, "-o", out, *TWO_LEVELS)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("largestyle: error: the style loss became inf"), err
    assert "lower --style-weight" in lines[-1] and "Traceback" not in err
    assert not out.exists()
    assert (tmp_path / "o.job" / "checkpoints" / "plan.pt").exists()


def test_explicit_random_weights_do_not_warn_that_none_were_found(images, tmp_path, capsys):
    code, err = run_cli(capsys, "render", *images, "-o", tmp_path / "o.png", *FAST)
    assert code == 0 and "no trained VGG-19 weights found" not in err
    code, err = run_cli(capsys, "render", *images, "-o", tmp_path / "p.png", *FAST[:-2])
    assert code == 0 and "no trained VGG-19 weights found" in err


def test_storage_errors_anywhere_are_one_line(images, tmp_path, capsys, monkeypatch):
    from largestyle.jobs import recorder, resume, store

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "o.job" / "status.json"))

    for module in (resume, store, recorder):  # job.json, checkpoints' sums, status.json
        monkeypatch.setattr(module, "write_json", read_only)
    code, err = run_cli(capsys, "render", *images, "-o", tmp_path / "o.png", *FAST)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "read-only" in err and "Traceback" not in err


SLOW_READ = """
import socket, sys
import largestyle.io.inputs as inputs
from largestyle.cli.main import main

quiet, _ = socket.socketpair()
real = inputs.read_image

def slow(*args, **kwargs):  # an input on storage that never answers
    print("waiting", flush=True)
    quiet.recv(1)
    return real(*args, **kwargs)

inputs.read_image = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_render_that_waits_on_a_read(images, tmp_path, number):
    out = tmp_path / "o.png"
    child = subprocess.Popen([sys.executable, "-c", SLOW_READ, "render", *map(str, images), "-o", str(out), *FAST],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        child.send_signal(number)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err
    assert not out.exists()
