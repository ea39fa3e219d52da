import email.message
import hashlib
import os
import urllib.error
import urllib.request

import pytest

from largestyle.core import atomic

from largestyle.network import download as fetch
from largestyle.core.errors import LargestyleError
from largestyle.network.download import FetchError, download, sha256_matches

PAYLOAD = bytes(range(256)) * 1000  # 256 000 bytes, several chunks at chunk=65536
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source" / "vgg19-test.pth"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


class FakeResponse:
    """A response whose body stops after ``parts``, then raises ``error`` (or ends, if None)."""

    def __init__(self, parts, length, error=None):
        self.parts = list(parts)
        self.error = error
        self.headers = email.message.Message()
        self.headers["Content-Length"] = str(length)
        self.closed = False

    def getheader(self, name, default=None):
        return self.headers.get(name, default)

    def read(self, size=-1):
        if self.parts:
            return self.parts.pop(0)
        if self.error is not None:
            raise self.error
        return b""

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fake_urlopen(monkeypatch, response):
    calls = []

    def urlopen(url, timeout=None):
        calls.append((url, timeout))
        return response

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


@pytest.mark.parametrize("sha256", [None, DIGEST, DIGEST[:8], DIGEST.upper()])
def test_download_with_good_hash(source, out, sha256):
    destination = out / "vgg19.pth"
    result = download(source.as_uri(), destination, sha256=sha256, progress=False, chunk=65536)
    assert result == destination
    assert destination.read_bytes() == PAYLOAD
    assert os.listdir(out) == ["vgg19.pth"]
    assert leftovers(out) == []


def test_download_creates_missing_folders(source, tmp_path):
    destination = tmp_path / "a" / "b" / "vgg19.pth"
    download(source.as_uri(), destination, sha256=DIGEST[:8], progress=False)
    assert destination.read_bytes() == PAYLOAD
    assert os.listdir(destination.parent) == ["vgg19.pth"]


def test_downloaded_file_has_a_normal_mode(source, out):
    destination = download(source.as_uri(), out / "w.pth", progress=False)
    umask = os.umask(0)
    os.umask(umask)
    assert destination.stat().st_mode & 0o777 == 0o666 & ~umask


def test_bad_hash_saves_nothing(source, out):
    destination = out / "vgg19-deadbeef.pth"
    with pytest.raises(FetchError, match="sha256") as caught:
        download(source.as_uri(), destination, sha256="deadbeef", progress=False)
    message = str(caught.value)
    assert DIGEST[:16] in message and "deadbeef" in message and "nothing was saved" in message
    assert isinstance(caught.value, LargestyleError)
    assert not destination.exists()
    assert os.listdir(out) == []


def test_invalid_expected_hash_is_rejected_before_downloading(source, out, monkeypatch):
    calls = fake_urlopen(monkeypatch, FakeResponse([PAYLOAD], len(PAYLOAD)))
    for bad in ("", "xyz12345", "a" * 65):
        with pytest.raises(FetchError, match="invalid sha256"):
            download(source.as_uri(), out / "w.pth", sha256=bad, progress=False)
    assert calls == [] and os.listdir(out) == []


def test_interrupted_transfer_saves_nothing_and_a_rerun_succeeds(source, out, monkeypatch):
    destination = out / "vgg19.pth"
    response = FakeResponse([PAYLOAD[:1000], PAYLOAD[1000:5000]], len(PAYLOAD),
                            ConnectionResetError(104, "Connection reset by peer"))
    calls = fake_urlopen(monkeypatch, response)
    with pytest.raises(FetchError, match="interrupted") as caught:
        download("https://example.invalid/vgg19.pth", destination, sha256=DIGEST, progress=False, timeout=7)
    assert "5000 bytes" in str(caught.value) and "nothing was saved" in str(caught.value)
    assert calls == [("https://example.invalid/vgg19.pth", 7)]
    assert response.closed
    assert os.listdir(out) == []

    monkeypatch.undo()
    download(source.as_uri(), destination, sha256=DIGEST, progress=False)
    assert destination.read_bytes() == PAYLOAD
    assert os.listdir(out) == ["vgg19.pth"]


def test_short_read_is_an_interruption(out, monkeypatch):
    fake_urlopen(monkeypatch, FakeResponse([PAYLOAD[:1000]], len(PAYLOAD)))
    with pytest.raises(FetchError, match="interrupted"):
        download("https://example.invalid/w.pth", out / "w.pth", progress=False)
    assert os.listdir(out) == []


def test_without_content_length_the_whole_body_is_taken(out, monkeypatch):
    response = FakeResponse([PAYLOAD[:1000], PAYLOAD[1000:]], 0)
    del response.headers["Content-Length"]
    fake_urlopen(monkeypatch, response)
    destination = download("https://example.invalid/w.pth", out / "w.pth", sha256=DIGEST, progress=False)
    assert destination.read_bytes() == PAYLOAD


