"""--init PATH: the first level starts from a given image, in every strategy, resumable; checked like an input."""

import subprocess
import sys

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine
from largestyle.io.write import save_image
from largestyle.jobs.batchfile import load_batch

from strategies import MODES, SHALLOW


def inputs():
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator),
            torch.rand(3, 20, 33, generator=generator))


def config(mode):
    return make_config(iterations=6, first_level_factor=1, **SHALLOW, **MODES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_the_first_level_starts_from_the_init_image(mode):
    content, style, start = inputs()
    default = Engine(config(mode)).render(content, style)
    assert torch.equal(Engine(config(mode)).render(content, style, init=content), default)  # the content itself
    assert not torch.equal(Engine(config(mode)).render(content, style, init=start), default)


@pytest.mark.parametrize("mode", MODES)
def test_a_render_from_an_init_image_stops_and_resumes_bit_for_bit(mode):
    content, style, start = inputs()
    straight = Engine(config(mode)).render(content, style, init=start)
    checkpoints, seen = MemoryCheckpoints(), []
    stopping = Engine(config(mode), lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                      checkpoints=checkpoints, should_stop=lambda: len(seen) >= 4,
                      policy=CheckpointPolicy(evaluations=2))
    with pytest.raises(RenderInterrupted):
        stopping.render(content, style, init=start)
    assert torch.equal(Engine(config(mode), checkpoints=checkpoints).render(content, style, init=start), straight)


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "largestyle", "render", *args, "--target-size", "48",
                           "--iterations", "2", "--first-level-factor", "1", "--content-layers", "relu2_1",
                           "--style-layers", "relu1_1,relu2_1", "--weights", "random", "-q"],
                          capture_output=True, text=True, cwd=cwd)


def test_the_command_line_reads_checks_and_records_the_init_image(tmp_path):
    content, style, start = inputs()
    for name, image in (("content.png", content), ("style.png", style), ("start.png", start)):
        save_image(image, tmp_path / name)
    done = cli("content.png", "style.png", "-o", "out.png", "--init", "start.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = (tmp_path / "out.job" / "job.json").read_text()
    assert "start.png" in record and '"init"' in record
    missing = cli("content.png", "style.png", "-o", "other.png", "--init", "nope.png", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == "largestyle: error: init image not found: nope.png"
    assert not (tmp_path / "other.png").exists() and not (tmp_path / "other.job").exists()
    onto = cli("content.png", "style.png", "-o", "start.png", "--init", "start.png", cwd=tmp_path)
    assert onto.returncode == 2 and "is the init image" in onto.stderr
    # Another init image with the same name is another render: the finished job is not reused for it.
    save_image(content, tmp_path / "start.png")
    changed = cli("content.png", "style.png", "-o", "out.png", "--init", "start.png", cwd=tmp_path)
    assert changed.returncode == 2 and "--restart" in changed.stderr


def test_a_batch_resolves_the_init_image_against_its_file(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "batch.toml").write_text(
        '[[job]]\ncontent = "c.png"\nstyle = "s.png"\noutput = "out.png"\ninit = "renders/earlier.png"\n')
    (job,) = load_batch(tmp_path / "jobs" / "batch.toml")
    assert job.options["init"] == str((tmp_path / "jobs" / "renders" / "earlier.png").resolve())
