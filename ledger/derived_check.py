"""Recompute the ledger's derived tables from its entries and name the first difference.

The entries (`ledger_entries`) are the only source of truth; every other table is derived:

- `ledger_tree_tiles`: the Merkle tree of the entries' leaf hashes, packed in tiles
  (`storage.tile_slot`); every stored tile must equal the recomputed one, and no tile may be
  missing or extra;
- `ledger_checkpoints`: each row's signed note must verify, name the row's size and root, and
  that root must be the tree's root at that size; each row names the row before it and
  carries its seal (`seal.py`), so a deleted older row is found; the largest row must be
  checkpoint.txt;
- `ledger_sequencer`: size, head entry hash and root of the whole log;
- `custody_state`: the rows `custody_store.rebuild` would write after the engine's replay,
  each with its seal;
- `credential_anchor`: the rows of the engine's anchor book after the same replay;
- `status_list`: bits, allocations, issuer and URL against the anchors (`status_check.py`).

- `credential_record`: each stored credential against its issuance anchor (issuer, types,
  digest of the stored body, position); checked, not rebuildable (bodies are not in the log).

- `credential_subject`: the index of the stored credentials' subjects, from their bodies.

`check_derived` reads (storage reads are allowed here) and compares; `expected_*` compute what
`ledger repair --from-entries` writes back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.engine import Connection

from . import merkle, pool
from .anchor_store import encode_anchor_value
from .bundle_format import credential_subject_ids
from .checkpoint import NoteVerifier, open_checkpoint, parse_verifier_key
from .custody_store import (
    encode_key,
    encode_value,
    ensure_schema,
    replace_state,
    replayed_rows,
    stored_rows,
)
from .engine import Replay
from .entry import Entry
from .errors import LedgerNotFoundError
from .home import Home
from .log import Ledger, sqlite_url
from .mismatch import DerivedMismatch
from .mismatch import short as _short
from .replay import replay_entries
from .seal import RowSeal, SealMismatchError
from .spill import SPILL_ROWS, Spilled, first_difference, ordered_digest
from .status_check import check_status_lists, rebuild_status_lists
from .storage import CheckpointRecord, SqlStorage, pack_tiles
from .tables import (
    CHECKPOINTS,
    CREDENTIAL_ANCHOR,
    CREDENTIAL_RECORD,
    CREDENTIAL_SUBJECT,
    CUSTODY_STATE,
    SEQUENCER,
    STATUS_LIST,
    TILES,
)
from .tile_file import TileSet
from .tree_store import frontier_root, grow


@dataclass
class LogView:
    """What the checks read: the home, the storage, the origin and log verifier of entry 0.

    Opened without `Ledger.open`'s own checks (they stop at the first damaged tile or
    checkpoint without naming it). A `Ledger` has the same attributes."""

    home: Home
    storage: SqlStorage
    origin: str
    verifier: NoteVerifier
    public_url: str
    row_seal: RowSeal | None = None

    def iter_entries(self) -> Iterable[Entry]:
        for _, body in self.storage.iter_bodies():
            yield Entry.parse(body)

    def close(self) -> None:
        self.storage.close()


def open_view(home: Any, database_url: str | None = None) -> LogView:
    """A LogView of a home and database (LedgerNotFoundError without entry 0). The home's log
    key is trusted when present (as `verify_ledger` does), else entry 0's."""
    from pathlib import Path

    place = Home(Path(home))
    storage = SqlStorage(database_url or sqlite_url(Path(home)))
    body = storage.entry_body(0) if storage.has_schema() else None
    if body is None:
        storage.close()
        raise LedgerNotFoundError(f"no ledger in {storage.url} (run batterytrace init)")
    genesis = Entry.parse(body).document
    origin = genesis["origin"]
    seal = None
    if place.log_key_path.exists():
        log_key = place.log_key()
        verifier = NoteVerifier.ed25519(origin, log_key.public_key)
        seal = RowSeal.of_log_key(log_key) if log_key.seed is not None else None
    else:
        verifier = parse_verifier_key(genesis["logKey"])
    return LogView(place, storage, origin, verifier, genesis["publicUrl"], seal)