def test_keyboard_interrupt_removes_the_temporary(out, monkeypatch):
    fake_urlopen(monkeypatch, FakeResponse([PAYLOAD[:1000]], len(PAYLOAD), KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        download("https://example.invalid/w.pth", out / "w.pth", progress=False)
    assert os.listdir(out) == []


@pytest.mark.parametrize("failure", ["bad hash", "interrupted", "missing source"])
def test_existing_destination_is_untouched_on_failure(source, out, monkeypatch, failure):
    destination = out / "vgg19.pth"
    destination.write_bytes(b"previous contents")
    url = source.as_uri()
    if failure == "interrupted":
        fake_urlopen(monkeypatch, FakeResponse([PAYLOAD[:10]], len(PAYLOAD), ConnectionResetError()))
    elif failure == "missing source":
        url = (source.parent / "nonexistent.pth").as_uri()
    with pytest.raises(FetchError):
        download(url, destination, sha256=None if failure != "bad hash" else "00000000", progress=False)
    assert destination.read_bytes() == b"previous contents"
    assert os.listdir(out) == ["vgg19.pth"]


def test_missing_source_says_where_to_put_the_file(tmp_path, out):
    url = (tmp_path / "nonexistent" / "vgg19-dcbb9e9d.pth").as_uri()
    destination = out / "vgg19-dcbb9e9d.pth"
    with pytest.raises(FetchError) as caught:
        download(url, destination, progress=False)
    message = str(caught.value)
    assert f"cannot download {url}" in message
    assert f"put it at {destination}" in message
    assert "another machine" in message
    assert os.listdir(out) == []


@pytest.mark.parametrize("error, reason", [
    (urllib.error.URLError(OSError(-3, "Temporary failure in name resolution")), "name resolution"),
    (TimeoutError("timed out"), "timed out"),
    (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
])
def test_offline_errors(out, monkeypatch, error, reason):
    def urlopen(url, timeout=None):
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(FetchError, match=reason) as caught:
        download("https://example.invalid/w.pth", out / "w.pth", progress=False)
    assert "put it at" in str(caught.value)
    assert os.listdir(out) == []


def test_http_error_says_the_status(out, monkeypatch):
    def urlopen(url, timeout=None):
        raise urllib.error.HTTPError(url, 404, "Not Found", email.message.Message(), None)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(FetchError, match="HTTP 404 Not Found"):
        download("https://example.invalid/w.pth", out / "w.pth", progress=False)
    assert os.listdir(out) == []


def test_destination_under_a_regular_file_cannot_be_written(source, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    calls = fake_urlopen(monkeypatch, FakeResponse([PAYLOAD], len(PAYLOAD)))
    for destination in (blocker / "w.pth", blocker / "deeper" / "w.pth"):
        with pytest.raises(FetchError, match="cannot write") as caught:
            download(source.as_uri(), destination, progress=False)
        assert "--dir" in str(caught.value)
    assert calls == []  # fails before connecting
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_cannot_be_written(source, out):
    out.chmod(0o500)
    try:
        with pytest.raises(FetchError, match="cannot write .*permission denied; choose another folder with --dir"):
            download(source.as_uri(), out / "w.pth", progress=False)
    finally:
        out.chmod(0o700)
    assert os.listdir(out) == []


def test_permission_denied_creating_the_temporary(source, out, monkeypatch):
    def mkstemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    with pytest.raises(FetchError) as caught:
        download(source.as_uri(), out / "w.pth", progress=False)
    assert str(caught.value) == f"cannot write {out / 'w.pth'}: permission denied; choose another folder with --dir"


def test_destination_that_is_a_folder_cannot_be_written(source, out):
    (out / "w.pth").mkdir()
    with pytest.raises(FetchError, match="cannot write .*it is a directory"):
        download(source.as_uri(), out / "w.pth", progress=False)
    assert os.listdir(out) == ["w.pth"]


def test_sha256_matches():
    assert sha256_matches(DIGEST, DIGEST)
    assert sha256_matches(DIGEST, DIGEST[:8])
    assert sha256_matches(DIGEST.upper(), DIGEST[:10])
    assert sha256_matches(DIGEST, DIGEST[:8].upper())
    assert not sha256_matches(DIGEST, "0" * 8 if not DIGEST.startswith("0" * 8) else "1" * 8)
    assert not sha256_matches(DIGEST, DIGEST[1:9])
    assert not sha256_matches(DIGEST, "")
    assert not sha256_matches(DIGEST, DIGEST + "0")
    assert not sha256_matches(DIGEST, "zz")


def test_progress_bar_goes_to_stderr(source, out, capsys):
    download(source.as_uri(), out / "w.pth", progress=True, chunk=65536)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "100%" in captured.err and "w.pth" in captured.err


def test_no_progress_bar_when_disabled(source, out, capsys):
    download(source.as_uri(), out / "w.pth", progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_module_exports():
    assert issubclass(fetch.FetchError, LargestyleError)
