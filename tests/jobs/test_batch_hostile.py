"""Hostile and mistaken batch files: each is refused in one line naming the file and line,
before any job runs, with and without --dry-run, and nothing in the folder changes."""

import hashlib
import os
import re
import threading

import numpy as np
import pytest
from PIL import Image

from largestyle.jobs import batchfile, batchlimits
from largestyle.cli.main import main

OPTIONS = """[defaults]
target_size = 32
iterations = 2
first_level_factor = 1
weights = "random"
content_layers = ["relu1_1"]
style_layers = ["relu1_1"]
"""
FIRST = OPTIONS.count("\n") + 1  # the line after the defaults


def job(*lines: str, content: str = '"content.png"', style: str = '"style.png"') -> str:
    """A [[job]]: its header, content and style (TOML values), then ``lines``, the first 3 lines below the header."""
    return "\n".join(["[[job]]", f"content = {content}", f"style = {style}", *lines]) + "\n"


def deep(opening: str, closing: str, depth: int = 100_000) -> str:
    return opening * depth + closing * depth


# name: (batch file text or bytes, line of the error or None for a problem of the whole file, words in it).
# A line of the form FIRST + n counts from the first [[job]], which follows the defaults.
CASES = {
    # outputs over inputs
    "output over its own content": (
        OPTIONS + job('output = "{content}.png"'), FIRST + 3, "is the content image"),
    "output over another job's content": (
        OPTIONS + job('output = "a.png"') + job('output = "content.png"', content='"style.png"'),
        FIRST + 7, "of the job at line"),
    "output over a hard link to the style": (
        OPTIONS + job('output = "hardlink.png"'), FIRST + 3, "is the style image"),
    "output over a symbolic link to the content": (
        OPTIONS + job('output = "symlink.png"'), FIRST + 3, "is the content image"),
    "output over the batch file": (
        OPTIONS + job('output = "jobs.png"'), FIRST + 3, "is the batch file"),
    "output is a directory": (
        OPTIONS + job('output = "folder.png"'), FIRST + 3, "is a directory"),
    "output type the renderer cannot write": (
        OPTIONS + job('output = "out.gif"'), FIRST + 3, "unsupported type '.gif'"),
    "16-bit JPEG": (
        OPTIONS + job('output = "out.jpg"', "bit_depth = 16"), FIRST + 3, "JPEG holds 8 bits"),
    # job directories
    "x.png and x.jpg share x.job": (
        OPTIONS + job('output = "x.png"') + job('output = "x.jpg"'), FIRST + 4, "x.job"),
    "job_dir shared by two expansions": (
        OPTIONS + job('output = "{style}-out.png"', 'job_dir = "work"', style='["style.png", "content.png"]'),
        FIRST + 4, "several renders of this job"),
    "job_dir holds the inputs and the batch file": (
        OPTIONS + job('output = "out/a.png"', 'job_dir = "."'), FIRST + 4, "holds the"),
    "job_dir inside an input": (
        OPTIONS + job('output = "a.png"', 'job_dir = "content.png/work"'), FIRST + 4, "lies inside the content"),
    "job_dir is another job's output": (
        OPTIONS + job('output = "a.png"') + job('output = "b.png"', 'job_dir = "a.png"'), FIRST + 8,
        "is the output"),
    "job_dir holds another job's output": (
        OPTIONS + job('output = "renders/a.png"') + job('output = "b.png"', 'job_dir = "renders"'), FIRST + 8,
        "holds the output"),
    "job_dir holds another job's job directory": (
        OPTIONS + job('output = "a.png"', 'job_dir = "work/inner"') + job('output = "b.png"', 'job_dir = "work"'),
        FIRST + 9, "holds the job directory"),
    "default job directory holds another job's output": (
        OPTIONS + job('output = "a.png"') + job('output = "a.job/b.png"'), FIRST, "holds the output"),
    # the index (the batch file's name with .html)
    "index over an input": (
        OPTIONS + job('output = "a.png"', content='"jobs.html"'), FIRST + 1, "index"),
    # pathological files
    "deep arrays": ("# nested\n\na = " + deep("[", "]") + "\n", 3, "nested more than"),
    "deep inline tables": ("\na = " + deep("{b = ", "}").replace("{b = }", "{b = 1}") + "\n", 2, "nested more than"),
    "deep dotted key": ("\n\na" + ".b" * 100_000 + " = 1\n", 3, "dotted parts"),
    "deep table header": ("[a" + ".b" * 100_000 + "]\n", 1, "dotted parts"),
    "vary of 20001 values": (
        OPTIONS + job('output = "{style_weight}.png"', "vary.style_weight = ["
                      + ", ".join(map(str, range(20_001))) + "]"), FIRST + 4, "20,001 renders"),
    "lists whose product is millions": (
        OPTIONS + job('output = "{content}-{style}-{style_weight}.png"',
                      "vary.style_weight = [" + ", ".join(map(str, range(1000))) + "]",
                      content="[" + ", ".join(['"content.png"'] * 100) + "]",
                      style="[" + ", ".join(['"style.png"'] * 100) + "]"),
        FIRST + 4, "10,000,000 renders"),
    "too many [[job]] tables": ("[[job]]\n" * 10_001, 10_001, "more than 10,000"),
    "too many renders over several jobs": (
        OPTIONS + job('output = "a-{seed}.png"', "vary.seed = [" + ", ".join(map(str, range(9_000))) + "]")
        + job('output = "b-{seed}.png"', "vary.seed = [" + ", ".join(map(str, range(1_001))) + "]"),
        FIRST + 9, "the jobs above make 9,000"),
    "a long list option": (
        OPTIONS + job('output = "a.png"', "style_layers = [" + ", ".join(['"relu1_1"'] * 100) + "]"),
        FIRST + 4, "100 values"),
    "not UTF-8": (b'[[job]]\ncontent = "content.png"\nstyle = "st\xffyle.png"\n', 3, "not UTF-8"),
    "a NUL byte": (b'[[job]]\ncontent = "content.png"\x00\n', 2, "NUL byte"),
    "a NUL character in a path": (OPTIONS + job('output = "a\\u0000.png"'), FIRST + 3, "NUL character"),
    "a newline in a path": (OPTIONS + job('output = "a\\nb.gif"'), FIRST + 3, "a\\nb.gif"),
    "a huge width in the output template": (
        OPTIONS + job('output = "{content:>999999999999}.png"'), FIRST + 3, "bad output template field"),
    "a line separator does not shift lines": ("# \u2028\n[[job]]\ncontent = 3\n", 3, "content must be a path"),
    "a directory": (None, None, "it is a directory"),
    "a FIFO": (None, None, "not a regular file"),
    "a symbolic link loop": (None, None, "loop of symbolic links"),
    "over 16 MiB": (None, None, "at most 16,777,216 (16 MiB)"),
    "named like its own index": (None, None, "which is this file"),
    "index is a directory": (OPTIONS + job('output = "a.png"'), None, "which is a directory"),
}


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "content.png")
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "style.png")
    os.link(tmp_path / "style.png", tmp_path / "hardlink.png")
    os.symlink("content.png", tmp_path / "symlink.png")
    (tmp_path / "folder.png").mkdir()
    return tmp_path