Source = Ledger | LogView


@dataclass
class Tree:
    """The Merkle tree recomputed from the entries: packed tiles (the complete ones in a
    temporary file: `tile_file.TileSet`; `close` deletes it), roots by size, head."""

    size: int = 0
    head: bytes = b""
    root: bytes = merkle.EMPTY_ROOT
    tiles: TileSet = field(default_factory=TileSet)
    roots: dict[int, bytes] = field(default_factory=dict)  # size -> root, for wanted sizes

    def close(self) -> None:
        self.tiles.close()


class TreeBuilder:
    """The Merkle tree of the entries, fed one body at a time in seq order (`add`), so the
    tree can be built in a pass that reads the entries for another purpose (`ledger repair`
    builds it while checking the chain, `ledger verify` while checking the chain and
    replaying). `finish` packs what is left and returns the Tree; the caller closes it.
    Memory: the nodes of 65,536 entries and the tiles not yet complete."""

    def __init__(self, wanted_sizes: Iterable[int] = ()) -> None:
        self.tree = Tree()
        self._wanted = set(wanted_sizes)
        self._frontier: list[tuple[int, int, bytes]] = []
        self._nodes: list[tuple[int, int, bytes]] = []

    def add(self, seq: int, body: bytes) -> None:
        """The entry at `seq` (the next one: entries come in order from 0)."""
        self.add_hashes(seq, hashlib.sha256(body).digest(), merkle.leaf_hash(body))

    def add_hashes(self, seq: int, entry_hash: bytes, leaf: bytes) -> None:
        """`add` of an entry by the SHA-256 of its bytes and its leaf hash, computed once
        for every check that reads them (`ledger verify`)."""
        tree = self.tree
        created, self._frontier = grow(self._frontier, [leaf])
        self._nodes.append((0, seq, leaf))
        self._nodes.extend(created)
        tree.size = seq + 1
        tree.head = entry_hash
        if tree.size in self._wanted:
            tree.roots[tree.size] = frontier_root(self._frontier)
        if len(self._nodes) >= 65536:
            pack_tiles(tree.tiles.open, self._nodes)
            self._nodes = []
            tree.tiles.close_complete(tree.size)  # complete tiles: out of memory

    def finish(self) -> Tree:
        self.tree.root = frontier_root(self._frontier)
        pack_tiles(self.tree.tiles.open, self._nodes)
        self._nodes = []
        self.tree.tiles.close_complete(self.tree.size)
        return self.tree


def stored_checkpoint_sizes(ledger: Source) -> list[int]:
    """The sizes of the stored checkpoint rows: the roots `check_tree` needs of a tree."""
    with ledger.storage.engine.connect() as connection:
        return [size for (size,) in connection.execute(
            select(CHECKPOINTS.c.size).order_by(CHECKPOINTS.c.size))]


def recompute_tree(ledger: Source, wanted_sizes: Iterable[int] = ()) -> Tree:
    """The tiles of the entries' tree (as `storage.store_nodes` writes them) and its roots at
    `wanted_sizes`."""
    builder = TreeBuilder(wanted_sizes)
    for seq, body in ledger.storage.iter_bodies():
        builder.add(seq, body)
    return builder.finish()


def _compare(table: str, expected: Mapping[Any, Any], found: Mapping[Any, Any]
             ) -> DerivedMismatch | None:
    """The first differing key (in sorted order): changed, missing or extra row."""
    for key in sorted(set(expected) | set(found)):
        want, got = expected.get(key), found.get(key)
        if want != got:
            return DerivedMismatch(table, _short(key), _short(want), _short(got))
    return None


def _replay(ledger: Source) -> Replay:
    """The engine's replay of the entries, its state spilled to a temporary file once it
    outgrows memory (`spill.py`; `Replay.close` deletes it)."""
    return replay_entries(ledger.iter_entries(), replay=Replay(SPILL_ROWS))


