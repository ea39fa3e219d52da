"""Job directories: crash-safe resume of real `largestyle render` processes, refusal, the lock,
the status file, the report, and batches."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from largestyle.cli.main import main
from largestyle.jobs.lock import JobLock

SHALLOW = ["--content-layers", "relu2_1", "--style-layers", "relu1_1,relu2_1"]
# Two levels (224 and 448 px), both exact-tiled in 128 px cores.
EXACT = ["--target-size", "448", "--iterations", "6", "--first-level-factor", "1", *SHALLOW,
         "--tiling", "exact", "--max-memory", "1MB", "--tile-size", "128", "--checkpoint-every", "2"]
# One level in blend tiles, two passes.
BLEND = ["--target-size", "224", "--iterations", "4", "--first-level-factor", "1", *SHALLOW,
         "--tiling", "blend", "--max-memory", "1MB", "--tile-size", "96", "--passes", "2",
         "--checkpoint-every", "2"]
FAST = ["--target-size", "64", "--iterations", "3", "--first-level-factor", "1", *SHALLOW]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(paths[1])
    return paths


def render_process(images, output, options, kill_at=None):
    env = {**os.environ, "LARGESTYLE_KILL_AT": kill_at or ""}
    return subprocess.run([sys.executable, "-m", "largestyle", "render", *map(str, images), "-o", str(output),
                           "--weights", "random", "-q", *options], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("options, kills", [
    (EXACT, ["evaluation:4", "evaluation:9", "checkpoint-write:2"]),  # level 1, level 2, mid-write
    (BLEND, ["tile:3", "evaluation:30", "checkpoint-write:3"]),  # at a tile's start, within one, mid-write
], ids=["exact", "blend"])
def test_sigkilled_render_resumes_to_the_same_file(images, tmp_path, options, kills):
    reference = tmp_path / "reference.png"
    assert render_process(images, reference, options).returncode == 0
    output = tmp_path / "resumed.png"
    for kill in kills:
        killed = render_process(images, output, options, kill)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert not output.exists()
    finished = render_process(images, output, options)
    assert finished.returncode == 0, finished.stderr
    assert output.read_bytes() == reference.read_bytes()
    status = json.loads((tmp_path / "resumed.job" / "status.json").read_text())
    assert status["state"] == "finished" and status["percent"] == 100
    assert "resumed" in (tmp_path / "resumed.job" / "events.jsonl").read_text().lower()


def test_sigterm_stops_at_a_safe_point_and_resumes(images, tmp_path):
    reference, output = tmp_path / "reference.png", tmp_path / "out.png"
    assert render_process(images, reference, EXACT).returncode == 0
    stopped = render_process(images, output, EXACT, "evaluation:8:TERM")
    assert stopped.returncode == 130
    assert "run the same command again to resume" in stopped.stderr and "Traceback" not in stopped.stderr
    status = json.loads((tmp_path / "out.job" / "status.json").read_text())
    assert status["state"] == "interrupted" and 0 < status["percent"] < 100
    assert render_process(images, output, EXACT).returncode == 0
    assert output.read_bytes() == reference.read_bytes()


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_changed_settings_are_refused_until_restart(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")[0] == 0
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random", "--style-weight", "3")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--style-weight (was None, now 3.0)" in err and "--restart" in err
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(images[0])
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")
    assert code == 2 and "the content image" in err
    code, _ = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random", "--restart")
    assert code == 0


def test_settings_added_since_a_job_was_made_count_as_their_defaults(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")[0] == 0
    record_path = tmp_path / "o.job" / "job.json"
    record = json.loads(record_path.read_text())
    for newer in ("print_fit", "alpha", "max_input_pixels"):
        del record["settings"][newer]
    record_path.write_text(json.dumps(record))
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")
    assert code == 0 and "already finished" in err
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random", "--alpha", "composite")
    assert code == 2 and "--alpha (was keep, now composite)" in err


def test_lock_names_its_holder_and_stale_locks_are_taken_over(images, tmp_path, capsys):
    out, job = tmp_path / "o.png", tmp_path / "o.job"
    job.mkdir()
    with JobLock(job):
        code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")
    assert code == 2 and f"in use by process {os.getpid()}" in err and not out.exists()
    (job / "lock").write_text("999999\n")  # left by a killed process: no flock held
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")
    assert code == 0 and "from process 999999" in err


def test_job_directory_holds_status_levels_output_and_report(images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")[0] == 0
    job = tmp_path / "o.job"
    record = json.loads((job / "job.json").read_text())
    assert record["settings"]["target_size"] == 64 and len(record["content"]["sha256"]) == 64
    assert record["weights"]["flavour"] == "random"
    status = json.loads((job / "status.json").read_text())
    assert status["state"] == "finished" and status["percent"] == 100 and status["levels"] == 1
    assert set(status["last_loss"]) == {"total", "content", "style", "tv"} and status["evaluations"] == 3
    assert (job / "output.png").read_bytes() == out.read_bytes()
    assert (job / "levels" / "level-1.png").exists()
    report = (job / "report.html").read_text()
    assert "levels/level-1.png" in report and (job / "report" / "loss.png").exists()
    events = [json.loads(line) for line in (job / "events.jsonl").read_text().splitlines()]
    assert "RenderStarted" in [e["event"] for e in events] and events[-1]["event"] == "RenderFinished"
    # Again: already finished, nothing recomputed, the output restored if it went missing.
    out.unlink()
    code, err = run_cli(capsys, "render", *images, "-o", out, *FAST, "--weights", "random")
    assert code == 0 and "already finished" in err and out.exists()


def write_batch(tmp_path, images, extra=""):
    content, style = images
    path = tmp_path / "jobs.toml"
    path.write_text(f"""
