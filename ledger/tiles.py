"""C2SP tlog-tiles: tile paths, widths, entry bundles, and proofs read from tiles.

A tile at level L, index N holds up to 256 consecutive hashes of tree level 8L (level 0: leaf
hashes); a full tile is 8,192 bytes, the rightmost tiles of a tree of size s are partial
(width floor(s / 256**L) mod 256) and served at `tile/<L>/<N>.p/<W>`. `<N>` is written in
3-digit groups, all but the last prefixed by `x` (1234067 -> `x001/x234/067`). Entry bundles
(`tile/entries/<N>[.p/<W>]`) are the entries of one level-0 tile, each prefixed by its length
as a big-endian uint16.

`TileReader` answers roots and proofs for a tree size from tiles fetched through a callable
(a directory, an HTTP mirror): every hash it returns comes from tiles, so a caller must check
the root it computes against a checkpoint it trusts before believing anything else it reads.
Pure: no storage, no network (the fetch callable brings the bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from batterytrace.credentials.errors import InputError, VerificationError

from . import merkle

TILE_WIDTH = 256
TILE_HEIGHT = 8  # levels of the tree per tile level
HASH_SIZE = merkle.HASH_SIZE
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_BUNDLE_ENTRY = 0xFFFF  # uint16 length prefix


class TileError(VerificationError):
    """A tile or entry bundle read from a mirror is malformed or does not match the checkpoint."""

    code = "TILE_ERROR"
    title = "Tile does not verify"


class TileMissingError(TileError):
    """A tile or entry bundle the checkpoint calls for is not served."""

    code = "TILE_MISSING"
    title = "Tile missing"


class TileNotFoundError(InputError):
    """The service holds no such tile for its latest checkpoint (HTTP 404)."""

    code = "TILE_NOT_FOUND"
    title = "No such tile"
    http_status = 404


class TileEntryTooLargeError(InputError):
    """An entry is longer than an entry bundle's uint16 length prefix allows (65,535 bytes)."""

    code = "TILE_ENTRY_TOO_LARGE"
    title = "Entry too large for an entry bundle"


def index_path(n: int) -> str:
    """`<N>` of a tile path: zero-padded 3-digit groups, all but the last prefixed `x`."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"tile index {n!r} must be a non-negative int")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int | str, n: int, width: int = TILE_WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]` (level "entries" for an entry bundle); width < 256 is partial."""
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} out of range")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{index_path(n)}{suffix}"


def entries_path(n: int, width: int = TILE_WIDTH) -> str:
    """`tile/entries/<N>[.p/<W>]`."""
    return tile_path("entries", n, width)


_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_NUMBER = re.compile(r"0|[1-9][0-9]*")


def parse_tile_path(path: str) -> tuple[int | str, int, int]:
    """(level or "entries", index, width) of `tile/<L>/<N>[.p/<W>]`, strictly (the one
    spelling `tile_path` writes); ValueError otherwise."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise ValueError("not a tile path")
    level_text, rest = parts[1], parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _NUMBER.fullmatch(rest[-1]) or not 1 <= int(rest[-1]) < TILE_WIDTH:
            raise ValueError("bad partial width")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if not _LAST.fullmatch(rest[-1]) or not all(_GROUP.fullmatch(g) for g in rest[:-1]):
        raise ValueError("bad tile index")
    if len(rest) > 1 and rest[0] == "x000":
        raise ValueError("tile index with a leading zero group")
    index = int("".join(g.lstrip("x") for g in rest))
    level: int | str
    if level_text == "entries":
        level = "entries"
    elif _NUMBER.fullmatch(level_text) and int(level_text) <= 63:
        level = int(level_text)
    else:
        raise ValueError("bad tile level")
    return level, index, width


@dataclass(frozen=True)
class TileRef:
    """One tile of a tree: its level, index and width (256 when full)."""

    level: int
    index: int
    width: int

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH


def tile_width(size: int, level: int, index: int) -> int:
    """Width of tile (level, index) in a tree of `size` (0 when it does not exist yet)."""
    count = size >> (TILE_HEIGHT * level)  # hashes at this tile level
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_for_size(size: int, start_size: int = 0) -> Iterator[TileRef]:
    """Every tile (full and the partial ones) of a tree of `size`, level by level, leaving out
    the full tiles already complete at `start_size` (what an incremental publisher writes)."""
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        done = (start_size >> (TILE_HEIGHT * level)) // TILE_WIDTH
        for index in range(done, -(-count // TILE_WIDTH)):
            yield TileRef(level, index, tile_width(size, level, index))
        level += 1


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    out = bytearray()
    for number, entry in enumerate(entries):
        if len(entry) > MAX_BUNDLE_ENTRY:
            raise TileEntryTooLargeError(
                f"entry {number} of the bundle has {len(entry)} bytes; an entry bundle "
                f"allows {MAX_BUNDLE_ENTRY}", size=len(entry))
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """The `width` entries of an entry bundle (TileError when it holds more or fewer)."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + length > len(data):
            raise TileError("entry bundle ends inside an entry")
        entries.append(data[pos:pos + length])
        pos += length
    if len(entries) != width:
        raise TileError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def split_hashes(data: bytes, width: int, path: str) -> list[bytes]:
    """The hashes of a tile of `width` (TileError when its length is not width x 32)."""
    if len(data) != width * HASH_SIZE:
        raise TileError(f"{path} has {len(data)} bytes, expected {width * HASH_SIZE}", path=path)
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


