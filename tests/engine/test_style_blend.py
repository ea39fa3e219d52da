"""Several style images blended by --style-blend: the weighted mean of their Gram matrices as the target,
in every strategy, resumable, and checked, recorded and reported like any input."""

import json
import subprocess
import sys

import pytest
import torch

from largestyle.config.settings import make_config
from largestyle.core.errors import LargestyleError
from largestyle.engine import events as ev
from largestyle.engine.checkpoints import CheckpointPolicy, MemoryCheckpoints, RenderInterrupted
from largestyle.engine.engine import Engine
from largestyle.gatys.targets import blend_grams
from largestyle.io.write import save_image
from largestyle.jobs.batchfile import load_batch

from strategies import MODES, SHALLOW


def images():
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(3, 30, 50, generator=generator), torch.rand(3, 32, 32, generator=generator),
            torch.rand(3, 40, 28, generator=generator) ** 3)


def config(mode, **options):
    return make_config(iterations=6, first_level_factor=1, **SHALLOW, **MODES[mode], **options)


def test_the_target_is_the_weighted_mean_of_the_grams_and_one_style_is_kept_as_it_is():
    first, second = {"relu1_1": torch.ones(1, 2, 2)}, {"relu1_1": torch.full((1, 2, 2), 5.0)}
    assert torch.equal(blend_grams([first, second], (0.75, 0.25))["relu1_1"], torch.full((1, 2, 2), 2.0))
    assert blend_grams([first], (1.0,)) is first


@pytest.mark.parametrize("mode", MODES)
def test_blend_weights_choose_between_the_styles_in_every_strategy(mode):
    content, style, other = images()
    alone = Engine(config(mode)).render(content, style)
    # Equal halves of one style's Grams are that style's Grams, bit for bit; so is a zero weight on another.
    assert torch.equal(Engine(config(mode)).render(content, [style, style]), alone)
    assert torch.equal(Engine(config(mode, style_blend=(1, 0))).render(content, [style, other]), alone)
    blended = Engine(config(mode, style_blend=(3, 1))).render(content, [style, other])
    assert not torch.equal(blended, alone)
    assert not torch.equal(blended, Engine(config(mode)).render(content, other))


def test_exact_tiling_stays_exact_with_blended_styles():
    """Two evaluations a level: longer, L-BFGS's branch points (its curvature test, the line search's
    conditions) can flip on differences of 1e-7 in these tiny images and part the paths."""
    content, style, other = images()
    renders, losses = {}, {}
    for mode in ("whole", "exact"):
        seen = losses.setdefault(mode, [])
        settings = make_config(iterations=2, first_level_factor=1, style_blend=(3, 1), **SHALLOW, **MODES[mode])
        renders[mode] = Engine(settings, lambda e: seen.append(e.loss.total) if isinstance(e, ev.Evaluation) else None
                               ).render(content, [style, other])
    assert losses["exact"] == pytest.approx(losses["whole"], rel=1e-5) and len(losses["whole"]) >= 2
    assert torch.allclose(renders["whole"], renders["exact"], atol=2e-4)


@pytest.mark.parametrize("mode", MODES)
def test_a_blended_render_stops_and_resumes_bit_for_bit(mode):
    content, style, other = images()
    settings = config(mode, style_blend=(3, 1))
    straight = Engine(settings).render(content, [style, other])
    checkpoints, seen = MemoryCheckpoints(), []
    stopping = Engine(settings, lambda e: seen.append(e) if isinstance(e, ev.Evaluation) else None,
                      checkpoints=checkpoints, should_stop=lambda: len(seen) >= 4,
                      policy=CheckpointPolicy(evaluations=2))
    with pytest.raises(RenderInterrupted):
        stopping.render(content, [style, other])
    assert torch.equal(Engine(settings, checkpoints=checkpoints).render(content, [style, other]), straight)


@pytest.mark.parametrize("weights, problem", [
    ((1, 2, 3), "--style-blend has 3 weights for 2 style images"),
    ((1, -1), "--style-blend must be finite numbers from 0"),
    ((0, 0), "not all zero"),
    ((1, float("nan")), "--style-blend must be finite numbers"),
])
def test_bad_blend_weights_are_refused_in_one_line(weights, problem):
    content, style, other = images()
    with pytest.raises(LargestyleError, match=problem.replace("-", r"\-")):
        Engine(config("whole", style_blend=weights)).render(content, [style, other])