[defaults]
target_size = 64
iterations = 3
first_level_factor = 1
weights = "random"
content_layers = ["relu2_1"]
style_layers = ["relu1_1", "relu2_1"]
output_dir = "renders"

[[job]]
content = "{content.name}"
style = "{style.name}"
vary = {{ style_weight = [1.0, 5.0] }}

[[job]]
content = "missing.png"
style = "{style.name}"
output = "renders/broken.png"
{extra}""")
    return path


def test_batch_isolates_failures_skips_finished_and_reports(images, tmp_path, capsys):
    path = write_batch(tmp_path, images)
    code = main(["batch", str(path), "--quiet"])
    printed = capsys.readouterr()
    assert code == 1
    assert printed.out.count("finished") == 2 and "failed" in printed.out and "missing.png" in printed.out
    renders = sorted(p.name for p in (tmp_path / "renders").glob("*.png"))
    assert renders == ["content_style_style_weight-1.png", "content_style_style_weight-5.png"]
    index = (tmp_path / "jobs.html").read_text()
    assert "report.html" in index and "missing.png" in index
    code = main(["batch", str(path), "--quiet"])
    assert code == 1 and capsys.readouterr().out.count("skipped") == 2


def test_batch_resumes_a_killed_job(images, tmp_path):
    path = write_batch(tmp_path, images)
    env = {**os.environ, "LARGESTYLE_KILL_AT": "evaluation:5"}  # during the second job
    command = [sys.executable, "-m", "largestyle", "batch", str(path), "-q"]
    assert subprocess.run(command, env=env, capture_output=True).returncode == -signal.SIGKILL
    env["LARGESTYLE_KILL_AT"] = ""
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 1  # the broken job still fails
    lines = again.stdout.splitlines()
    assert any("style_weight-1" in line and "skipped" in line for line in lines)
    assert any("style_weight-5" in line and "finished" in line for line in lines)


def test_batch_dry_run_and_bad_job_file(images, tmp_path, capsys):
    path = write_batch(tmp_path, images)
    assert main(["batch", str(path), "--dry-run"]) == 1  # the third job cannot be planned
    out = capsys.readouterr().out
    assert "[1/3]" in out and "would run" in out and "strategy" in out
    assert "cannot plan: content image not found" in out
    assert not (tmp_path / "renders").exists()
    bad = write_batch(tmp_path, images, extra="tiling = 'sideways'\n")
    code, err = run_cli(capsys, "batch", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "jobs.toml:" in err and "tiling" in err