def iter_custody_rows(replay: Replay) -> Iterator[tuple[tuple[str, str], str]]:
    """The custody_state rows `custody_store.rebuild` writes after this replay, encoded, one
    at a time, in the order of the stored rows' primary key (table, then key: read from the
    replay's spill file in that order, sorted when in memory, bounded by the spill limit)."""
    registry, state = replay.started()
    named = sorted((table, tables) for tables in (registry, state)
                   for table in tables.table_names)
    for table, tables in named:
        rows: Iterable[tuple[str, str]] = (
            (encode_key(key), encode_value(value)) for key, value in tables.rows(table))
        if not (isinstance(tables, Spilled) and tables.in_file):
            rows = sorted(rows)
        for key, value in rows:
            yield (table, key), value


def iter_anchor_rows(replay: Replay) -> Iterator[tuple[tuple[str, str], str]]:
    """The credential_anchor rows `anchor_store.StoredAnchorBook.write` writes for the
    replay's anchor book, one at a time, in the order of the stored rows' primary key."""
    anchors = replay.anchors
    for table in sorted(anchors.table_names):
        rows: Iterable[tuple[str, Any]] = anchors.rows(table)
        if not (isinstance(anchors, Spilled) and anchors.in_file):
            rows = sorted(rows, key=lambda row: row[0])
        for key, value in rows:
            yield (table, key), encode_anchor_value(value)


def expected_anchor_rows(replay: Replay) -> dict[tuple[str, str], str]:
    """The credential_anchor rows of the replay's anchor book (`iter_anchor_rows`)."""
    return dict(iter_anchor_rows(replay))


def _stored_anchor_rows(connection: Connection) -> Iterator[tuple[tuple[str, str], str]]:
    CREDENTIAL_ANCHOR.create(connection, checkfirst=True)
    t = CREDENTIAL_ANCHOR
    for r in connection.execute(select(t.c.tbl, t.c.key, t.c.value).order_by(t.c.tbl, t.c.key)
                                .execution_options(yield_per=5000)):
        yield (r.tbl, r.key), r.value


def _stored_custody_rows(connection: Connection, seal: RowSeal | None,
                         broken: list[DerivedMismatch]) -> Iterator[tuple[tuple[str, str], str]]:
    """The stored custody_state rows, ordered by their key; with the ledger's `seal`, each
    row's seal is checked as it is read, the first that does not match put in `broken`."""
    for tbl, key, value, row_seal in stored_rows(connection):
        if seal is not None and not broken:
            try:
                seal.check(CUSTODY_STATE.name, tbl, key, value, row_seal)
            except SealMismatchError:
                broken.append(DerivedMismatch(CUSTODY_STATE.name, _short((tbl, key)),
                                              "a row sealed by the log key",
                                              "a row changed outside the ledger (seal)"))
        yield (tbl, key), value


Rows = Callable[[], Iterable[tuple[tuple[str, str], str]]]


def stored_custody_digest(
    where: list[tuple[str, RowSeal | None]],
) -> list[tuple[str | None, DerivedMismatch | None]]:
    """Run by a worker process while `check_state` reads the replay's rows: for the ledger
    at `url` (one item), the `spill.ordered_digest` of its stored custody_state rows (None
    when they are not in code point order, e.g. a PostgreSQL collation) and the first row
    whose seal does not match. An accelerator: on any failure it answers (None, None), and
    `check_state` compares the rows itself."""
    [(url, seal)] = where
    broken: list[DerivedMismatch] = []
    try:
        storage = SqlStorage(url)
        try:
            with storage.engine.connect() as connection:
                digest = ordered_digest(_stored_custody_rows(connection, seal, broken))
        finally:
            storage.close()
    except Exception:  # the reference comparison runs instead, and reports
        return [(None, None)]
    return [(digest, broken[0] if broken else None)]