def batch_file(folder, name: str):
    text = CASES[name][0]
    if name == "index is a directory":
        (folder / "jobs.html").mkdir()
    if text is not None:
        path = folder / ("jobs.png" if name == "output over the batch file" else "jobs.toml")
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path
    if name == "a directory":
        (folder / "jobs.toml").mkdir()
    elif name == "a FIFO":
        os.mkfifo(folder / "jobs.toml")
    elif name == "a symbolic link loop":
        os.symlink("loop.toml", folder / "jobs.toml")
        os.symlink("jobs.toml", folder / "loop.toml")
    elif name == "over 16 MiB":
        with open(folder / "jobs.toml", "wb") as stream:
            stream.truncate(batchlimits.MAX_FILE_BYTES + 1)  # sparse: nothing is written
    elif name == "named like its own index":
        (folder / "jobs.html").write_text(OPTIONS + job('output = "a.png"'))
        return folder / "jobs.html"
    return folder / "jobs.toml"


def snapshot(folder) -> dict:
    """Every entry below ``folder``: a regular file's sha256, a link's target, or its kind."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if os.path.islink(path):
                found[path] = "link to " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as stream:
                    found[path] = hashlib.file_digest(stream, "sha256").hexdigest()
            else:
                found[path] = f"mode {info.st_mode:o}"
    return found


def run(args, capsys):
    """main(args) in a thread, so that a read that blocks (a FIFO) fails the test instead of hanging it."""
    result = {}

    def target():
        try:
            result["code"] = main(args)
        except BaseException as exc:  # noqa: BLE001 - raised again below, in the test's thread
            result["raised"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "largestyle batch blocked"
    if "raised" in result:
        raise result["raised"]
    printed = capsys.readouterr()
    return result["code"], printed.out, printed.err


def run_here(args, capsys):
    code = main(args)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


@pytest.mark.parametrize("name", CASES)
def test_refused_in_one_line_before_anything_runs(folder, capsys, name):
    path = batch_file(folder, name)
    _, line, words = CASES[name]
    before = snapshot(folder)
    for extra in ([], ["--dry-run"]):
        code, out, err = run(["batch", str(path), "-q", *extra], capsys)
        assert code == 2, err
        assert "Traceback" not in err and out == ""
        assert len(err.splitlines()) == 1, err
        where = f"{re.escape(str(path))}:{line}" if line is not None else re.escape(str(path))
        assert re.match(rf"largestyle: error: {where}: \S", err), err
        assert words in err, err
    assert snapshot(folder) == before  # no job directory, no output, nothing rewritten


def test_limits_are_stated():
    assert batchlimits.MAX_JOBS == 10_000 and batchlimits.MAX_FILE_BYTES == 16 * 2**20


def test_the_job_limit_counts_every_render(tmp_path, monkeypatch):
    monkeypatch.setattr(batchlimits, "MAX_JOBS", 6)
    path = tmp_path / "jobs.toml"
    path.write_text(OPTIONS + job('output = "a-{seed}.png"', "vary.seed = [1, 2, 3, 4]")
                    + job('output = "b-{seed}.png"', "vary.seed = [1, 2]"))
    assert len(batchfile.load_batch(path)) == 6
    path.write_text(path.read_text() + job('output = "c.png"'))
    third = FIRST + 10  # the third [[job]]: its only render is one too many
    with pytest.raises(batchfile.LargestyleError,
                       match=rf"^{re.escape(str(path))}:{third}: .*1 render .*at most 6, and the jobs above make 6"):
        batchfile.load_batch(path)


def test_missing_and_unreadable_inputs_are_listed_by_dry_run(folder, capsys):
    os.mkfifo(folder / "pipe.png")
    path = folder / "jobs.toml"
    path.write_text(OPTIONS + job('output = "a.png"') + job('output = "b.png"', content='"missing.png"')
                    + job('output = "c.png"', content='"missing.png"', style='"pipe.png"'))
    code, out, err = run(["batch", str(path), "--dry-run"], capsys)
    assert code == 1 and err == ""
    listed = out[out.index("missing or unreadable inputs"):].splitlines()[1:]
    assert listed == [f"  content image not found: {folder / 'missing.png'} (2 jobs)",
                      f"  cannot read style image {folder / 'pipe.png'}: not a regular file (a pipe, socket or device) "
                      "(1 job)"]
    assert out.count("strategy") == 1  # the first job is planned


def test_a_finished_job_whose_output_was_damaged_runs_again(folder, capsys):
    path = folder / "jobs.toml"
    path.write_text(OPTIONS + job('output = "out.png"'))
    output = folder / "out.png"
    code, out, _ = run_here(["batch", str(path), "-q"], capsys)
    assert code == 0 and "finished" in out
    good = output.read_bytes()
    assert "skipped" in run_here(["batch", str(path), "-q"], capsys)[1]
    output.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    code, out, _ = run_here(["batch", str(path), "--dry-run"], capsys)
    assert code == 0 and "output is missing or changed: would run again" in out
    code, out, _ = run_here(["batch", str(path), "-q"], capsys)
    assert code == 0 and "finished" in out and "skipped" not in out
    assert output.read_bytes() == good
    output.unlink()
    code, out, _ = run_here(["batch", str(path), "-q"], capsys)
    assert code == 0 and "finished" in out and output.read_bytes() == good


def test_brackets_and_dots_in_strings_and_comments_do_not_count(tmp_path):
    many = "[{" * 40 + "." * 40
    path = tmp_path / "jobs.toml"
    path.write_text(OPTIONS + f"# {many}\n" + job(
        f'output = """out{many.replace("[{", "")}.png"""',
        content=f"'c{many}.png'", style=f'"s\\"{many}\\".png"'))
    [spec] = batchfile.load_batch(path)
    assert spec.content.name == f"c{many}.png" and spec.styles[0].name == f's"{many}".png'
    assert spec.output.name == "out" + "." * 40 + ".png"
