"""Reading a C2SP tlog-tiles mirror: an HTTP(S) URL or a local directory, never trusted.

`mirror_fetch(source)` returns the fetch callable `ledger.tiles.TileReader` reads through.
Over HTTP it keeps one connection (keep-alive), asks for gzip, keeps tiles and bundles in
memory and, with `cache_dir`, on disk, so a second run reads them from there: every tile
path names fixed bytes (a partial tile `.p/<W>` is the first W hashes of its tile, forever),
so only `checkpoint` is mutable, and it is never cached. A 404 is `TileMissingError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
from batterytrace.credentials.errors import InputError
from batterytrace.ledger.tiles import TileMissingError

CHECKPOINT = "checkpoint"


class MirrorError(InputError):
    """The mirror cannot be read (network error, HTTP error other than 404)."""

    code = "MIRROR_UNREACHABLE"
    title = "Mirror cannot be read"


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def mirror_fetch(source: str, cache_dir: Path | None = None, timeout: float = 30.0,
                 cache: bool = True) -> Callable[[str], bytes]:
    """A fetch callable (path -> bytes) over a mirror URL or directory (`cache=False`:
    nothing kept in memory, every call goes to the mirror)."""
    if not _is_url(source):
        root = Path(source)

        def read(path: str) -> bytes:
            try:
                return (root / path).read_bytes()
            except FileNotFoundError:
                raise TileMissingError(f"{path} is not in {root}", path=path) from None

        return read
    base = source.rstrip("/")
    client = httpx.Client(timeout=timeout, headers={"Accept-Encoding": "gzip, identity"})
    memory: dict[str, bytes] = {}

    def fetch(path: str) -> bytes:
        immutable = cache and path != CHECKPOINT
        if immutable and path in memory:
            return memory[path]
        disk = None
        if immutable and cache_dir is not None:
            disk = Path(cache_dir) / hashlib.sha256(f"{base}/{path}".encode()).hexdigest()
            if disk.exists():
                memory[path] = disk.read_bytes()
                return memory[path]
        try:
            response = client.get(f"{base}/{path}")
        except httpx.HTTPError as exc:
            raise MirrorError(f"cannot read {base}/{path}: {exc}") from None
        if response.status_code == 404:
            raise TileMissingError(f"{path} is not served by {base}", path=path)
        if response.status_code != 200:
            raise MirrorError(f"{base}/{path}: HTTP {response.status_code}")
        data = response.content
        if immutable:
            memory[path] = data
            if disk is not None:
                disk.parent.mkdir(parents=True, exist_ok=True)
                disk.write_bytes(data)
        return data

    return fetch


def fetch_checkpoint(fetch: Callable[[str], bytes]) -> bytes:
    """The mirror's current checkpoint note (to be opened with trusted keys)."""
    return fetch(CHECKPOINT)