def _compare_rows(table: str, expected: Rows, found: Rows) -> DerivedMismatch | None:
    """`_compare` of two streams of text rows, each given as a function that reads it
    (`spill.first_difference`: in step when both are ordered; bounded memory)."""
    first = first_difference(expected, found)
    if first is None:
        return None
    key, want, got = first
    return DerivedMismatch(table, _short(key), _short(want), _short(got))


def _check_credential_records(connection: Connection, replay: Replay
                              ) -> DerivedMismatch | None:
    """Each stored credential against its anchor: an issuance anchor for its id, with its
    issuer, types, digest (of the stored body) and position. Not rebuildable: the bodies are
    not in the log. A row deleted is not detected (an anchor may come without its credential)."""

    if not inspect(connection).has_table(CREDENTIAL_RECORD.name):
        return None
    t = CREDENTIAL_RECORD
    for row in connection.execute(select(t).order_by(t.c.id)):
        record = replay.anchors.record(row.id)
        want = None if record is None else (
            f"issuer {record.issuer} types {list(record.types)} digest {record.digest} "
            f"anchored_at {record.issued_at}")
        try:
            types = json.loads(row.types)
        except ValueError:
            types = row.types
        got = (f"issuer {row.issuer} types {types} digest {row.digest} "
               f"anchored_at {row.anchored_at}")
        if want != got:
            return DerivedMismatch(t.name, _short(row.id), _short(want), _short(got))
        body_digest = hashlib.sha256(row.body.encode("utf-8")).hexdigest()
        if body_digest != row.digest:
            return DerivedMismatch(t.name, _short(row.id), f"a body of digest {row.digest}",
                                   f"a body of digest {body_digest}")
    return None


def _indexed_subjects(connection: Connection) -> tuple[dict[tuple[str, str], str], set[str]]:
    """The credential_subject rows the stored bodies give, (subject id, credential id), and
    the ids of the stored credentials whose body does not match its digest: their rows can
    be neither checked nor rebuilt (the record check reports them)."""
    rows: dict[tuple[str, str], str] = {}
    damaged: set[str] = set()
    t = CREDENTIAL_RECORD
    for credential_id, body, digest in connection.execute(select(t.c.id, t.c.body, t.c.digest)):
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if hashlib.sha256(body.encode("utf-8")).hexdigest() != digest or not isinstance(
                document, dict):
            damaged.add(credential_id)
            continue
        for subject in credential_subject_ids(document):
            rows[(subject, credential_id)] = "indexed"
    return rows, damaged


def _stored_subjects(connection: Connection, leave_out: set[str]) -> dict[tuple[str, str], str]:
    t = CREDENTIAL_SUBJECT
    return {(r.subject_id, r.credential_id): "indexed" for r in connection.execute(select(t))
            if r.credential_id not in leave_out}


def _check_credential_subjects(connection: Connection) -> DerivedMismatch | None:
    """The subject index against the stored credentials' subjects (no row missing or extra)."""
    if not inspect(connection).has_table(CREDENTIAL_SUBJECT.name):
        return None
    expected, damaged = _indexed_subjects(connection)
    return _compare(CREDENTIAL_SUBJECT.name, expected, _stored_subjects(connection, damaged))


def check_tree(ledger: Source, tree: Tree | None = None) -> list[DerivedMismatch]:
    """Tiles, checkpoint rows, checkpoint.txt and the sequencer row against the entries."""
    out: list[DerivedMismatch] = []
    with ledger.storage.engine.connect() as connection:
        tiles = {k: bytes(h) for k, h in connection.execute(select(TILES.c.key, TILES.c.hashes))}
        checkpoints = [CheckpointRecord(r.size, bytes(r.root), bytes(r.note), r.previous, r.seal)
                       for r in connection.execute(select(CHECKPOINTS)
                                                   .order_by(CHECKPOINTS.c.size))]
        sequencer = connection.execute(select(SEQUENCER)).all()
    tree = tree or recompute_tree(ledger, [row.size for row in checkpoints])
    found = _compare(TILES.name, {k: bytes(v) for k, v in tree.tiles.items()}, tiles)
    if found:
        out.append(found)
    out.extend(_check_checkpoints(ledger, tree, checkpoints))
    want = {1: (tree.size, tree.head, tree.root)}
    got = {r.id: (r.size, bytes(r.head), bytes(r.root)) for r in sequencer}
    found = _compare(SEQUENCER.name, {k: _fmt_head(v) for k, v in want.items()},
                     {k: _fmt_head(v) for k, v in got.items()})
    if found:
        out.append(found)
    return out


