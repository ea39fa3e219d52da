"""Hostile inputs: paths that are not image files, files that hold less than their header
promises, unusual sample formats, and the messages all of them end in.

Every file is built here, a few pixels in size. Reads that could block (FIFOs, devices,
standard input) run in a child process with a timeout, so a regression fails instead of
hanging the suite.
"""

import io
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from largestyle.io import modes, paths, truncation
from largestyle.io import read as imageio
from largestyle.io.messages import shown
from largestyle.core.errors import LargestyleError, brief

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def refusal(call, source, **kwargs) -> str:
    """The message ``call`` (read_image or probe_size) refuses ``source`` with: one line."""
    with pytest.raises(LargestyleError) as caught:
        call(source, "content", **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message, message
    return message


def assert_refused(source, words, probe=True):
    """read_image (and probe_size) refuse ``source``, naming it and saying ``words``."""
    calls = (imageio.read_image, imageio.probe_size) if probe else (imageio.read_image,)
    for call in calls:
        message = refusal(call, source)
        assert shown(source) in message, message
        for word in words:
            assert word in message, (call.__name__, message)


def encoded(fmt: str, array: np.ndarray, **options) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(array).save(stream, fmt, **options)
    return stream.getvalue()


def tiff_bytes(array: np.ndarray, **options) -> bytes:
    stream = io.BytesIO()
    tifffile.imwrite(stream, array, **options)
    return stream.getvalue()


def picture(height=24, width=32, channels=3, dtype=np.uint8):
    """Gradients with some noise: every row differs, and compression leaves real data."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 7, y * 9, (x + y) * 3, x * y][:channels], -1) % 256
    noise = np.random.default_rng(height * width).integers(0, 40, base.shape)
    pixels = ((base + noise) % 256).astype(np.uint8)
    return pixels.astype(np.uint16) * 257 if dtype == np.uint16 else pixels


# --- paths that are not plain image files (in this process: none of these can block) ---

def _directory(tmp, monkeypatch):
    (tmp / "folder").mkdir()
    return tmp / "folder"


def _socket(tmp, monkeypatch):
    path = tmp / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError:
        pytest.skip("cannot make a UNIX socket here")
    finally:
        server.close()
    return path


def _loop(tmp, monkeypatch):
    (tmp / "a.png").symlink_to(tmp / "b.png")
    (tmp / "b.png").symlink_to(tmp / "a.png")
    return tmp / "a.png"


def _dangling(tmp, monkeypatch):
    (tmp / "link.png").symlink_to(tmp / "gone.png")
    return tmp / "link.png"


def _nul(tmp, monkeypatch):
    return str(tmp / "pho\0to.png")


def _through_a_file(tmp, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp / "photo.png")
    return str(tmp / "photo.png" / "x")


def _trailing_slash(tmp, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp / "photo.png")
    return str(tmp / "photo.png") + "/"


def _long_name(tmp, monkeypatch):
    return tmp / ("n" * 300 + ".png")


def _block_device(tmp, monkeypatch):
    for entry in os.scandir("/dev") if os.path.isdir("/dev") else ():
        try:
            if stat.S_ISBLK(entry.stat().st_mode):
                return entry.path
        except OSError:
            continue
    pytest.skip("no block device to look at")


def _unreadable(tmp, monkeypatch):
    if IS_ROOT:
        pytest.skip("root can read any file")
    Image.new("RGB", (4, 4)).save(tmp / "secret.png")
    (tmp / "secret.png").chmod(0)
    return tmp / "secret.png"


def _unsearchable_folder(tmp, monkeypatch):
    if IS_ROOT:
        pytest.skip("root can enter any folder")
    (tmp / "locked").mkdir()
    Image.new("RGB", (4, 4)).save(tmp / "locked" / "p.png")
    (tmp / "locked").chmod(0)
    return tmp / "locked" / "p.png"


def _open_refused(tmp, monkeypatch):
    """What the kernel says to a user without read permission (root is never refused)."""
    Image.new("RGB", (4, 4)).save(tmp / "secret.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths, "open", refuse, raising=False)  # open_regular calls open
    return tmp / "secret.png"


def _missing_with_newline(tmp, monkeypatch):
    return tmp / "two\nlines\x1b[31m.png"


NOT_FILES = {
    "directory": (_directory, ["it is a directory, not an image file", "give the path of an image file"]),
    "UNIX socket": (_socket, ["it is a UNIX socket, not an image file"]),
    "symlink loop": (_loop, ["symbolic link", "loop", "point it at an image file"]),
    "dangling symlink": (_dangling, ["symbolic link to", "gone.png", "does not exist", "fix the link"]),
    "NUL byte": (_nul, ["NUL byte"]),
    "path through a file": (_through_a_file, ["photo.png is a file, not a folder", "check the path"]),
    "trailing slash on a file": (_trailing_slash, ["photo.png is a file, not a folder"]),
    "name too long": (_long_name, ["too long", "shorter path"]),
    "block device": (_block_device, ["it is a block device", "not an image file"]),
    "no read permission": (_unreadable, ["permission denied", "check the file's permissions"]),
    "folder not searchable": (_unsearchable_folder, ["permission denied"]),
    "open refused": (_open_refused, ["permission denied", "check the file's permissions"]),
    "missing, newline in name": (_missing_with_newline, ["content image not found", "two\\x0alines\\x1b[31m.png"]),
}


@pytest.mark.parametrize("case", NOT_FILES)
def test_paths_that_are_not_image_files(case, tmp_path, monkeypatch):
    make, words = NOT_FILES[case]
    assert_refused(make(tmp_path, monkeypatch), words)


def test_the_path_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert refusal(imageio.read_image, "./sub/../absent.png") == "content image not found: ./sub/../absent.png"
    assert refusal(imageio.probe_size, "sub/").startswith("cannot read content image sub/: it is a directory")


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused(tmp_path, monkeypatch):
    """The descriptor is checked after opening: a FIFO put in place of the file is refused, not read."""
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.png")
    os.mkfifo(tmp_path / "pipe")
    real_open, opened = os.open, []

    def swapped(path, flags, *args, **kwargs):  # what a swap between the check and the open would give
        if os.fspath(path) != str(tmp_path / "photo.png"):
            return real_open(path, flags, *args, **kwargs)
        opened.append(flags)
        assert flags & os.O_NONBLOCK  # else opening the FIFO would wait for a writer
        return real_open(tmp_path / "pipe", flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swapped)
    assert_refused(tmp_path / "photo.png", ["it is a FIFO (named pipe), not an image file"])
    assert len(opened) == 2  # read_image and probe_size


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_descriptor_path_of_a_regular_file_is_read(tmp_path):
    Image.new("RGB", (5, 3), (255, 0, 0)).save(tmp_path / "red.png")
    with open(tmp_path / "red.png", "rb") as stream:
        loaded = imageio.read_image(f"/proc/self/fd/{stream.fileno()}")
    assert loaded.native_size == (5, 3) and float(loaded.rgb[0].min()) == 1.0


def test_links_to_images_are_followed(tmp_path):
    Image.new("RGB", (5, 3)).save(tmp_path / "real.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    assert imageio.probe_size(tmp_path / "link.png") == (5, 3)
    assert imageio.read_image(tmp_path / "link.png").rgb.shape == (3, 3, 5)


def test_decoders_get_the_open_file_never_the_path(tmp_path, monkeypatch):
    Image.new("RGB", (5, 3)).save(tmp_path / "a.png")
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(picture(3, 5, dtype=np.uint16)))
    tifffile.imwrite(tmp_path / "a.tif", picture(3, 5, dtype=np.uint16), photometric="rgb")
    given = []
    real_open, real_tiff, real_png = Image.open, tifffile.TiffFile, imagecodecs.png_decode

    def spy(real):
        def call(source, *args, **kwargs):
            given.append(source)
            return real(source, *args, **kwargs)
        return call

    monkeypatch.setattr(Image, "open", spy(real_open))
    monkeypatch.setattr(tifffile, "TiffFile", spy(real_tiff))
    monkeypatch.setattr(imagecodecs, "png_decode", spy(real_png))
    for name in ("a.png", "deep.png", "a.tif"):
        imageio.probe_size(tmp_path / name)
        imageio.read_image(tmp_path / name)
    assert given and all(isinstance(source, (bytes, io.BufferedReader)) for source in given), given
    streams = [source for source in given if not isinstance(source, bytes)]
    assert all(source.closed for source in streams)  # and closed after use


# --- paths that could block: read in a child process with a timeout ------------------

CHILD = """
import json, sys
from largestyle.io import read as imageio
from largestyle.core.errors import LargestyleError
for case, path in json.loads(sys.argv[1]).items():
    for call in (imageio.probe_size, imageio.read_image):
        try:
            call(path, "content")
            result = "read"
        except LargestyleError as exc:
            result = str(exc)
        print(json.dumps([case, call.__name__, result]), flush=True)
"""

SPECIAL = {
    "FIFO": (lambda tmp: str(tmp / "pipe"), ["it is a FIFO (named pipe), not an image file"]),
    "/dev/null": (lambda tmp: "/dev/null", ["it is a character device", "not an image file"]),
    "/dev/zero": (lambda tmp: "/dev/zero", ["it is a character device", "not an image file"]),
    "/dev/stdin on a pipe": (lambda tmp: "/dev/stdin", ["it is standard input (a pipe), not an image file",
                                                        "save the image to a file"]),
    "/dev/fd/0 on a pipe": (lambda tmp: "/dev/fd/0", ["it is standard input (a pipe)"]),
}


@pytest.fixture(scope="module")
def special_reads(tmp_path_factory):
    """Each special path read by probe_size and read_image in one child whose stdin is a pipe."""
    if not hasattr(os, "mkfifo") or not os.path.exists("/dev/null"):
        pytest.skip("needs FIFOs and /dev")
    tmp = tmp_path_factory.mktemp("special")
    os.mkfifo(tmp / "pipe")
    paths = {case: make(tmp) for case, (make, _) in SPECIAL.items()}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], stdin=subprocess.PIPE,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    results = {}
    for line in done.stdout.splitlines():
        case, call, result = json.loads(line)
        results[case, call] = result
    return paths, results


@pytest.mark.parametrize("call", ["probe_size", "read_image"])
@pytest.mark.parametrize("case", SPECIAL)
def test_fifos_devices_and_standard_input_are_refused_without_blocking(special_reads, case, call):
    paths, results = special_reads
    message = results[case, call]
    assert message.startswith(f"cannot read content image {paths[case]}: "), message
    assert "\n" not in message
    for word in SPECIAL[case][1]:
        assert word in message, message


def test_render_of_a_fifo_exits_2_with_one_line(tmp_path):
    os.mkfifo(tmp_path / "content.png")
    Image.fromarray(picture(16, 16)).save(tmp_path / "style.png")
    env = {**os.environ, "LARGESTYLE_NO_FETCH": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "largestyle", "render", "content.png", "style.png", "-o", "out.png",
         "--weights", "random", "--target-size", "32", "--iterations", "1"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "largestyle: error: cannot read content image content.png: it is a FIFO (named pipe), not an image file; "
        "give the path of an image file"]
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.job" / "output.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) in ([], ["out.job"])


# --- files that hold less than their header promises -----------------------------------

def _data_start(fmt: str, data: bytes) -> int:
    """Where the pixel data starts, so a cut just after it leaves a whole header."""
    if fmt.startswith("png"):
        return data.index(b"IDAT") + 4
    if fmt.startswith("jpeg"):
        sos = data.index(b"\xff\xda")
        return sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]
    if fmt.startswith("tif"):
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            return min(tiff.pages.first.dataoffsets)
    if fmt == "bmp":
        return struct.unpack("<I", data[10:14])[0]
    if fmt == "gif":
        return _gif_image(data) + 11
    if fmt.startswith("webp"):
        return 30
    raise AssertionError(fmt)


TILED = np.pad(picture(24, 32), ((0, 8), (0, 0), (0, 0)))  # 32 x 32: whole 16 x 16 tiles
FORMATS = {
    "png8": lambda: encoded("PNG", picture()),
    "png8-interlaced": lambda: _interlaced_png(),
    "png16": lambda: imagecodecs.png_encode(picture(dtype=np.uint16)),
    "jpeg": lambda: encoded("JPEG", picture(), quality=90),
    "jpeg-progressive": lambda: encoded("JPEG", picture(), quality=90, progressive=True),
    "tif8": lambda: tiff_bytes(picture(), photometric="rgb"),
    "tif16-strips": lambda: tiff_bytes(picture(dtype=np.uint16), photometric="rgb", rowsperstrip=4),
    "tif16-deflate": lambda: tiff_bytes(picture(dtype=np.uint16), photometric="rgb", compression="zlib",
                                        rowsperstrip=8),
    "tif8-tiles": lambda: tiff_bytes(TILED, photometric="rgb", tile=(16, 16)),
    "tif8-tiles-lzw": lambda: tiff_bytes(TILED, photometric="rgb", tile=(16, 16), compression="lzw"),
    "tif-float32": lambda: tiff_bytes(picture().astype(np.float32) / 255, photometric="rgb"),
    "tif-jpeg (Pillow)": lambda: tiff_bytes(picture(), photometric="rgb", compression="jpeg"),
    "tif-1bit (Pillow)": lambda: tiff_bytes(picture()[..., 0] > 128, photometric="minisblack"),
    "bmp": lambda: encoded("BMP", picture()),
    "webp": lambda: encoded("WEBP", picture(), quality=90),
    "webp-lossless": lambda: encoded("WEBP", picture(), lossless=True),
    "gif": lambda: encoded("GIF", picture()),
}


def _interlaced_png() -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG (Pillow writes none)."""
    pixels = picture()
    height, width = pixels.shape[:2]
    raw = b""
    for x0, y0, dx, dy in truncation.ADAM7:
        part = pixels[y0::dy, x0::dx]
        if part.size:
            raw += b"".join(b"\0" + row.tobytes() for row in part)
    return _png(width, height, 8, 2, zlib.compress(raw), interlace=1)


def _png(width, height, depth, colour_type, idat: bytes, interlace=0) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


CUTS = {
    "just after the header": lambda fmt, data: _data_start(fmt, data) + 6,
    "in the middle": lambda fmt, data: len(data) // 2,
    "a few bytes short": lambda fmt, data: len(data) - 5,
    "one byte short": lambda fmt, data: len(data) - 1,
}


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_are_refused(fmt, cut, tmp_path, capfd, recwarn):
    data = FORMATS[fmt]()
    whole = tmp_path / "whole"
    whole.write_bytes(data)
    size = imageio.read_image(whole).native_size  # the uncut file reads
    path = tmp_path / f"cut-{fmt.split()[0]}"
    path.write_bytes(data[:CUTS[cut](fmt, data)])
    message = refusal(imageio.read_image, path)
    assert message.startswith(f"cannot read content image {path}: ") and "truncated" in message, message
    assert message.endswith("re-export or re-download it"), message
    try:  # the header alone may be whole: then the size is right
        assert imageio.probe_size(path) == size
    except LargestyleError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    assert capfd.readouterr().err == "" and not recwarn.list  # nothing else printed or warned on the way
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def _short_png(depth) -> bytes:
    """A PNG whose IHDR says 24 rows and whose (whole, valid) image data holds 12."""
    pixels = picture(12, 32, dtype=np.uint16 if depth == 16 else np.uint8).astype(">u2" if depth == 16 else "u1")
    raw = b"".join(b"\0" + row.tobytes() for row in pixels)
    return _png(32, 24, depth, 2, zlib.compress(raw))


def _tiff_with(tag: str, index: int, value: int, data: bytes | None = None) -> bytes:
    """An 8-bit RGB TIFF in 6 strips with one entry of its strip offsets or byte counts changed."""
    data = data or tiff_bytes(picture(), photometric="rgb", rowsperstrip=4)
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        found = tiff.pages.first.tags[tag]
        code = {3: "<H", 4: "<I", 16: "<Q"}[int(found.dtype)]
        at = found.valueoffset + struct.calcsize(code) * index
    changed = bytearray(data)
    changed[at:at + struct.calcsize(code)] = struct.pack(code, value)
    return bytes(changed)


def _tall_gif() -> bytes:
    """A GIF whose screen and image descriptor say 48 rows and whose data holds 24."""
    data = bytearray(encoded("GIF", picture()))
    data[8:10] = struct.pack("<H", 48)
    image = _gif_image(bytes(data))
    data[image + 7:image + 9] = struct.pack("<H", 48)
    return bytes(data)


def _gif_image(data: bytes) -> int:
    """Where the first image descriptor of a GIF starts."""
    position = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[position] == 0x21:  # extensions: introducer, label, sub-blocks
        position += 2
        while data[position]:
            position += 1 + data[position]
        position += 1
    assert data[position] == 0x2C
    return position


def _tall_jpeg(progressive) -> bytes:
    """A JPEG whose frame header says 48 rows and whose (whole) scan data holds 24."""
    data = bytearray(encoded("JPEG", picture(), progressive=progressive))
    frame = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[frame + 5:frame + 7] = struct.pack(">H", 48)
    return bytes(data)


SHORT_DATA = {
    "PNG 8-bit, rows missing": (lambda: _short_png(8), ["holds 12 of the 24 rows its header promises"]),
    "PNG 16-bit, rows missing": (lambda: _short_png(16), ["corrupt or truncated"]),
    "PNG without IEND": (lambda: encoded("PNG", picture())[:-12], ["without its IEND chunk"]),
    "TIFF strip missing": (lambda: _tiff_with("StripByteCounts", 5, 0, _tiff_with("StripOffsets", 5, 0)),
                           ["1 of its 6 strips holds no data"]),
    "TIFF strip too short": (lambda: _tiff_with("StripByteCounts", 2, 100),
                             ["1 of its 6 strips holds fewer bytes than its pixels need"]),
    "TIFF strip past the end": (lambda: _tiff_with("StripOffsets", 5, 60000), ["runs past the end of the file"]),
    "TIFF tile missing": (lambda: _tiff_with("TileByteCounts", 3, 0, tiff_bytes(TILED, photometric="rgb",
                                                                                tile=(16, 16))),
                          ["1 of its 4 tiles holds no data"]),
    "GIF taller than its data": (_tall_gif, ["corrupt or truncated"]),
    "GIF without trailer": (lambda: encoded("GIF", picture())[:-1], ["without the GIF trailer"]),
    "WebP shorter than its RIFF size": (lambda: encoded("WEBP", picture())[:-3],
                                        ["it holds", "bytes its header gives"]),
    "JPEG taller than its data": pytest.param(
        lambda: _tall_jpeg(False), ["corrupt or truncated"],
        marks=pytest.mark.xfail(strict=True, reason="libjpeg fills the missing rows with grey, and neither "
                                                    "Pillow nor imagecodecs reports it")),
    "progressive JPEG taller than its data": pytest.param(
        lambda: _tall_jpeg(True), ["corrupt or truncated"],
        marks=pytest.mark.xfail(strict=True, reason="as above")),
}


@pytest.mark.parametrize("make, words", SHORT_DATA.values(), ids=SHORT_DATA.keys())
def test_data_shorter_than_the_header_promises_is_refused(make, words, tmp_path, capfd, recwarn):
    path = tmp_path / "short"
    path.write_bytes(make())
    message = refusal(imageio.read_image, path)
    assert message.startswith(f"cannot read content image {path}: "), message
    assert "truncated" in message and message.endswith("re-export or re-download it"), message
    for word in words:
        assert word in message, message
    assert capfd.readouterr().err == "" and not recwarn.list


# --- floating-point and unusual sample formats --------------------------------------

FLOATS = np.random.default_rng(5).random((4, 6, 3))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_tiffs_in_range_are_read_as_they_are(tmp_path, dtype):
    pixels = FLOATS.astype(dtype)
    tifffile.imwrite(tmp_path / "f.tif", pixels, photometric="rgb")
    loaded = imageio.read_image(tmp_path / "f.tif")
    expected = pixels.astype(np.float32).transpose(2, 0, 1)
    assert np.array_equal(loaded.rgb.numpy(), expected) and loaded.alpha is None
    tifffile.imwrite(tmp_path / "grey.tif", pixels[..., 0], photometric="minisblack")
    assert np.array_equal(imageio.read_image(tmp_path / "grey.tif").rgb[1].numpy(), expected[0])


def test_floats_a_rounding_error_outside_are_clipped(tmp_path):
    pixels = FLOATS.astype(np.float32)
    pixels[0, 0], pixels[0, 1] = 1 + modes.FLOAT_TOLERANCE / 2, -modes.FLOAT_TOLERANCE / 2
    tifffile.imwrite(tmp_path / "f.tif", pixels, photometric="rgb")
    for source in (tmp_path / "f.tif", pixels):
        rgb = imageio.read_image(source).rgb
        assert float(rgb[:, 0, 0].min()) == 1.0 and float(rgb[:, 0, 1].max()) == 0.0
    assert pixels[0, 0, 0] > 1  # the caller's array is left alone


def test_float_alpha_and_premultiplied_float(tmp_path):
    alpha = np.full((4, 6, 1), 0.5, np.float32)
    tifffile.imwrite(tmp_path / "a.tif", np.concatenate([FLOATS * 0.5, alpha], -1).astype(np.float32),
                     photometric="rgb", extrasamples=["assocalpha"])
    loaded = imageio.read_image(tmp_path / "a.tif")
    assert np.allclose(loaded.rgb.numpy(), FLOATS.transpose(2, 0, 1), atol=1e-6)
    assert np.allclose(loaded.alpha.numpy(), 0.5)


def _float_tiff(change):
    pixels = FLOATS.astype(np.float32)
    change(pixels)
    return tiff_bytes(pixels, photometric="rgb")


def _with(index, value):
    def change(pixels):
        pixels[index] = value
    return change


SAMPLE_FORMATS = {
    "float above 1": (lambda: _float_tiff(_with((1, 1, 1), 2.5)),
                      ["float values from", "to 2.5", "float images must hold values from 0 to 1"]),
    "float below 0": (lambda: _float_tiff(_with((1, 1, 1), -0.25)), ["from -0.25 to", "from 0 to 1"]),
    "float NaN": (lambda: _float_tiff(_with((2, 3, 0), np.nan)), ["NaN (not-a-number) values"]),
    "float +infinity": (lambda: _float_tiff(_with((0, 0, 2), np.inf)), ["infinite values"]),
    "float -infinity": (lambda: _float_tiff(_with((0, 0, 2), -np.inf)), ["infinite values"]),
    "float alpha above 1": (lambda: tiff_bytes(np.concatenate([FLOATS, FLOATS[..., :1] * 3], -1).astype(np.float32),
                                               photometric="rgb", extrasamples=["unassalpha"]),
                            ["float values from"]),
    "int8": (lambda: tiff_bytes(np.zeros((4, 6, 3), np.int8), photometric="rgb"),
             ["it has 8-bit signed integer samples; convert it to 8 or 16 bits per channel"]),
    "int16": (lambda: tiff_bytes(np.zeros((4, 6, 3), np.int16), photometric="rgb"),
              ["it has 16-bit signed integer samples; convert it to 8 or 16 bits per channel"]),
    "int16 grey": (lambda: tiff_bytes(np.zeros((4, 6), np.int16)), ["16-bit signed integer samples"]),
    "int32": (lambda: tiff_bytes(np.zeros((4, 6, 3), np.int32), photometric="rgb"),
              ["it has 32-bit signed integer samples; convert it to 8 or 16 bits per channel"]),
    "uint32": (lambda: tiff_bytes(np.zeros((4, 6), np.uint32)), ["it has 32-bit unsigned integer samples"]),
    "uint64": (lambda: tiff_bytes(np.zeros((4, 6), np.uint64)), ["it has 64-bit unsigned integer samples"]),
    "complex": (lambda: tiff_bytes(np.zeros((4, 6), np.complex64)), ["it has complex-valued samples"]),
    "5 channels": (lambda: tiff_bytes(np.zeros((4, 6, 5), np.uint8), photometric="rgb", planarconfig="contig",
                                      extrasamples=(2, 0)), ["it has 5 channels per pixel", "at most 4 channels"]),
    "CMYK with alpha": (lambda: tiff_bytes(np.zeros((4, 6, 5), np.uint16), photometric="separated",
                                           planarconfig="contig", extrasamples=(2,)), ["5 channels"]),
}
NEVER_SAID = ("header is damaged", "corrupt", "truncated")


@pytest.mark.parametrize("case", SAMPLE_FORMATS)
def test_unusual_sample_formats_are_refused_for_the_real_reason(case, tmp_path):
    make, words = SAMPLE_FORMATS[case]
    path = tmp_path / "odd.tif"
    path.write_bytes(make())
    header_only = not case.startswith("float")  # float values are only known once decoded
    assert_refused(path, words, probe=header_only)
    message = refusal(imageio.read_image, path)
    assert not any(wrong in message for wrong in NEVER_SAID), message
    if not header_only:
        assert imageio.probe_size(path) == (6, 4)


IN_MEMORY = {
    "array above 1": (lambda: FLOATS * 2, "content image array: it has float values from"),
    "array NaN": (lambda: np.where(FLOATS > 0.9, np.nan, FLOATS), "content image array: it has NaN"),
    "array infinite": (lambda: np.where(FLOATS > 0.9, np.inf, FLOATS).astype(np.float32),
                       "content image array: it has infinite values"),
    "float16 array NaN": (lambda: np.where(FLOATS > 0.9, np.nan, FLOATS).astype(np.float16),
                          "content image array: it has NaN"),
    "RGBA array, alpha NaN": (lambda: np.concatenate([FLOATS, np.full((4, 6, 1), np.nan)], -1),
                              "content image array: it has NaN"),
    "PIL mode F above 1": (lambda: Image.fromarray((FLOATS[..., 0] * 4).astype(np.float32)),
                           "content image (a PIL image): it has float values from"),
    "PIL mode I beyond 16 bits": (lambda: Image.fromarray(np.full((4, 6), 70000, np.int32)),
                                  "content image (a PIL image): it has 32-bit integer samples from 70000 to 70000"),
    "PIL mode I negative": (lambda: Image.fromarray(np.full((4, 6), -3, np.int32)),
                            "32-bit integer samples from -3"),
}


@pytest.mark.parametrize("case", IN_MEMORY)
def test_unusable_arrays_and_pil_images_are_refused(case):
    make, words = IN_MEMORY[case]
    assert words in refusal(imageio.read_image, make())


def test_usual_in_memory_images_still_read():
    assert imageio.read_image(FLOATS).rgb.shape == (3, 4, 6)
    assert imageio.read_image(FLOATS.astype(np.float16)).rgb.dtype.is_floating_point
    grey = imageio.read_image(Image.fromarray(np.full((4, 6), 1000, np.int32)))
    assert grey.bit_depth == 16 and abs(float(grey.rgb[0, 0, 0]) - 1000 / 65535) < 1e-7
    assert float(imageio.read_image(Image.fromarray(FLOATS[..., 0].astype(np.float32))).rgb.max()) < 1


@pytest.mark.parametrize("bits, dtype", [(4, np.uint8), (12, np.uint16)])
def test_narrow_integer_tiffs_are_scaled_to_full_range(tmp_path, bits, dtype):
    top = (1 << bits) - 1
    pixels = np.array([[0, top // 2, top]], dtype)
    tifffile.imwrite(tmp_path / "n.tif", pixels, bitspersample=bits, photometric="minisblack")
    loaded = imageio.read_image(tmp_path / "n.tif")
    assert np.allclose(loaded.rgb[0, 0].numpy(), [0, (top // 2) / top, 1], atol=1 / 65535)


# --- messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("plain", "plain"),
    ("\x1b[1;31mred\x1b[0m alert", "red alert"),
    ("first line\nsecond line\nthird", "first line"),
    ("\n\n  indented\tthen more  ", "indented then more"),
    ("bell\x07 and \x1b]0;title\x07 osc", "bell and osc"),
    ("", "ValueError"),
])
def test_reason_is_short_and_clean(raw, expected):
    assert brief(ValueError(raw)) == expected


def test_reason_cuts_a_long_message_at_a_word():
    reason = brief(RuntimeError(" ".join(f"word{i}" for i in range(60))))
    assert len(reason) <= 104 and reason.endswith("...")
    assert reason[:-3].split()[-1].startswith("word") and reason[:-3] in " ".join(f"word{i}" for i in range(60))


def test_a_long_library_message_stays_short(tmp_path, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp_path / "p.png")

    def noisy(self):
        raise OSError("\x1b[31mdecoder exploded\x1b[0m " + "blah " * 200 + "\nTraceback (most recent call last)")

    monkeypatch.setattr(ImageFile.ImageFile, "load", noisy)
    message = refusal(imageio.read_image, tmp_path / "p.png")
    assert "decoder exploded blah" in message and "Traceback" not in message
    assert len(message) - len(str(tmp_path / "p.png")) < 200


def test_refused_sizes_are_the_stored_size(tmp_path):
    """A TIFF turned by its orientation tag is named by its size as stored, not as displayed."""
    pixels = picture(4, 6, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", pixels, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    assert imageio.probe_size(tmp_path / "t.tif") == (4, 6)
    for call in (imageio.probe_size, imageio.read_image):
        message = refusal(call, tmp_path / "t.tif", max_pixels=10)
        assert "it is 6x4 px" in message, message
