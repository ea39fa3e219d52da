"""Downloading a file (such as VGG-19 weights): streamed, sha256-checked, written atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..core.atomic import atomic_write, remove_stale_temporaries, storage_problem
from ..core.errors import LargestyleError, brief, one_line
from ..core.faults import kill_point

_HEX = re.compile(r"[0-9a-fA-F]+")
PART_SUFFIX = ".part"
ANOTHER_FOLDER = "choose another folder with --dir"


class FetchError(LargestyleError):
    """A download that failed; nothing was saved at the destination."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def write_problem(path: Path, exc: OSError, elsewhere: str = ANOTHER_FOLDER) -> str:
    """One line for an OSError while writing ``path``: what is wrong, then what to do.

    ``elsewhere`` is the way to write somewhere else ("choose another folder with --dir").
    """
    shown, path = os.fspath(path), Path(path)
    if isinstance(exc, PermissionError):
        reason = "permission denied"
    elif isinstance(exc, (FileExistsError, NotADirectoryError)) and not _is_dir(path.parent):
        reason = f"{path.parent} is not a folder"
    elif isinstance(exc, IsADirectoryError) or _is_dir(path):
        reason = "it is a directory"
    else:
        reason = brief(storage_problem(exc), 200)
    advice = f"free some space or {elsewhere}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else elsewhere
    return one_line(f"cannot write {shown}: {reason}; {advice}")


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, a loop of links, ...
        return False


def sha256_matches(actual: str, expected: str) -> bool:
    """Whether ``actual`` (a full hex digest) starts with ``expected`` (full or a prefix), ignoring case."""
    expected = expected.strip().lower()
    return bool(expected) and len(expected) <= 64 and bool(_HEX.fullmatch(expected)) \
        and actual.strip().lower().startswith(expected)


def download(url: str, destination: Path, sha256: str | None = None, progress: bool = True,
             timeout: float = 30.0, chunk: int = 1 << 20) -> Path:
    """Fetch ``url`` to ``destination`` and return its path.

    Streams to a temporary file beside the destination, checks the sha256 (full digest
    or prefix) when given, then renames into place. On any failure, interruption
    included, no partial or temporary file remains and an existing destination is untouched.
    Temporary files of this destination left by a killed download (and held by no live
    process) are removed first.
    """
    destination = Path(destination)
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not sha256 or len(sha256) > 64 or not _HEX.fullmatch(sha256):
            raise FetchError(f"invalid sha256 {sha256!r} for {destination.name}: expected up to 64 hex digits")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(destination, PART_SUFFIX)
        # The temporary file exists before connecting: an unwritable folder fails without a download.
        with atomic_write(destination, suffix=PART_SUFFIX) as stream:
            with contextlib.closing(_connect(url, destination, timeout)) as response:
                actual = _stream(response, stream, url, destination, progress, chunk).hexdigest()
            if sha256 is not None and not sha256_matches(actual, sha256):
                raise FetchError(
                    f"downloaded {url} but its sha256 is {actual[:16]}…, expected {sha256}…: "
                    "the file is corrupt or not the one expected; nothing was saved")
    except OSError as exc:
        raise FetchError(write_problem(destination, exc)) from None
    return destination


def _connect(url: str, destination: Path, timeout: float):
    by_hand = f"Without internet access, download it on another machine and put it at {destination}"
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.close()
        raise FetchError(f"cannot download {url}: the server answered HTTP {exc.code} {brief(exc.reason, 200)}. "
                         f"{by_hand}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {_reason(exc.reason)}. {by_hand}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad status lines
        raise FetchError(f"cannot download {url}: {_reason(exc)}. {by_hand}") from None


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return brief(reason.strerror, 200)
    return brief(reason, 200) or type(reason).__name__


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        length = int(value) if value is not None else None
    except ValueError:
        return None
    return length if length is not None and length >= 0 else None


def _stream(response, stream, url: str, destination: Path, progress: bool, chunk: int):
    """Copy the response body into ``stream``; return its sha256 hash object."""
    from tqdm import tqdm

    expected = _content_length(response)
    digest = hashlib.sha256()
    received = 0
    interrupted = (f"download of {url} was interrupted after {{received}} bytes ({{why}}); "
                   "nothing was saved: run it again to start over")
    with tqdm(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name,
            disable=not progress, file=sys.stderr, leave=True) as bar:
        while True:
            try:
                block = response.read(chunk)
            except (OSError, http.client.HTTPException) as exc:
                raise FetchError(interrupted.format(received=received, why=_reason(exc))) from None
            if not block:
                break
            kill_point("download-write")
            stream.write(block)
            digest.update(block)
            received += len(block)
            bar.update(len(block))
        if expected is not None and received < expected:
            raise FetchError(interrupted.format(received=received, why=f"expected {expected} bytes"))
    return digest