def _fmt_head(value: tuple[int, bytes, bytes]) -> str:
    return f"size {value[0]} head {value[1].hex()} root {value[2].hex()}"


def _check_checkpoints(ledger: Source, tree: Tree, rows: list[CheckpointRecord]
                       ) -> list[DerivedMismatch]:
    table = CHECKPOINTS.name
    before: int | None = None
    for row in rows:
        size, root, note = row.size, row.root, row.note
        key = f"size={size}"
        if row.previous != before:
            # Each row names the row before it: a deleted older row breaks the chain.
            missing = "(none)" if row.previous is None else f"a row of size {row.previous}"
            return [DerivedMismatch(
                table, key,
                "the first row" if before is None else f"the row before it: size={before}",
                f"{missing} named as the row before it")]
        before = size
        if ledger.row_seal is not None:
            try:
                row.check_seal(ledger.row_seal)
            except SealMismatchError:
                return [DerivedMismatch(table, key, "a row sealed by the log key",
                                        "a row changed outside the ledger (seal)")]
        try:
            cp = open_checkpoint(note, [ledger.verifier], ledger.origin)
        except Exception as exc:  # any note that does not verify is a mismatch
            return [DerivedMismatch(table, key, "a note signed by the log key",
                                    _short(getattr(exc, "message", str(exc))))]
        if cp.size != size:
            return [DerivedMismatch(table, key, f"note of size {size}", f"note of size {cp.size}")]
        if cp.root != root:
            return [DerivedMismatch(table, key, f"root {cp.root.hex()} (its note's)",
                                    _short(root))]
        tree_root = tree.roots.get(size)
        if tree_root != root:
            return [DerivedMismatch(table, key, f"the tree's root {_short(tree_root)}",
                                    _short(root))]
    file_note = ledger.home.read_checkpoint()
    latest = rows[-1] if rows else None
    if file_note is not None and (latest is None or latest.note != file_note):
        file_size = open_checkpoint(file_note, [ledger.verifier], ledger.origin).size
        return [DerivedMismatch(table, f"size={file_size}",
                                f"the note of {ledger.home.checkpoint_path} as the largest row",
                                "(no row)" if latest is None
                                else f"largest row size={latest.size}")]
    return []


def check_state(ledger: Source, replay: Replay | None = None, *,
                processes: int = 1) -> list[DerivedMismatch]:
    """custody_state and credential_anchor against the engine's replay of the entries. With
    `processes` > 1 a worker digests the stored custody rows while this process digests the
    replay's (`stored_custody_digest`); they are compared row by row only when the digests
    differ."""
    own = replay is None
    replay = replay or _replay(ledger)
    out: list[DerivedMismatch] = []
    try:
        with ledger.storage.engine.begin() as connection:
            ensure_schema(connection)
            # Compared as text, streamed: the append path and the replay write one spelling
            # per value (`custody_store.decimal_text`). The seals are checked in the same
            # read of the stored rows (read to the end by the comparison, whatever it finds).
            broken: list[DerivedMismatch] = []
            custody_same = False
            if processes > 1:
                job = pool.get_pool(processes - 1).submit(
                    stored_custody_digest, [(ledger.storage.url, ledger.row_seal)], 1)
                if job is not None:
                    want = ordered_digest(iter_custody_rows(replay))
                    found_digest, seal_fault = job.take(0)[0]
                    job.close()
                    custody_same = want is not None and want == found_digest
                    if custody_same and seal_fault is not None:
                        broken.append(seal_fault)
            for table, want_rows, got_rows in (
                    (CUSTODY_STATE.name, lambda: iter_custody_rows(replay),
                     lambda: _stored_custody_rows(connection, ledger.row_seal, broken)),
                    (CREDENTIAL_ANCHOR.name, lambda: iter_anchor_rows(replay),
                     lambda: _stored_anchor_rows(connection))):
                if table == CUSTODY_STATE.name and custody_same:
                    continue
                found = _compare_rows(table, want_rows, got_rows)
                if found:
                    out.append(found)
            records = _check_credential_records(connection, replay)
            seals = broken[0] if broken else None
            lists = check_status_lists(connection, replay.anchors, ledger.public_url)
            subjects = _check_credential_subjects(connection)
    finally:
        if own:
            replay.close()
    out.extend(found for found in (seals, records, subjects, lists) if found is not None)
    return out


