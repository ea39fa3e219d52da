"""sha256 of a file read in chunks: inputs, weights and outputs are identified by it."""

from __future__ import annotations

import hashlib

CHUNK = 1 << 20


def stream_sha256(stream) -> str:
    """The sha256 of everything left in a binary ``stream``, read a chunk at a time."""
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path) -> str:
    with open(path, "rb") as stream:
        return stream_sha256(stream)
