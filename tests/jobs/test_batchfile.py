import textwrap

import pytest

from largestyle.jobs.batchfile import JobSpec, load_batch
from largestyle.config.settings import make_config
from largestyle.core.errors import LargestyleError


def write(tmp_path, text, name="batch.toml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path) -> str:
    with pytest.raises(LargestyleError) as info:
        load_batch(path)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_defaults_merge_and_job_wins(tmp_path):
    path = write(tmp_path, """
        [defaults]
        target_size = 1024
        iterations = 80

        [[job]]
        content = "photos/cat.jpg"
        style = "art/starry.jpg"
        output = "renders/cat-starry.png"
        iterations = 20
        style_weight = 5.0
        job_dir = "work/cat"
    """)
    [job] = load_batch(path)
    assert isinstance(job, JobSpec)
    assert job.options == {"target_size": 1024, "iterations": 20, "style_weight": 5.0}
    assert job.name == "cat-starry"
    assert job.line == 5
    assert job.job_dir == (tmp_path / "work/cat").resolve()
    assert make_config(**job.options).iterations == 20


def test_relative_paths_resolve_against_batch_folder(tmp_path, monkeypatch):
    write(tmp_path, """
        [defaults]
        output_dir = "renders"

        [[job]]
        content = "photos/cat.jpg"
        style = "~/art/starry.jpg"
    """, name="sub/batch.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    [job] = load_batch("../sub/batch.toml")
    folder = (tmp_path / "sub").resolve()
    assert job.content == folder / "photos/cat.jpg"
    assert job.styles == ((tmp_path / "home/art/starry.jpg").resolve(),)
    assert job.output == folder / "renders/cat_starry.png"
    assert job.job_dir is None


def test_expansion_count_order_and_names(tmp_path):
    path = write(tmp_path, """
        [defaults]
        output_dir = "out"

        [[job]]
        content = ["photos/cat.jpg", "photos/dog.jpg"]
        style = ["art/starry.jpg", "art/scream.jpg"]
        vary = { style_weight = [1.0, 10.5] }
    """)
    jobs = load_batch(path)
    assert [job.name for job in jobs] == [
        "cat_starry_style_weight-1", "cat_starry_style_weight-10.5",
        "cat_scream_style_weight-1", "cat_scream_style_weight-10.5",
        "dog_starry_style_weight-1", "dog_starry_style_weight-10.5",
        "dog_scream_style_weight-1", "dog_scream_style_weight-10.5",
    ]
    assert jobs[0].output == tmp_path.resolve() / "out/cat_starry_style_weight-1.png"
    assert [job.options["style_weight"] for job in jobs[:2]] == [1.0, 10.5]
    assert {job.line for job in jobs} == {4}


def test_list_options_are_values_not_expansions(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "cat-{content_layers}.png"
        style_layers = ["relu1_1", "relu2_1"]
        vary = { content_layers = [["relu4_2"], ["relu3_1", "relu4_2"]] }
    """)
    jobs = load_batch(path)
    assert [job.name for job in jobs] == ["cat-relu4_2", "cat-relu3_1-relu4_2"]
    assert [job.options["style_layers"] for job in jobs] == [["relu1_1", "relu2_1"]] * 2
    assert make_config(**jobs[1].options).content_layers == ("relu3_1", "relu4_2")


def test_output_template(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = ["cat.jpg", "my dog.jpg"]
        style = "starry.jpg"
        output = "out/{content}-{style}-{tv_weight}-{iterations}.png"
        iterations = 30
        vary.tv_weight = [0.0, 2.5]
    """)
    names = [job.output.relative_to(tmp_path.resolve()).as_posix() for job in load_batch(path)]
    assert names == ["out/cat-starry-0-30.png", "out/cat-starry-2.5-30.png",
                     "out/my-dog-starry-0-30.png", "out/my-dog-starry-2.5-30.png"]


def test_template_without_distinguishing_placeholders(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = ["cat.jpg", "dog.jpg"]
        style = "starry.jpg"
        output = "out/{style}.png"
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:1: ") and "more than once" in message


def test_unknown_placeholder(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "out/{colour}.png"
    """)
    assert error_of(path).startswith(f"{path}:4: output uses unknown placeholder {{colour}}")


def test_duplicate_outputs_name_both_lines(tmp_path):
    path = write(tmp_path, """
        [defaults]
        output_dir = "out"

        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"

        [[job]]
        content = "a/dog.jpg"
        style = "scream.jpg"

        [[job]]
        content = "b/cat.jpg"
        style = "starry.jpg"
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:12: ") and "line 4" in message and "cat_starry.png" in message


def test_same_stem_in_different_folders_gets_unique_names(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "a/cat.png"

        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "b/cat.png"
    """)
    assert [job.name for job in load_batch(path)] == ["cat", "cat-2"]


def test_toml_syntax_error_line(tmp_path):
    path = write(tmp_path, """
        [defaults]
        iterations = 80

        [[job]]
        content = "cat.jpg"
        style = starry.jpg
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:6: invalid TOML") and "(at line" not in message


def test_unknown_option_names_its_line(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "cat.png"

        [[job]]
        content = "dog.jpg"
        style = "starry.jpg"
        output = "dog.png"
        styel_weight = 3.0
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:10: unknown option 'styel_weight'") and "style_weight" in message


def test_bad_value_names_its_line(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "cat.png"
        tiling = "sideways"
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:5: ") and "--tiling" in message


@pytest.mark.parametrize("line, setting", [
    (3, 'target_size = "big"'),          # a type make_config cannot compare
    (3, 'max_memory = "lots"'),          # a message that names no option
    (3, 'style_layers = ["relu9_9"]'),
])
def test_bad_value_without_option_in_message(tmp_path, line, setting):
    path = write(tmp_path, f"""
        [defaults]
        iterations = 10
        {setting}

        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "cat.png"
    """)
    assert error_of(path).startswith(f"{path}:{line}: ")


def test_bad_varied_value_names_vary_line(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
        output = "cat-{iterations}.png"
        vary = { iterations = [10, 0] }
    """)
    message = error_of(path)
    assert message.startswith(f"{path}:5: ") and "--iterations" in message


def test_missing_content_names_job_line(tmp_path):
    path = write(tmp_path, """
        [defaults]
        output_dir = "out"

        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"

        [[job]]
        style = "starry.jpg"
    """)
    assert error_of(path) == f"{path}:8: job has no content"


@pytest.mark.parametrize("content, extra, line, words", [
    ('"cat.jpg"', "vary = { style_weight = [] }", 5, "non-empty list"),
    ('"cat.jpg"', "vary.style_weight = 5", 5, "non-empty list"),
    ('"cat.jpg"', "[job.vary]\nstyle_weight = 5", 6, "non-empty list"),
    ('"cat.jpg"', "vary = [1, 2]", 5, "vary must be a table"),
    ('"cat.jpg"', "vary = { colour = [1] }", 5, "unknown option 'colour'"),
    ('"cat.jpg"', "style_weight = 1.0\nvary.style_weight = [2.0]", 5, "both set and varied"),
    ("3", "", 2, "content must be a path"),
    ("[]", "", 2, "content must be a path"),
])
def test_wrong_types(tmp_path, content, extra, line, words):
    path = write(tmp_path, f"""
[[job]]
content = {content}
style = "starry.jpg"
output = "out/{{content}}-{{style_weight}}.png"
{extra}
""")
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: ") and words in message


def test_needs_output_or_output_dir(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "cat.jpg"
        style = "starry.jpg"
    """)
    assert error_of(path) == f"{path}:1: job needs output or output_dir (here or in [defaults])"


def test_unknown_top_level_and_defaults_keys(tmp_path):
    path = write(tmp_path, """
        [defaults]
        iterations = 10

        [jobs]
        content = "cat.jpg"
    """)
    assert error_of(path).startswith(f"{path}:4: unknown table or key 'jobs'")
    path = write(tmp_path, """
        [defaults]
        iterations = 10
        content = "cat.jpg"

        [[job]]
        style = "starry.jpg"
    """)
    assert error_of(path).startswith(f"{path}:3: content belongs in a [[job]]")


def test_no_jobs(tmp_path):
    path = write(tmp_path, """
        [defaults]
        iterations = 10
    """)
    assert "no [[job]]" in error_of(path)


def test_missing_and_unreadable_file(tmp_path):
    assert error_of(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: batch file not found"
    assert "cannot read batch file" in error_of(tmp_path)
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in error_of(tmp_path / "binary.toml")


def test_keys_may_be_spelled_as_on_the_command_line(tmp_path):
    dashed = write(tmp_path, """
        [defaults]
        target-size = 1024
        output-dir = "renders"

        [[job]]
        content = "photos/cat.jpg"
        style = "art/starry.jpg"
        style-weight = 5.0
        vary = { tv-weight = [1.0, 2.0] }

        [[job]]
        content = "photos/dog.jpg"
        style = "art/starry.jpg"
        job-dir = "work/dog"
    """, name="dashed.toml")
    plain = write(tmp_path, """
        [defaults]
        target_size = 1024
        output_dir = "renders"

        [[job]]
        content = "photos/cat.jpg"
        style = "art/starry.jpg"
        style_weight = 5.0
        vary = { tv_weight = [1.0, 2.0] }

        [[job]]
        content = "photos/dog.jpg"
        style = "art/starry.jpg"
        job_dir = "work/dog"
    """, name="plain.toml")
    assert [(job.options, job.output, job.job_dir) for job in load_batch(dashed)] == \
        [(job.options, job.output, job.job_dir) for job in load_batch(plain)]
    jobs = load_batch(dashed)
    assert jobs[1].options == {"target_size": 1024, "style_weight": 5.0, "tv_weight": 2.0}
    assert jobs[0].output.parent == (tmp_path / "renders").resolve()
    assert jobs[2].job_dir == (tmp_path / "work/dog").resolve()


def test_a_key_in_both_spellings_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "photos/cat.jpg"
        style = "art/starry.jpg"
        target_size = 512
        target-size = 1024
    """)
    assert error_of(path) == f"{path}:5: target_size is set twice, as target_size and as target-size; keep one"


def test_an_unknown_dashed_key_is_named_as_written(tmp_path):
    path = write(tmp_path, """
        [[job]]
        content = "photos/cat.jpg"
        style = "art/starry.jpg"
        target-sise = 1024
    """)
    assert error_of(path) == f"{path}:4: unknown option 'target-sise' (did you mean target_size?)"