def trusted_note(ledger: Source) -> bytes | None:
    """checkpoint.txt's note, or when the file is lost the largest stored checkpoint note that
    verifies (what `ledger repair` writes back), or None."""
    note = ledger.home.read_checkpoint()
    if note is not None:
        return note
    with ledger.storage.engine.connect() as connection:
        stored = [bytes(n) for (n,) in connection.execute(
            select(CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.size.desc()))]
    for candidate in stored:
        try:
            open_checkpoint(candidate, [ledger.verifier], ledger.origin)
        except Exception:
            continue
        return candidate
    return None


def check_derived(ledger: Source, *, state: bool = True, tree: Tree | None = None,
                  replay: Replay | None = None) -> list[DerivedMismatch]:
    """The first difference of each derived table from its recomputation from the entries
    (empty: all match). `state=False` skips the replay (custody_state, credential_anchor),
    for logs whose entries are not custody entries. `tree` and `replay`, when given, are the
    entries' tree (with the roots at the stored checkpoint sizes) and their engine replay,
    made by the caller: nothing is recomputed (`ledger repair` checks what it wrote)."""
    out = check_tree(ledger, tree)
    if state:
        out.extend(check_state(ledger, replay))
    return out


def checkpoint_candidates(ledger: Source) -> dict[int, tuple[bytes, bytes]]:
    """size -> (root, note) of every stored checkpoint note that verifies, and of
    checkpoint.txt's: the rows `rebuild_derived` may write back (those whose root is the
    tree's root at their size). Their sizes are the roots a tree given to it must hold."""
    with ledger.storage.engine.connect() as connection:
        notes = [bytes(n) for (n,) in connection.execute(select(CHECKPOINTS.c.note))]
    file_note = ledger.home.read_checkpoint()
    if file_note is not None:
        notes.append(file_note)
    checkpoints: dict[int, tuple[bytes, bytes]] = {}
    for note in notes:
        try:
            cp = open_checkpoint(note, [ledger.verifier], ledger.origin)
        except Exception:
            continue
        checkpoints[cp.size] = (cp.root, note)
    return checkpoints