def cli(*args, cwd, command="render"):
    return subprocess.run([sys.executable, "-m", "largestyle", command, *args, "--target-size", "48",
                           "--iterations", "2", "--first-level-factor", "1", "--content-layers", "relu2_1",
                           "--style-layers", "relu1_1,relu2_1", "--weights", "random"]
                          + (["-q"] if command == "render" else []), capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def files(tmp_path):
    for name, image in zip(("content.png", "wave.png", "dots.png"), images()):
        save_image(image, tmp_path / name)
    return tmp_path


def test_the_command_line_renders_records_and_reports_several_styles(files):
    done = cli("content.png", "wave.png", "dots.png", "--style-blend", "3,1", cwd=files)
    assert done.returncode == 0, done.stderr
    assert (files / "content-wave+dots.png").is_file()  # the default name joins the styles' names
    record = json.loads((files / "content-wave+dots.job" / "job.json").read_text())
    assert [style["path"] for style in record["styles"]] == [str(files / "wave.png"), str(files / "dots.png")]
    assert record["settings"]["style_blend"] == [3.0, 1.0]
    report = (files / "content-wave+dots.job" / "report.html").read_text()
    assert "style 1 (75% of the style)" in report and "style 2 (25% of the style)" in report
    plan = cli("content.png", "wave.png", "dots.png", "--style-blend", "3,1", cwd=files, command="plan")
    assert plan.returncode == 0 and "styles: wave.png 75%, dots.png 25%" in plan.stdout, plan.stderr
    # Another second style is another render: the finished job is not reused for it.
    save_image(images()[0], files / "dots.png")
    changed = cli("content.png", "wave.png", "dots.png", "--style-blend", "3,1", cwd=files)
    assert changed.returncode == 2 and "the style images" in changed.stderr and "--restart" in changed.stderr


@pytest.mark.parametrize("args, problem", [
    (("--style-blend", "1,2,3"), "--style-blend has 3 weights for 2 style images; give one weight per style image"),
    (("--style-blend", "1,-2"), "--style-blend must be finite numbers from 0 to 1e+12, not all zero, got 1.0,-2.0"),
    (("--style-blend", "0,0"), "--style-blend must be finite numbers from 0 to 1e+12, not all zero, got 0.0,0.0"),
])
def test_the_command_line_refuses_bad_blends_before_writing_anything(files, args, problem):
    for command, output in (("render", ("-o", "out.png")), ("plan", ())):
        done = cli("content.png", "wave.png", "dots.png", *args, *output, cwd=files, command=command)
        assert done.returncode == 2 and done.stderr.strip() == f"largestyle: error: {problem}", done.stderr
    assert sorted(path.name for path in files.iterdir()) == ["content.png", "dots.png", "wave.png"]


def test_a_style_image_given_twice_as_the_output_is_refused(files):
    done = cli("content.png", "wave.png", "dots.png", "-o", "dots.png", cwd=files)
    assert done.returncode == 2 and "is the style image 2" in done.stderr


def test_a_batch_blends_a_list_inside_the_style_list(tmp_path):
    (tmp_path / "jobs.toml").write_text(
        '[[job]]\ncontent = "c.png"\nstyle = ["a.png", ["a.png", "b.png"]]\noutput_dir = "renders"\n')
    alone, blend = load_batch(tmp_path / "jobs.toml")
    assert alone.styles == ((tmp_path / "a.png").resolve(),)
    assert blend.styles == ((tmp_path / "a.png").resolve(), (tmp_path / "b.png").resolve())
    assert blend.output.name == "c_a+b.png"
    (tmp_path / "jobs.toml").write_text(
        '[[job]]\ncontent = "c.png"\nstyle = [["a.png", "b.png"]]\noutput = "{content}-{style}.png"\n'
        'style_blend = [3, 1]\n')
    (job,) = load_batch(tmp_path / "jobs.toml")
    assert job.options["style_blend"] == [3, 1] and job.output.name == "c-a+b.png"


@pytest.mark.parametrize("table, line, problem", [
    ('style = [["a.png", "b.png"]]\nstyle_blend = [1, 2, 3]\n', 5,
     "--style-blend has 3 weights for 2 style images"),
    ('style = "a.png"\nstyle_blend = [1, 2]\n', 5, "--style-blend has 2 weights for 1 style image"),
    ('style = [["a.png", 3]]\n', 4, "a list inside it is one render blending"),
    ('style = [[]]\n', 4, "a list inside it is one render blending"),
])
def test_a_batch_refuses_a_bad_blend_at_its_line(tmp_path, table, line, problem):
    (tmp_path / "jobs.toml").write_text('[[job]]\ncontent = "c.png"\noutput = "out.png"\n' + table)
    with pytest.raises(LargestyleError, match=rf":{line}: .*{problem}"):
        load_batch(tmp_path / "jobs.toml")


def test_a_record_made_before_several_styles_still_reads_with_the_same_identity(tmp_path):
    from largestyle.jobs.record import identity, job_record, problem_with

    record = job_record(tmp_path / "c.png", tmp_path / "s.png", tmp_path / "o.png", make_config(), None,
                        "a" * 64, "b" * 64)
    older = {key: value for key, value in record.items() if key != "styles"} | {"style": record["styles"][0]}
    assert problem_with(older) is None and identity(older) == record["identity"]
    assert problem_with({key: value for key, value in record.items() if key != "styles"}) == "'styles' is missing or empty"
