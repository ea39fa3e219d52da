"""Images in and out through the command line: every kind of input, print sizes, 16-bit, DPI, alpha."""

import io
import os
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from largestyle.cli.main import main

FAST = ["--iterations", "2", "--first-level-factor", "1", "--weights", "random",
        "--content-layers", "relu2_1", "--style-layers", "relu1_1,relu2_1"]
SMALL = ["--target-size", "48", *FAST]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def pixels(height=24, width=36, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


@pytest.fixture
def style(tmp_path):
    path = tmp_path / "style.png"
    Image.fromarray(pixels(48, 48, seed=1)).save(path)
    return path


def png_header_only(width, height):
    """A PNG signature and IHDR claiming width x height, then IEND: no pixel data at all."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def truncated(tmp_path, name, fmt):
    buffer = io.BytesIO()
    Image.fromarray(pixels(64, 64)).save(buffer, format=fmt)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    return path


BAD_CONTENT = {
    "missing": (lambda tmp: tmp / "absent.png", "content image not found"),
    "empty": (lambda tmp: (tmp / "empty.png").write_bytes(b"") and None or tmp / "empty.png", "empty file"),
    "truncated PNG": (lambda tmp: truncated(tmp, "cut.png", "PNG"), "corrupt or truncated"),
    "truncated JPEG": (lambda tmp: truncated(tmp, "cut.jpg", "JPEG"), "corrupt or truncated"),
    "text as .jpg": (lambda tmp: (tmp / "notes.jpg").write_text("not a picture\n") and tmp / "notes.jpg",
                     "not an image file"),
    "zero width": (lambda tmp: (tmp / "zero.png").write_bytes(png_header_only(0, 5)) and tmp / "zero.png",
                   "zero width"),
    "100000x100000 header": (lambda tmp: (tmp / "huge.png").write_bytes(png_header_only(100000, 100000))
                             and tmp / "huge.png", "--max-input-pixels"),
}


@pytest.mark.parametrize("case", BAD_CONTENT)
def test_bad_content_is_one_line_and_writes_nothing(case, tmp_path, style, capsys):
    make, message = BAD_CONTENT[case]
    content = make(tmp_path)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", content, style, "-o", out, *SMALL)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("largestyle: error: "), err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out.job" / "output.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out")] in ([], ["out.job"])


@pytest.mark.parametrize("target, message", [
    ("missing-dir/out.png", "does not exist"),
    ("out.gif", "unsupported output type"),
    ("out.webp", "unsupported output type"),
    ("out.jpg --bit-depth 16", "JPEG holds 8 bits"),
])
def test_bad_output_is_one_line(target, message, tmp_path, style, capsys):
    content = tmp_path / "content.png"
    Image.fromarray(pixels()).save(content)
    name, *extra = target.split()
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / name, *extra, *SMALL)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / name).exists()


def test_unwritable_output_directory_is_one_line(tmp_path, style, capsys, monkeypatch):
    content = tmp_path / "content.png"
    Image.fromarray(pixels()).save(content)
    real_access = os.access
    # Root may write anywhere, so the refusal the kernel would give is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode & os.W_OK else real_access(path, mode))
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "out.png", *SMALL)
    assert code == 2 and "permission denied" in err and len(err.strip().splitlines()) == 1


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


GOOD_CONTENT = {
    # name: (writer, expected output (height, width) at --target-size 48)
    "1x1": (lambda path: Image.new("RGB", (1, 1), (200, 30, 30)).save(path), (48, 48)),
    "CMYK JPEG": (lambda path: Image.fromarray(pixels(24, 36, 4), "CMYK").save(path.with_suffix(".jpg")),
                  (32, 48)),
    "16-bit PNG": (lambda path: path.write_bytes(imagecodecs.png_encode(
        (pixels().astype(np.uint16) * 257))), (32, 48)),
    "16-bit TIFF": (lambda path: tifffile.imwrite(path.with_suffix(".tif"), pixels().astype(np.uint16) * 257,
                                                  photometric="rgb"), (32, 48)),
    "palette": (lambda path: Image.fromarray(pixels()).convert("P").save(path), (32, 48)),
    "grayscale": (lambda path: Image.fromarray(pixels()[..., 0]).save(path), (32, 48)),
    "EXIF-rotated": (lambda path: Image.fromarray(pixels()).save(path.with_suffix(".jpg"), exif=_exif(6)),
                     (48, 32)),
    "alpha": (lambda path: Image.fromarray(pixels(24, 36, 4), "RGBA").save(path), (32, 48)),
}


@pytest.mark.parametrize("case", GOOD_CONTENT)
def test_every_kind_of_content_renders(case, tmp_path, style, capsys):
    write, shape = GOOD_CONTENT[case]
    write(tmp_path / "content.png")
    (content,) = tmp_path.glob("content.*")
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "render", content, style, "-o", out, *SMALL)
    assert code == 0, err
    with Image.open(out) as image:
        assert (image.height, image.width) == shape
        assert image.mode == ("RGBA" if case == "alpha" else "RGB")


def test_alpha_is_reapplied_at_the_output_size_or_composited(tmp_path, style, capsys):
    rgba = pixels(24, 36, 4)
    rgba[..., 3] = 0
    rgba[:, 18:, 3] = 255  # the right half opaque
    content = tmp_path / "content.png"
    Image.fromarray(rgba, "RGBA").save(content)
    assert run_cli(capsys, "render", content, style, "-o", tmp_path / "kept.png", *SMALL)[0] == 0
    alpha = np.asarray(Image.open(tmp_path / "kept.png"))[..., 3]
    assert alpha.shape == (32, 48) and (alpha[:, :20] <= 5).all() and (alpha[:, 28:] >= 250).all()
    assert run_cli(capsys, "render", content, style, "-o", tmp_path / "flat.png", "--alpha", "composite",
                   *SMALL)[0] == 0
    assert Image.open(tmp_path / "flat.png").mode == "RGB"


def test_print_size_sets_pixels_from_dpi_and_prints_them(tmp_path, style, capsys):
    content = tmp_path / "content.png"
    Image.fromarray(pixels(24, 36)).save(content)  # 3:2 landscape
    out = tmp_path / "print.tif"
    # A 1x2 in print is turned to the content's orientation: 2 in wide, 1 in high, 64 x 32 px at 32 dpi.
    code, err = run_cli(capsys, "render", content, style, "-o", out, "--print-size", "1x2in", "--dpi", "32",
                        "--print-fit", "crop", *FAST)
    assert code == 0, err
    assert "print 1x2in (crop): 64 x 32 px = 2 x 1 in (5.08 x 2.54 cm) at 32 dpi" in err
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.shape == (32, 64, 3)
        assert page.tags["XResolution"].value == (32, 1) and page.tags["ResolutionUnit"].value == 2
        assert 34675 in page.tags
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "inside.png",
                        "--print-size", "5.08x2.54cm", "--dpi", "32", *FAST)
    assert code == 0 and "print 5.08x2.54cm (inside): 48 x 32 px" in err
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "x.png", "--print-size", "1x2in",
                        "--target-size", "64", *FAST)
    assert code == 2 and "drop --target-size" in err
    code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / "x.png", "--print-size", "1x2ft",
                        *FAST)
    assert code == 2 and "24x36in" in err


def test_sixteen_bit_outputs_carry_dpi_and_srgb(tmp_path, style, capsys):
    content = tmp_path / "content.png"
    Image.fromarray(pixels()).save(content)
    for name in ("out.tif", "out.png"):
        code, err = run_cli(capsys, "render", content, style, "-o", tmp_path / name, "--bit-depth", "16",
                            "--dpi", "240", *SMALL)
        assert code == 0, err
    assert tifffile.imread(tmp_path / "out.tif").dtype == np.uint16
    decoded = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    assert decoded.dtype == np.uint16 and decoded.shape == (32, 48, 3)
    assert len(np.unique(decoded)) > 256  # more levels than 8 bits hold
    with Image.open(tmp_path / "out.png") as image:
        assert round(image.info["dpi"][0]) == 240
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_finished_job_rewrites_its_output_for_new_output_settings(tmp_path, style, capsys):
    content = tmp_path / "content.png"
    Image.fromarray(pixels()).save(content)
    out = tmp_path / "out.png"
    assert run_cli(capsys, "render", content, style, "-o", out, *SMALL)[0] == 0
    first = np.asarray(Image.open(out))
    code, err = run_cli(capsys, "render", content, style, "-o", out, "--dpi", "150", *SMALL)
    assert code == 0 and "writing the output again with --dpi (was 300.0, now 150.0)" in err
    assert "level 1/1 done" not in err  # nothing rendered again
    with Image.open(out) as image:
        assert round(image.info["dpi"][0]) == 150 and np.array_equal(np.asarray(image), first)


def test_style_needs_and_loading(tmp_path, capsys):
    content = tmp_path / "content.png"
    Image.fromarray(pixels()).save(content)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    Image.fromarray(pixels(20, 20, seed=2)).save(small)
    Image.fromarray(pixels(400, 300, seed=3)).save(large)
    code, err = run_cli(capsys, "render", content, small, "-o", tmp_path / "a.png", *SMALL)
    assert code == 0 and "needs it 48 px on the long side" in err and "blurry" in err
    code, err = run_cli(capsys, "render", content, large, "-o", tmp_path / "b.png", *SMALL)
    assert code == 0 and "downscaled on load from 300x400 to 36x48" in err and "blurry" not in err
    code, err = run_cli(capsys, "render", content, large, "-o", tmp_path / "c.png", "--max-input-pixels", "1000",
                        *SMALL)
    assert code == 2 and "--max-input-pixels" in err