def rebuild_derived(ledger: Source, *, state: bool = True, tree: Tree | None = None,
                    replay: Replay | None = None) -> dict[str, int]:
    """Rewrite the derived tables from the entries in ONE transaction (the entries must have
    been verified first): tiles, the sequencer row, checkpoint rows (their roots from their
    own signed notes; checkpoint.txt's note restored as a row when missing), custody_state and
    credential_anchor. Returns the rows written per table. Checkpoint rows whose note does
    not verify are dropped (they cannot be re-signed here).

    `tree` (built for the sizes of `checkpoint_candidates`) and `replay` (the engine's
    replay of every entry), when given, are used instead of reading and replaying the
    entries again: `ledger repair` makes both while it verifies them. The rows are written
    in chunks from the replay (spilled to a file when large), never all held in memory."""
    candidates = checkpoint_candidates(ledger)
    if tree is None:
        tree = recompute_tree(ledger, candidates)
        try:
            return rebuild_derived(ledger, state=state, tree=tree, replay=replay)
        finally:
            tree.close()
    kept = {s: v for s, v in candidates.items() if tree.roots.get(s) == v[0]}
    chained: list[dict[str, Any]] = []
    before: int | None = None
    for size, (root, note) in sorted(kept.items()):
        record = CheckpointRecord(size, root, note, before, None).sealed_by(ledger.row_seal)
        chained.append(record.to_row())
        before = size
    own = state and replay is None
    if own:
        replay = _replay(ledger)
    try:
        return _rewrite(ledger, tree, chained, replay if state else None)
    finally:
        if own and replay is not None:
            replay.close()


WRITE_CHUNK = 5000  # rows per INSERT batch in `_rewrite` (the rows are never all in memory)
TILE_CHUNK = 64  # tiles per INSERT batch (~1 MB)


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _rewrite(ledger: Source, tree: Tree, chained: list[dict[str, Any]], replay: Replay | None
             ) -> dict[str, int]:
    """`rebuild_derived`'s transaction; rows inserted in chunks, streamed from the replay."""
    counts: dict[str, int] = {}
    with ledger.storage.engine.begin() as connection:
        connection.execute(delete(TILES))
        for chunk in _chunks(tree.tiles, TILE_CHUNK):  # in key order, read back from the file
            connection.execute(insert(TILES), [{"key": k, "hashes": tree.tiles[k]}
                                               for k in chunk])
        counts[TILES.name] = len(tree.tiles)
        connection.execute(delete(CHECKPOINTS))
        if chained:
            connection.execute(insert(CHECKPOINTS), chained)
        counts[CHECKPOINTS.name] = len(chained)
        connection.execute(delete(SEQUENCER))
        connection.execute(insert(SEQUENCER), [
            {"id": 1, "size": tree.size, "head": tree.head, "root": tree.root}])
        counts[SEQUENCER.name] = 1
        if replay is not None:
            counts[CUSTODY_STATE.name] = replace_state(
                connection, replayed_rows(replay), ledger.row_seal, chunk=WRITE_CHUNK)
            CREDENTIAL_ANCHOR.create(connection, checkfirst=True)
            connection.execute(delete(CREDENTIAL_ANCHOR))
            written = 0
            for anchors in _chunks(iter_anchor_rows(replay), WRITE_CHUNK):
                connection.execute(insert(CREDENTIAL_ANCHOR), [
                    {"tbl": t, "key": k, "value": v} for (t, k), v in anchors])
                written += len(anchors)
            counts[CREDENTIAL_ANCHOR.name] = written
            if inspect(connection).has_table(CREDENTIAL_SUBJECT.name):
                expected, damaged = _indexed_subjects(connection)
                connection.execute(delete(CREDENTIAL_SUBJECT).where(
                    CREDENTIAL_SUBJECT.c.credential_id.not_in(damaged)))
                subjects = [{"subject_id": subject, "credential_id": cid}
                            for subject, cid in sorted(expected)]
                if subjects:
                    connection.execute(insert(CREDENTIAL_SUBJECT), subjects)
                counts[CREDENTIAL_SUBJECT.name] = len(subjects)
            counts[STATUS_LIST.name] = rebuild_status_lists(connection, replay.anchors,
                                                                ledger.public_url)
    if isinstance(ledger, Ledger):
        ledger.tree.forget_tiles(list(tree.tiles))
    return counts


__all__ = [
    "DerivedMismatch",
    "LogView",
    "Tree",
    "TreeBuilder",
    "check_derived",
    "check_state",
    "check_tree",
    "checkpoint_candidates",
    "expected_anchor_rows",
    "open_view",
    "rebuild_derived",
    "recompute_tree",
    "stored_checkpoint_sizes",
    "trusted_note",
]
