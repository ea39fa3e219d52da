"""Hostile and broken weights files, killed runs and failing disks: one plain line, nothing left behind."""

import contextlib
import errno
import fcntl
import hashlib
import os
import pickle
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import largestyle.network.weights as weights_module
from largestyle.core import atomic
from largestyle.core import faults
from largestyle.network import download as fetch
from largestyle.network import compact
from largestyle.cli.main import main
from largestyle.core.errors import LargestyleError
from largestyle.network.download import one_line
from largestyle.network.weightfiles import COMPACT_FORMAT, read_weights, to_torchvision_state, write_compact
from largestyle.network.weights import Source, compact_name, load_network

CONVS = ("conv1_1", "conv1_2", "conv2_1")
CHANNELS = {"conv1_1": (3, 64), "conv1_2": (64, 64), "conv2_1": (64, 128)}
COMPACT = compact_name("torchvision")
FULL = "vgg19-dcbb9e9d.pth"


def small_state():
    """conv1_1 to conv2_1 with small random values: a VGG-19 file may stop early."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name in CONVS:
        c_in, c_out = CHANNELS[name]
        state[f"{name}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=generator) * 0.1
        state[f"{name}.bias"] = torch.randn(c_out, generator=generator) * 0.01
    return state


def save(path, format, state):
    """``state`` (canonical keys) saved at ``path`` in one of the formats read_weights knows."""
    if format == "torchvision":
        torch.save({**to_torchvision_state(state), "classifier.0.weight": torch.zeros(2, 2)}, path)
    elif format == "named":
        torch.save(state, path)
    elif format == "largestyle":
        torch.save({"format": COMPACT_FORMAT, "flavour": "torchvision", "source_sha256": "0" * 64,
                    "state": state}, path)
    else:
        arrays = [state[f"{name}.{part}"].numpy() for name in CONVS for part in ("weight", "bias")]
        with open(path, "wb") as stream:
            pickle.dump({"param values": arrays}, stream, protocol=2)
    return path


def snapshot(folder):
    """Every file, folder and link under ``folder``, with a hash of each file's bytes."""
    found = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(root) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = "link to " + os.readlink(path)
            elif path.is_dir():
                found[key] = "folder"
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "special file"
    return found