Fetch = Callable[[str], bytes]  # path -> bytes; raises TileMissingError when absent


class TileReader:
    """Roots, inclusion and consistency proofs and entries of a tree of `size`, from tiles.

    Nothing read here is trusted: `root()` must equal a trusted checkpoint's root, after
    which every proof built from the same tiles is the log's (a tile that lies changes the
    root). Tiles are fetched once per reader."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}
        self.fetched = 0

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile (level, index) as this tree has it (a partial tile when it is
        the rightmost; the full tile is tried when the partial is gone)."""
        key = (level, index)
        if key not in self._tiles:
            width = tile_width(self.size, level, index)
            if not width:
                raise TileError(f"tile {level}/{index} is past a tree of size {self.size}")
            path = tile_path(level, index, width)
            try:
                data = self.fetch(path)
            except TileMissingError:
                if width == TILE_WIDTH:
                    raise
                data = self.fetch(tile_path(level, index))[:width * HASH_SIZE]
            self.fetched += 1
            self._tiles[key] = split_hashes(data, width, path)
        return self._tiles[key]

    def subtree(self, level: int, index: int) -> bytes:
        """MTH of the complete subtree (level, index): leaves [index * 2**level, ...)."""
        tile_level, rest = divmod(level, TILE_HEIGHT)
        first = index << rest
        tile = self.tile(tile_level, first // TILE_WIDTH)
        offset = first % TILE_WIDTH
        hashes = tile[offset:offset + (1 << rest)]
        if len(hashes) != 1 << rest:
            raise TileError(f"subtree {level}/{index} is not complete in a tree of {self.size}")
        return merkle.fold_right(_pairwise_root(hashes))

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges proofs use."""
        return merkle.fold_right([self.subtree(lv, i) for lv, i in
                                  merkle.aligned_subtrees(start, end)])

    def root(self) -> bytes:
        """MTH of the whole tree (the empty root for size 0)."""
        return self.range_hash(0, self.size) if self.size else merkle.EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[size])."""
        return [self.range_hash(s, e) for s, e in merkle.inclusion_proof_ranges(index, self.size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (new_size <= size, default size): every range of it
        is complete subtrees of this tree, so no other size's partial tiles are needed."""
        new_size = self.size if new_size is None else new_size
        if not 0 < old_size <= new_size <= self.size:
            raise TileError(f"no consistency proof from {old_size} to {new_size} in a tree "
                            f"of size {self.size}")
        return [self.range_hash(s, e)
                for s, e in merkle.consistency_proof_ranges(old_size, new_size)]

    def root_at(self, size: int) -> bytes:
        """MTH(D[0:size]) for size <= this tree's size."""
        if not 0 <= size <= self.size:
            raise TileError(f"size {size} is past the tree of size {self.size}")
        return self.range_hash(0, size) if size else merkle.EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at `index` (from the level-0 tile)."""
        return self.tile(0, index // TILE_WIDTH)[index % TILE_WIDTH]

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(index, entry bytes) from `start` to `end`, each checked against its leaf hash in
        the level-0 tiles (which the caller ties to a trusted root)."""
        end = self.size if end is None else end
        n = start // TILE_WIDTH
        while n * TILE_WIDTH < end:
            width = tile_width(self.size, 0, n)
            try:
                data = self.fetch(entries_path(n, width))
            except TileMissingError:
                if width == TILE_WIDTH:
                    raise
                data = self.fetch(entries_path(n))
                bundle = decode_bundle(data, TILE_WIDTH)[:width]
            else:
                bundle = decode_bundle(data, width)
            hashes = self.tile(0, n)
            for offset, entry in enumerate(bundle):
                index = n * TILE_WIDTH + offset
                if not start <= index < end:
                    continue
                if merkle.leaf_hash(entry) != hashes[offset]:
                    raise TileError(f"entry {index} does not hash to its leaf in tile 0/{n}",
                                    seq=index)
                yield index, entry
            n += 1


def _pairwise_root(hashes: Sequence[bytes]) -> list[bytes]:
    """Hash a power-of-two list of sibling hashes up to its single root (as a 1-list)."""
    level = list(hashes)
    while len(level) > 1:
        level = [merkle.hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level


__all__ = [
    "FULL_TILE_BYTES",
    "TILE_WIDTH",
    "Fetch",
    "TileEntryTooLargeError",
    "TileError",
    "TileMissingError",
    "TileNotFoundError",
    "TileReader",
    "TileRef",
    "decode_bundle",
    "encode_bundle",
    "entries_path",
    "index_path",
    "parse_tile_path",
    "split_hashes",
    "tile_path",
    "tile_width",
    "tiles_for_size",
]
