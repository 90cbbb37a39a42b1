"""Publish a ledger as C2SP tlog-tiles in a directory any static web server can serve.

    DIR/checkpoint                    the latest signed (and cosigned) checkpoint note
    DIR/tile/<L>/<N>[.p/<W>]          hash tiles (`ledger/tiles.py`)
    DIR/tile/entries/<N>[.p/<W>]      entry bundles: the canonical entry bytes (the leaf data)

Incremental and immutable: a full tile or bundle already in DIR is never rewritten (its
absence is the only test, so a run after an interruption finishes the job); partial tiles of
the published size are written once each; `checkpoint` is replaced atomically, last, so a
reader never sees a checkpoint whose tiles are not there yet. Hashes come from the stored
tree tiles (`TreeStore.subtrees`), entries from the entries table; the tree published is the
checkpoint's size, never the head's.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .checkpoint import Checkpoint, open_checkpoint
from .errors import LedgerForkError
from .log import Ledger
from .tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    encode_bundle,
    entries_path,
    parse_tile_path,
    tile_width,
    tiles_for_size,
)

CHECKPOINT_PATH = "checkpoint"


class PublishedLog(Protocol):
    """What the publisher reads of a ledger (`log.Ledger` provides it)."""

    def subtree_hashes(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...

    def entry_bytes(self, start: int, end: int) -> list[bytes]: ...

    def iter_entry_bytes(self, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class PublishResult:
    """What one run wrote: sizes, tiles and bundles written and kept, bytes written."""

    size: int
    previous_size: int
    tiles_written: int
    bundles_written: int
    tiles_kept: int
    bytes_written: int

    def to_json(self) -> dict[str, int]:
        return {"size": self.size, "previousSize": self.previous_size,
                "tilesWritten": self.tiles_written, "bundlesWritten": self.bundles_written,
                "tilesKept": self.tiles_kept, "bytesWritten": self.bytes_written}


def publish(log: PublishedLog, cp: Checkpoint, note: bytes, out: Path,
            previous_size: int = 0) -> PublishResult:
    """Write the tiles and entry bundles of the tree of `cp` into `out`, then `note` as its
    checkpoint. `previous_size` (the size already published, as read from out/checkpoint by
    the caller after verifying it) lets full tiles complete at that size go unchecked."""
    out = Path(out)
    written = bundles = kept = nbytes = 0
    # The entries of the new bundles in one stream (one query per 2,000 rows, not per bundle).
    first_new = previous_size // TILE_WIDTH * TILE_WIDTH
    stream = iter(log.iter_entry_bytes(first_new, cp.size))
    for ref in tiles_for_size(cp.size, previous_size):
        first = ref.index * TILE_WIDTH
        if ref.level == 0:  # the bundle before its tile: a tile present means both are
            entries = list(itertools.islice(stream, ref.width))
            bundle = out / entries_path(ref.index, ref.width)
            if not bundle.exists():
                nbytes += _write_atomic(bundle, encode_bundle(entries))
                bundles += 1
        path = out / ref.path
        if path.exists():
            kept += 1
            continue
        level = ref.level * TILE_HEIGHT
        keys = [(level, first + i) for i in range(ref.width)]
        hashes = log.subtree_hashes(keys)
        nbytes += _write_atomic(path, b"".join(hashes[k] for k in keys))
        written += 1
    nbytes += _write_atomic(out / CHECKPOINT_PATH, note)
    return PublishResult(cp.size, previous_size, written, bundles, kept, nbytes)


def publish_ledger(ledger: Ledger, out: Path) -> PublishResult:
    """Publish `ledger` at its latest signed checkpoint (the cosigned note of checkpoint.txt
    when it is that checkpoint) into `out`. A checkpoint already in `out` must be this log's
    and consistent with it (LedgerForkError otherwise: DIR holds another history)."""
    cp, note = ledger.published_checkpoint()
    previous = 0
    existing = Path(out) / CHECKPOINT_PATH
    if existing.exists():
        old = open_checkpoint(existing.read_bytes(), [ledger.verifier], ledger.origin)
        if old.size > cp.size or ledger.root(old.size) != old.root:
            raise LedgerForkError(
                f"{existing} (size {old.size}) is not a checkpoint of this log's history",
                checkpoint_size=old.size)
        previous = old.size
    return publish(ledger, cp, note, Path(out), previous)


def tile_bytes(log: PublishedLog, size: int, path: str) -> bytes | None:
    """The bytes at `path` (a tile or entry bundle) of the tree of `size`, or None when the
    path names nothing of that tree (the service answers tiles on the paths `publish` writes;
    a partial tile of any width up to the current one is a prefix of it, hence stable)."""
    try:
        level, index, width = parse_tile_path(path)
    except ValueError:
        return None
    tile_level = 0 if level == "entries" else int(level)
    if tile_width(size, tile_level, index) < width:
        return None
    first = index * TILE_WIDTH
    if level == "entries":
        return encode_bundle(log.entry_bytes(first, first + width))
    keys = [(tile_level * TILE_HEIGHT, first + i) for i in range(width)]
    hashes = log.subtree_hashes(keys)
    return b"".join(hashes[k] for k in keys)


def _write_atomic(path: Path, data: bytes) -> int:
    """Write `data` to a temporary file beside `path`, then rename it over (0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return len(data)


__all__ = ["CHECKPOINT_PATH", "PublishResult", "PublishedLog", "publish", "publish_ledger",
           "tile_bytes"]