def refused(capsys, folder, *args):
    """Run the CLI; it must fail with one plain error line and change nothing under ``folder``."""
    before = snapshot(folder)
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.startswith("largestyle: error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "\x1b" not in err, repr(err)
    assert snapshot(folder) == before
    return err[len("largestyle: error: "):].rstrip("\n")


def succeeds(capsys, *args):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def command(action, source, output, images):
    if action == "info":
        return ["weights", "info", source]
    if action == "convert":
        return ["weights", "convert", source, output]
    return ["weights", "normalize", source, output, "--images", images, "--size", "16"]


# --- NaN and infinite values ------------------------------------------------------------------

@pytest.mark.parametrize("action", ["info", "convert", "normalize"])
@pytest.mark.parametrize("format", ["torchvision", "named", "largestyle", "lasagne"])
def test_nan_or_infinite_values_are_refused_naming_the_first_bad_tensor(tmp_path, capsys, images, format, action):
    state = small_state()
    state["conv1_2.weight"][0, 0, 0] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    state["conv2_1.bias"][5] = float("nan")  # a later one: not the one named
    source = save(tmp_path / ("w.pkl" if format == "lasagne" else "w.pth"), format, state)
    message = refused(capsys, tmp_path, *command(action, source, tmp_path / "out.pth", images))
    stored = r" \(stored as features\.2\.weight\)" if format == "torchvision" else ""
    assert re.fullmatch(rf"weights file {re.escape(str(source))}: conv1_2\.weight{stored} holds 3 NaN or infinite "
                        "values; the file is damaged: download or convert it again", message), message


@pytest.mark.parametrize("format", ["torchvision", "named", "largestyle", "lasagne"])
def test_a_render_refuses_nan_weights(tmp_path, format):
    state = small_state()
    state["conv1_1.bias"][3] = float("inf")
    source = save(tmp_path / ("w.pkl" if format == "lasagne" else "w.pth"), format, state)
    with pytest.raises(LargestyleError, match=r"conv1_1\.bias.* holds 1 NaN or infinite value; the file is damaged") \
            as caught:
        load_network(str(source), "relu1_1", "avg")
    assert str(source) in str(caught.value)


def test_render_command_with_nan_weights_fails_in_one_line(tmp_path, capsys, images):
    state = small_state()
    state["conv1_1.weight"][0, 0, 0, 0] = float("nan")
    source = save(tmp_path / "w.pth", "named", state)
    code = main(["render", str(images / "a.png"), str(images / "a.png"), "-o", str(tmp_path / "o.png"),
                 "--weights", str(source), "--content-layers", "relu1_1", "--style-layers", "relu1_1"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"weights file {source}: conv1_1.weight holds 1 NaN or infinite value" in err
    assert not (tmp_path / "o.png").exists()


def test_float64_values_beyond_float32_are_infinite_and_refused(tmp_path):
    state = {key: value.double() for key, value in small_state().items()}
    state["conv1_1.weight"][0, 0, 0, 0] = 1e300
    for format in ("named", "lasagne"):
        path = save(tmp_path / f"w-{format}", format, state)
        with pytest.raises(LargestyleError, match="conv1_1.weight holds 1 NaN or infinite value"):
            read_weights(path, format)


# --- messages in the user's words -------------------------------------------------------------

class WholeNetwork(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)


def write_bad_files(folder):
    """name -> (what the message must say); the files are written into ``folder``."""
    small = small_state()
    torch.save(small, folder / "good.pth")
    whole = (folder / "good.pth").read_bytes()
    torch.save(small, folder / "legacy.pth", _use_new_zipfile_serialization=False)
    legacy = (folder / "legacy.pth").read_bytes()
    save(folder / "good.pkl", "lasagne", small)
    pickled = (folder / "good.pkl").read_bytes()
    for name in ("good.pth", "legacy.pth", "good.pkl"):
        (folder / name).unlink()
    torch.save(WholeNetwork(), folder / "module.pth")
    torch.save({"conv1_1.weight": np.zeros((64, 3, 3, 3), np.float32)}, folder / "numpy.pth")
    with zipfile.ZipFile(folder / "archive.pth", "w") as archive:
        archive.writestr("notes.txt", "not weights")
    files = {
        "truncated.pth": (whole[:len(whole) // 2], "is truncated or damaged (not a complete PyTorch file); "
                                                   "download or convert it again"),
        "cut-short.pth": (whole[:-30], "is truncated or damaged (not a complete PyTorch file)"),
        "legacy-truncated.pth": (legacy[:len(legacy) // 3], "is truncated or damaged (not a complete PyTorch file)"),
        "truncated.pkl": (pickled[:len(pickled) // 2], "is truncated or damaged (not a complete pickle file)"),
        "random.pth": (np.random.default_rng(1).bytes(2000), "is not a PyTorch or pickle weights file; give the "
                                                              "path of a VGG-19 weights file"),
        "text.pkl": (b"just some text\n", "is not a PyTorch or pickle weights file"),
        "empty.pth": (b"", "is empty; download or convert it again"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    expected = {name: message for name, (_, message) in files.items()}
    expected["module.pth"] = ("is a pickle that needs code to load (it refers to ",
                              "WholeNetwork), not a plain weights file; if you trust it, convert it with torch "
                              "to a state dict first")
    expected["numpy.pth"] = ("is a pickle that needs code to load (it refers to numpy.",
                             "if you trust it, convert it with torch to a state dict first")
    expected["archive.pth"] = "is not a PyTorch or pickle weights file"
    return expected


def test_unreadable_files_are_explained_without_library_text(tmp_path, capsys):
    folder = tmp_path / "files"
    folder.mkdir()
    for name, expected in write_bad_files(folder).items():
        path = folder / name
        message = refused(capsys, tmp_path, "weights", "info", path)
        assert message.startswith(f"weights file {path} "), message
        for part in (expected if isinstance(expected, tuple) else (expected,)):
            assert part in message, (name, message)
        assert not re.search(r"weights.only|Unpickl|Error|enforce|miniz|\bpos\b", message, re.I), message


@pytest.mark.parametrize("action", ["convert", "normalize"])
def test_a_pickle_that_needs_code_is_refused_by_convert_and_normalize(tmp_path, capsys, images, action):
    torch.save(WholeNetwork(), tmp_path / "module.pth")
    message = refused(capsys, tmp_path, *command(action, tmp_path / "module.pth", tmp_path / "out.pth", images))
    assert "needs code to load" in message


def test_names_and_keys_from_a_file_cannot_break_the_line(tmp_path, capsys):
    folder = tmp_path / "files"
    folder.mkdir()
    odd = folder / "odd\n\x1b[31mname\u2028.pth"
    odd.write_bytes(b"\x00not weights")
    message = refused(capsys, tmp_path, "weights", "info", odd)
    assert message == (f"weights file {folder}/odd\\nname\\u2028.pth is not a PyTorch or pickle weights file; "
                       "give the path of a VGG-19 weights file (.pth or .pkl)")
    keys = folder / "keys.pth"
    torch.save({"\x1b]0;title\x07evil\nkey\r" + "x" * 500: torch.zeros(1)}, keys)
    message = refused(capsys, tmp_path, "weights", "info", keys)
    assert "evil\\nkey\\r" in message and "\x07" not in message and len(message) < 400, message


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_file_torch_cannot_load_safely_is_explained_without_library_notes(tmp_path, capsys, protocol):
    path = tmp_path / "w.pth"
    torch.save(small_state(), path, pickle_protocol=protocol)
    assert refused(capsys, tmp_path, "weights", "info", path) == (
        f"weights file {path} is saved with pickle protocol {protocol}, which PyTorch's safe loader cannot read; "
        "if you trust it, load it with torch and save it again with torch.save's default protocol")


LONG = "n" * 300  # longer than a file name may be


@pytest.mark.parametrize("case", ["folder", "missing", "forced lasagne on a PyTorch file", "size too small", "pipe",
                                  "name too long", "output name too long", "folder name too long", "link loop"])
def test_other_refusals_say_what_to_do(tmp_path, capsys, images, case):
    source = save(tmp_path / "w.pth", "named", small_state())
    os.mkfifo(tmp_path / "pipe.pth")
    (tmp_path / "loop.pth").symlink_to(tmp_path / "loop.pth")
    args, expected = {
        "folder": (["weights", "info", images], f"weights file {images} is a folder; give the path of a weights file"),
        "missing": (["weights", "info", tmp_path / "nope.pth"], f"weights file not found: {tmp_path / 'nope.pth'}; "
                                                                "check the path"),
        "forced lasagne on a PyTorch file": (
            ["weights", "convert", source, tmp_path / "o.pth", "--weights-format", "lasagne"],
            "is not in the lasagne format: it is a PyTorch file; leave out --weights-format"),
        "size too small": (["weights", "normalize", source, tmp_path / "o.pth", "--images", images, "--size", "1"],
                           "--size 1 is too small: the deepest layer sees the images 2 times smaller; "
                           "use --size 2 or more"),
        "pipe": (["weights", "info", tmp_path / "pipe.pth"], "is not a regular file (a pipe or a device?); give "
                                                              "the path of a weights file"),
        "name too long": (["weights", "info", tmp_path / LONG], f"cannot read weights file {tmp_path / LONG}: "
                                                                "File name too long; check the path"),
        "output name too long": (["weights", "convert", source, tmp_path / LONG],
                                 f"cannot write {tmp_path / LONG}: File name too long; choose another output file"),
        "folder name too long": (["weights", "fetch", "--dir", tmp_path / LONG, "-q"],
                                 f"cannot write {tmp_path / LONG / FULL}: File name too long; "
                                 "choose another folder with --dir"),
        "link loop": (["weights", "info", tmp_path / "loop.pth"], "Too many levels of symbolic links"),
    }[case]
    assert expected in refused(capsys, tmp_path, *args)


def test_normalize_enlarges_an_image_too_thin_for_the_deepest_layer(tmp_path, capsys):
    source = save(tmp_path / "w.pth", "named", small_state())
    folder = tmp_path / "thin"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (2, 60, 3), dtype=np.uint8)).save(folder / "t.png")
    out = succeeds(capsys, "weights", "normalize", source, tmp_path / "n.pth", "--images", folder, "--size", "16")
    assert "normalised on 1 images" in out
    assert read_weights(tmp_path / "n.pth").layers == CONVS


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("\x1b[1mbold\x1b[0m and \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "bold and link"),
    ("two\nlines\tand\rreturn", "two\\nlines\\tand\\rreturn"),
    ("bell\x07 del\x7f c1\x9b31m sep\u2029", "bell\\x07 del\\x7f c1 sep\\u2029"),
    ("caf\u00e9 \u2192 ok", "caf\u00e9 \u2192 ok"),
])
def test_one_line(text, expected):
    assert one_line(text) == expected


# --- convert and normalize onto their own input -------------------------------------------------

@pytest.mark.parametrize("link", ["same path", "same path spelt differently", "symbolic link", "hard link"])
@pytest.mark.parametrize("action", ["convert", "normalize"])
def test_writing_onto_the_input_is_refused_before_anything_is_written(tmp_path, capsys, images, action, link,
                                                                      monkeypatch):
    source = save(tmp_path / "w.pth", "named", small_state())
    output = {"same path": source, "same path spelt differently": tmp_path / "images" / ".." / "w.pth",
              "symbolic link": tmp_path / "link.pth", "hard link": tmp_path / "hard.pth"}[link]
    if link == "symbolic link":
        output.symlink_to(source)
    elif link == "hard link":
        os.link(source, output)
    message = refused(capsys, tmp_path, *command(action, source, output, images))
    assert message == (f"output {output} is the input {source}: writing it would destroy the weights it is made "
                       "from; choose another output file")


def test_an_output_that_is_a_folder_is_refused_before_reading(tmp_path, capsys):
    source = save(tmp_path / "w.pth", "named", small_state())
    (tmp_path / "out").mkdir()
    assert refused(capsys, tmp_path, "weights", "convert", source, tmp_path / "out") == (
        f"cannot write {tmp_path / 'out'}: it is a folder; choose an output file name")


# --- leftovers of a killed run --------------------------------------------------------------------

@contextlib.contextmanager
def held(path):
    """``path`` created and locked as a live writer holds its temporary file."""
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        os.close(handle)


def test_a_convert_killed_mid_write_leaves_a_temporary_that_the_next_run_removes(tmp_path, capsys):
    source = save(tmp_path / "w.pth", "named", small_state())
    out = tmp_path / "out.pth"
    env = {**os.environ, "LARGESTYLE_KILL_AT": "weights-write:2"}  # after its first block
    killed = subprocess.run([sys.executable, "-m", "largestyle", "weights", "convert", str(source), str(out)],
                            env=env, capture_output=True, cwd=Path(__file__).resolve().parents[2])
    assert killed.returncode == -9, killed.stderr.decode()
    left = [name for name in os.listdir(tmp_path) if atomic.is_temporary_of(name, "out.pth")]
    assert len(left) == 1 and not out.exists()

    succeeds(capsys, "weights", "convert", source, out)
    assert sorted(os.listdir(tmp_path)) == ["out.pth", "w.pth"]
    assert read_weights(out).layers == CONVS


@pytest.mark.parametrize("action", ["convert", "normalize"])
def test_convert_and_normalize_remove_only_their_own_unheld_temporaries(tmp_path, capsys, images, action):
    source = save(tmp_path / "w.pth", "named", small_state())
    stale = tmp_path / ".out.pth.abcd1234.tmp"
    stale.write_bytes(b"left by a killed run")
    others = [tmp_path / ".other.pth.abcd1234.tmp", tmp_path / ".out.pth.abcd1234.part", tmp_path / ".out.pth.tmp"]
    for path in others:
        path.write_bytes(b"not ours")
    with held(tmp_path / ".out.pth.live_123.tmp") as live:
        succeeds(capsys, *command(action, source, tmp_path / "out.pth", images))
        assert not stale.exists()
        assert live.exists() and all(path.exists() for path in others)
    assert read_weights(tmp_path / "out.pth").layers == CONVS


@pytest.fixture
def local_source(tmp_path, monkeypatch):
    """The torchvision flavour's official file, served from a local file:// URL."""
    folder = tmp_path / "server"
    folder.mkdir()
    path = save(folder / FULL, "torchvision", small_state())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(weights_module.SOURCES, "torchvision", Source(path.as_uri(), FULL, digest[:8]))
    return path


def test_fetch_removes_what_a_killed_fetch_left_and_only_that(tmp_path, capsys, local_source):
    folder = tmp_path / "w"
    folder.mkdir()
    stale = [folder / f".{FULL}.abcd1234.part", folder / f".{COMPACT}.abcd1234.tmp"]
    for path in stale:
        path.write_bytes(b"left by a killed fetch")
    (folder / "notes.txt").write_text("mine")
    (folder / f".{FULL}.abcd1234.tmp").write_text("another suffix: not a download's")
    with held(folder / f".{FULL}.live_123.part") as live:
        succeeds(capsys, "weights", "fetch", "--dir", folder, "-q")
        assert live.exists()
    assert sorted(os.listdir(folder)) == sorted(
        [COMPACT, "notes.txt", f".{FULL}.abcd1234.tmp", f".{FULL}.live_123.part"])
    assert read_weights(folder / COMPACT).layers == CONVS


def test_fetch_compacts_a_complete_download_that_a_killed_fetch_left(tmp_path, capsys, local_source, monkeypatch):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / FULL).write_bytes(local_source.read_bytes())
    source = weights_module.SOURCES["torchvision"]
    unreachable = Source((tmp_path / "nowhere" / FULL).as_uri(), FULL, source.sha256)
    monkeypatch.setitem(weights_module.SOURCES, "torchvision", unreachable)  # a download would fail
    succeeds(capsys, "weights", "fetch", "--dir", folder, "-q")
    assert os.listdir(folder) == [COMPACT]


def test_fetch_replaces_a_damaged_download_that_a_killed_fetch_left(tmp_path, capsys, local_source):
    folder = tmp_path / "w"
    folder.mkdir()
    whole = local_source.read_bytes()
    (folder / FULL).write_bytes(whole[:len(whole) // 2])
    succeeds(capsys, "weights", "fetch", "--dir", folder, "-q")
    assert os.listdir(folder) == [COMPACT]
    assert read_weights(folder / COMPACT).layers == CONVS


def test_fetch_into_a_folder_another_fetch_is_using_is_refused(tmp_path, capsys, local_source):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / f".{FULL}.abcd1234.part").write_bytes(b"maybe the other fetch's")
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        message = refused(capsys, tmp_path, "weights", "fetch", "--dir", folder, "-q")
    finally:
        os.close(handle)
    assert message == (f"another largestyle process is fetching weights into {folder}; wait for it to finish, "
                       "then run this again")


# --- a full disk or a read-only file system --------------------------------------------------------

class FailingStream:
    """A stream that takes ``room`` bytes, then fails as a full disk or read-only file system does."""

    def __init__(self, stream, number, room):
        self.stream, self.number, self.room = stream, number, room

    def write(self, data):
        data = bytes(data)
        if len(data) > self.room:
            self.stream.write(data[:self.room])
            self.room = 0
            raise OSError(self.number, os.strerror(self.number))
        self.room -= len(data)
        return self.stream.write(data)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def failing_writes(monkeypatch, module, number, room):
    """Make ``module``'s atomic writes fail with ``number`` after ``room`` bytes."""
    real = atomic.atomic_write

    @contextlib.contextmanager
    def atomic_write(path, suffix=atomic.TEMPORARY_SUFFIX):
        with real(path, suffix) as stream:
            yield FailingStream(stream, number, room)

    monkeypatch.setattr(module, "atomic_write", atomic_write)


ADVICE = {errno.ENOSPC: "the disk is full; free some space or ", errno.EROFS: "the file system is read-only; "}


@pytest.mark.parametrize("number, room", [(errno.ENOSPC, 0), (errno.ENOSPC, 100), (errno.ENOSPC, 5000),
                                          (errno.EROFS, 2000)])
def test_convert_onto_a_full_or_read_only_disk(tmp_path, capsys, monkeypatch, number, room):
    source = save(tmp_path / "w.pth", "named", small_state())
    out = tmp_path / "out.pth"
    out.write_bytes(b"an older file")
    with monkeypatch.context() as patch:
        failing_writes(patch, compact, number, room)
        message = refused(capsys, tmp_path, "weights", "convert", source, out)
    assert message == f"cannot write {out}: {ADVICE[number]}choose another output file"
    succeeds(capsys, "weights", "convert", source, out)
    assert read_weights(out).layers == CONVS and sorted(os.listdir(tmp_path)) == ["out.pth", "w.pth"]


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("stage", ["download", "compaction"])
def test_fetch_onto_a_full_or_read_only_disk(tmp_path, capsys, monkeypatch, local_source, stage, number):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / COMPACT).write_bytes(b"an older file")
    with monkeypatch.context() as patch:
        failing_writes(patch, fetch if stage == "download" else compact, number, 3000)
        message = refused(capsys, tmp_path, "weights", "fetch", "--dir", folder, "-q")
    written = folder / (FULL if stage == "download" else COMPACT)
    assert message == f"cannot write {written}: {ADVICE[number]}choose another folder with --dir"
    succeeds(capsys, "weights", "fetch", "--dir", folder, "-q")
    assert os.listdir(folder) == [COMPACT] and read_weights(folder / COMPACT).layers == CONVS


@pytest.mark.parametrize("fault, action", [("weights-write:3:ENOSPC", "convert"),
                                           ("weights-write:2:EROFS", "fetch"),
                                           ("download-write:1:ENOSPC", "fetch")])
def test_failing_writes_through_the_fault_hook(tmp_path, capsys, monkeypatch, local_source, fault, action):
    source = save(tmp_path / "w.pth", "named", small_state())
    folder = tmp_path / "w"
    folder.mkdir()
    args = ["weights", "convert", source, folder / "out.pth"] if action == "convert" else \
        ["weights", "fetch", "--dir", folder, "-q"]
    monkeypatch.setattr(faults, "_seen", Counter())
    monkeypatch.setenv(faults.KILL_ENV, fault)
    message = refused(capsys, tmp_path, *args)
    written = {"weights-write:3:ENOSPC": folder / "out.pth", "weights-write:2:EROFS": folder / COMPACT,
               "download-write:1:ENOSPC": folder / FULL}[fault]
    problem = ADVICE[errno.ENOSPC if "ENOSPC" in fault else errno.EROFS]
    elsewhere = "choose another output file" if action == "convert" else "choose another folder with --dir"
    assert message == f"cannot write {written}: {problem}{elsewhere}"
    assert os.listdir(folder) == []


def test_write_compact_reports_the_write_that_failed_even_if_torch_hides_it(tmp_path, monkeypatch):
    found = read_weights(save(tmp_path / "w.pth", "named", small_state()))
    for room in (0, 64, 100, 700, 5000):
        with monkeypatch.context() as patch:
            failing_writes(patch, compact, errno.ENOSPC, room)
            with pytest.raises(LargestyleError, match="out.pth: the disk is full"):
                write_compact(found, tmp_path / "out.pth")
        assert os.listdir(tmp_path) == ["w.pth"]


# --- an explicit random network ---------------------------------------------------------------------

def test_an_explicit_random_network_is_told_apart_from_a_missing_file():
    _, asked = load_network("random", "relu1_1", "avg")
    _, fallback = load_network(None, "relu1_1", "avg")
    assert asked.is_random and fallback.is_random
    assert asked.chosen_by == "--weights random"
    assert fallback.chosen_by == "no weights file found"
