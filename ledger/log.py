"""The stored verifiable log: `Ledger` appends entries atomically and answers proofs.

Before the lock, what does not depend on the position: each document's canonical bytes and
the entry's head (document and kind, hashed: `entry.EntryHead`), and the validators'
position-independent checks (`start`). One write transaction per batch: lock the sequencer
row (SQLite: BEGIN IMMEDIATE), run the validators of the batch's kinds, chain the entries
(only each entry's short tail is hashed here), read the tiles the batch writes and the latest
checkpoint at once, extend the Merkle tree from the frontier in those tiles, sign the new
checkpoint (after checking it is consistent with the last one signed), then write entries,
tiles, head and checkpoint (PostgreSQL: one COPY and one pipeline). checkpoint.txt is
replaced after the commit. A crash before the commit leaves nothing of the batch.

`append_batches` appends a stream of batches and lets the validators `prepare` the next batch
(signature checks in worker processes) while the current one is written; an entry reuses the
document's canonical bytes when its validator computed them (`Preparing`).
"""

from __future__ import annotations

import json
from binascii import hexlify
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.errors import CanonicalizationError
from sqlalchemy import select, update
from sqlmodel import Session

from . import merkle
from .batch import AppendResult, Preparing, Submission, Validator, validate_runs
from .checkpoint import (
    Checkpoint,
    NoteVerifier,
    note_verifier_key,
    open_checkpoint,
    parse_checkpoint_body,
    parse_verifier_key,
    sign_checkpoint,
)
from .entry import (
    GENESIS_PREV,
    MAX_SEQ,
    Entry,
    EntryHead,
    check_kind,
    envelope_tail_template,
    utc_now,
)
from .errors import (
    CheckpointNotSignedError,
    EntryFormatError,
    EntryNotFoundError,
    LedgerExistsError,
    LedgerForkError,
    LedgerNotFoundError,
    LogEntryError,
)
from .home import DATABASE_FILE, Home
from .log_verify import LogChain, LogSummary, run_chain
from .pool import bulk_work
from .seal import SEALED_REVISION, RowSeal
from .storage import ENTRY_COLUMNS, CheckpointRecord, Head, SqlStorage, appended_tiles
from .tables import CHECKPOINTS, ENTRIES
from .tlog_proof import format_proof
from .tree_store import BatchOverlay, TileOverlay, TreeStore, extend, frontier_tiles

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
# Re-exported: what callers of the ledger import from here.
__all__ = ["DEFAULT_PUBLIC_URL", "ENTRY_COLUMNS", "AppendResult", "Ledger", "Preparing",
           "Submission", "Validator", "sqlite_url", "validate_runs", "verify_ledger"]


def sqlite_url(home: Path) -> str:
    """The default database of a home folder."""
    return f"sqlite:///{(Path(home) / DATABASE_FILE).resolve()}"


def _early_heads(
    subs: Sequence[Submission], canonical_of: Mapping[str, Callable[..., Any] | None]
) -> list[EntryHead | None]:
    """Per submission, the `EntryHead` of its document, or None: when its validator computes
    the canonical bytes, or when the document has none (the append then raises the error in
    its usual order, inside the batch)."""
    heads: list[EntryHead | None] = []
    for sub in subs:
        head = None
        if canonical_of[sub.kind] is None:
            try:
                head = EntryHead(canonicalize(sub.document), sub.kind)
            except CanonicalizationError:
                pass
        heads.append(head)
    return heads


class Ledger:
    """A ledger opened on a home folder and a database. Safe to share between threads."""

    def __init__(
        self,
        home: Path,
        storage: SqlStorage,
        *,
        validators: Mapping[str, Validator] | None = None,
        checkpoint_every_batch: bool = True,
        cache_size: int = 100_000,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.home = Home(Path(home))
        # The ledger's receipt time of each batch (`utc_now`; the demo runs its story's).
        self.clock = clock
        self.storage = storage
        self.tree = TreeStore(storage, cache_size)
        self.validators = dict(validators or {})
        self.checkpoint_every_batch = checkpoint_every_batch
        self._cached_log_key: Any = None
        self._row_seal: RowSeal | None = None
        body = storage.entry_body(0) if storage.has_schema() else None
        if body is None:
            raise LedgerNotFoundError(f"no ledger in {storage.url} (run batterytrace init)")
        genesis = Entry.parse(body).document
        self.origin: str = genesis["origin"]
        self.public_url: str = genesis["publicUrl"]
        self.admin_did: str = genesis["adminKey"]
        # The home's log key is the trust anchor; entry 0 must name the same key.
        if self.home.log_key_path.exists():
            self.verifier = NoteVerifier.ed25519(self.origin, self.home.log_key().public_key)
            if self.verifier.vkey != genesis["logKey"]:
                raise LedgerForkError(
                    f"the database belongs to another log than {self.home.log_key_path}"
                )
        else:
            self.verifier = parse_verifier_key(genesis["logKey"])
        self._check_not_behind_checkpoint()

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, home: Path, database_url: str | None = None, **options: Any) -> Ledger:
        """Open an existing ledger; refused (LedgerForkError) when the database is behind or
        inconsistent with checkpoint.txt."""
        if database_url is None and not (Path(home) / DATABASE_FILE).exists():
            raise LedgerNotFoundError(f"no ledger in {home} (run batterytrace init)")
        storage = SqlStorage(database_url or sqlite_url(home))
        if not storage.has_schema():
            storage.close()
            raise LedgerNotFoundError(f"no ledger in {storage.url} (run batterytrace init)")
        before = storage.create_schema()  # upgrades an older schema; cheap when current
        ledger = cls(home, storage, **options)
        if (before is None or before < SEALED_REVISION) and ledger.row_seal is not None:
            ledger._seal_checkpoint_rows()
        return ledger

    @classmethod
    def init(
        cls,
        home: Path,
        database_url: str | None,
        origin: str,
        public_url: str = DEFAULT_PUBLIC_URL,
        **options: Any,
    ) -> Ledger:
        """Create keys (unless present), the schema, entry 0 and the first checkpoint."""
        place = Home(Path(home))
        if place.read_checkpoint() is not None:
            raise LedgerExistsError(f"{place.checkpoint_path} exists: {home} holds a ledger")
        place.create()
        log_key, admin_key = place.ensure_keys()
        storage = SqlStorage(database_url or sqlite_url(home))
        storage.create_schema()
        genesis = _admin_sign(
            {
                "type": "LedgerGenesis",
                "origin": origin,
                "publicUrl": public_url,
                "logKey": note_verifier_key(origin, log_key.public_key),
                "adminKey": admin_key.did_key,
                "created": utc_now(),
            },
            admin_key,
        )
        entry = Entry.build(0, GENESIS_PREV, "genesis", genesis)
        leaf = entry.leaf_hash
        head = Head(1, entry.hash, merkle.fold_right([leaf]))
        cp = Checkpoint(origin, 1, head.root)
        note = sign_checkpoint(cp, origin, log_key)
        with storage.write() as (session, current):
            if current is not None:
                raise LedgerExistsError(f"{storage.url} already holds a ledger")
            storage.insert_rows(session, ENTRIES, ENTRY_COLUMNS,
                                [(0, entry.kind, head.head, entry.canonical)])
            storage.store_nodes(session, [(0, 0, leaf)])
            first = CheckpointRecord(1, head.root, note, None, None)
            storage.insert(session, CHECKPOINTS,
                           [first.sealed_by(RowSeal.of_log_key(log_key)).to_row()])
            storage.set_head(session, head, create=True)
        place.write_checkpoint(note, cp, [NoteVerifier.ed25519(origin, log_key.public_key)])
        return cls(home, storage, **options)

    def close(self) -> None:
        self.storage.close()

    def _check_not_behind_checkpoint(self) -> None:
        note = self.home.read_checkpoint()
        if note is None:
            return  # never signed from this home (or the file was lost): nothing to hold to
        cp = open_checkpoint(note, [self.verifier], self.origin)
        size = self.size
        if size < cp.size:
            raise LedgerForkError(
                f"the database holds {size} entries but {self.home.checkpoint_path} was "
                f"signed at size {cp.size}: a restored backup must not continue the log",
                size=size, checkpoint_size=cp.size,
            )
        if self.tree.root(cp.size) != cp.root:
            raise LedgerForkError(
                f"the database's tree at size {cp.size} does not match "
                f"{self.home.checkpoint_path}: it is not the database that signed it",
                checkpoint_size=cp.size,
            )

    # --- appending -------------------------------------------------------------------------

    def append_batches(
        self, batches: Iterable[Sequence[Submission]]
    ) -> Iterator[list[AppendResult]]:
        """Append batches one after another (each atomic, as `append`), yielding each one's
        results. While a batch is written, the validators `prepare` the next one (its
        signature checks run in the worker processes meanwhile). The documents of a batch
        must not change once handed over."""
        pending = iter(batches)
        current = next(pending, None)
        while current is not None:
            upcoming = next(pending, None)
            yield self.append(current, upcoming=upcoming)
            current = upcoming

    def append(
        self, submissions: Sequence[Submission], *, upcoming: Sequence[Submission] | None = None
    ) -> list[AppendResult]:
        """Append a batch atomically (all or nothing) and, by default, sign a checkpoint.

        `upcoming`: the batch the caller appends next, announced to the validators'
        `prepare` (see `append_batches`)."""
        with bulk_work():
            return self._append(submissions, upcoming)

    def _append(
        self, submissions: Sequence[Submission], upcoming: Sequence[Submission] | None
    ) -> list[AppendResult]:
        subs = list(submissions)
        for sub in subs:
            if check_kind(sub.kind) == "genesis":
                raise EntryFormatError("only init writes the genesis entry")
            if not isinstance(sub.document, dict):
                raise EntryFormatError("a submission's document must be a JSON object")
        if not subs:
            return []
        log_key = self._log_key() if self.checkpoint_every_batch else None
        touched: set[int] = set()
        signed: tuple[Checkpoint, bytes] | None = None
        canonical_of = self._canonical_hooks(subs)
        # A document's canonical bytes, and the entry's bytes before `prev` (with their
        # hashing), do not depend on its position: made before the sequencer lock (other
        # writers append meanwhile), unless its validator computes the canonical bytes.
        early = _early_heads(subs, canonical_of)
        self._start_checks(subs)
        with self.storage.write() as (session, head):
            if head is None:
                raise LedgerNotFoundError("the database holds no ledger")
            if upcoming:
                self._prepare(upcoming)
            if head.size + len(subs) > MAX_SEQ:
                raise EntryFormatError(f"the log is full: positions end at {MAX_SEQ}")
            decisions = self._validate(session, head.size, subs)
            received = self.clock()
            results: list[AppendResult] = []
            rows: list[tuple[int, str, bytes, bytes]] = []
            leaves: list[bytes] = []
            seq, prev = head.size, head.head
            # The members are valid by construction (checked kinds, our own hashes and
            # clock, positions below 2^53): entries are spliced without Entry.build.
            tail = envelope_tail_template(received)
            made: dict[int, bytes] = {}  # this batch's entries, by seq: a repeat may name one
            for sub, existing, entry_head in zip(subs, decisions, early, strict=True):
                if existing is not None:
                    known = made.get(existing)
                    results.append(AppendResult(
                        existing, known if known is not None else self._hash_of(session, existing),
                        True))
                    continue
                if entry_head is None:
                    hook = canonical_of[sub.kind]
                    document_bytes = hook(sub.document) if hook is not None else None
                    entry_head = EntryHead(document_bytes or canonicalize(sub.document),
                                           sub.kind)
                body, prev, leaf = entry_head.finish(tail % (hexlify(prev), seq))
                made[seq] = prev
                rows.append((seq, sub.kind, prev, body))
                leaves.append(leaf)
                results.append(AppendResult(seq, prev, False))
                seq += 1
            if rows:
                # One read of every tile the batch writes or its frontier lies in (the
                # frontier and the consistency proof come from them, no query of their own);
                # then the writes (one COPY and one pipeline on PostgreSQL).
                edge_tiles, latest = self.storage.append_reads(
                    session, appended_tiles(head.size, len(leaves)) | frontier_tiles(head.size),
                    checkpoint=log_key is not None)
                below = TileOverlay(edge_tiles)
                created, _, root = extend(self.tree.frontier(head.size, below), leaves)
                new_head = Head(seq, prev, root)
                record = None
                if log_key is not None:
                    overlay = BatchOverlay(head.size, leaves, created, below)
                    signed, record = self._signature(new_head, log_key, overlay, latest)
                # Leaves (level 0) and the new complete subtrees go into the hash tiles.
                touched = self.storage.write_append(session, rows, created, head.size, leaves,
                                                    edge_tiles, new_head, record)
        self.tree.forget_tiles(touched)
        if signed is not None:
            self.home.write_checkpoint(signed[1], signed[0], [self.verifier])
        return results

    def _canonical_hooks(
        self, subs: Sequence[Submission]
    ) -> dict[str, Callable[[dict[str, Any]], bytes | None] | None]:
        """Per kind, the validator's `canonical` hook (a document's canonical bytes, when it
        already computed them while checking the signature), or None."""
        return {kind: getattr(self.validators.get(kind), "canonical", None)
                for kind in {sub.kind for sub in subs}}

    def _validate(
        self, session: Session, first_seq: int, subs: list[Submission]
    ) -> list[int | None]:
        return validate_runs(self.validators, session, first_seq, subs)

    def _start_checks(self, subs: Sequence[Submission]) -> None:
        """Before the sequencer lock: a batch of one kind has its validator's `start` hook
        (position-independent checks, such as signatures) called, so those checks run while
        this writer waits for the lock."""
        kinds = {sub.kind for sub in subs}
        if len(kinds) == 1:
            start = getattr(self.validators.get(kinds.pop()), "start", None)
            if start is not None:
                start(subs)

    def _prepare(self, submissions: Sequence[Submission]) -> None:
        by_kind: dict[str, list[Submission]] = {}
        for sub in submissions:
            by_kind.setdefault(sub.kind, []).append(sub)
        for kind, subs in by_kind.items():
            prepare = getattr(self.validators.get(kind), "prepare", None)
            if prepare is not None:
                prepare(subs)

    def _hash_of(self, session: Session, seq: int) -> bytes:
        h = self.storage.entry_hash_in(session, seq)
        if h is None:
            raise EntryNotFoundError(f"a validator named entry {seq} that does not exist")
        return h

    def _sign_locked(
        self,
        session: Session,
        head: Head,
        log_key: Any,
        overlay: Mapping[tuple[int, int], bytes] | None = None,
    ) -> tuple[Checkpoint, bytes]:
        """Sign the checkpoint of `head` inside the write transaction, after proving it
        consistent with the last checkpoint in the database and the one in checkpoint.txt."""
        signed, record = self._signature(head, log_key, overlay,
                                         self.storage.latest_checkpoint_in(session))
        if record is not None:
            self.storage.insert(session, CHECKPOINTS, [record.to_row()])
        return signed

    def _signature(
        self,
        head: Head,
        log_key: Any,
        overlay: Mapping[tuple[int, int], bytes] | None,
        latest: CheckpointRecord | None,
    ) -> tuple[tuple[Checkpoint, bytes], CheckpointRecord | None]:
        """`_sign_locked` without the write, given the latest checkpoint row read in this
        transaction: the signed checkpoint, and the sealed row to insert (None when the
        latest row already is this checkpoint)."""
        previous: list[tuple[int, bytes]] = []
        if latest is not None:
            # The row this checkpoint is proven consistent with must be the ledger's own.
            if self.row_seal is not None:
                latest.check_seal(self.row_seal)
            previous.append((latest.size, latest.root))
        note = self.home.read_checkpoint()
        if note is not None:
            file_cp = open_checkpoint(note, [self.verifier], self.origin)
            previous.append((file_cp.size, file_cp.root))
        for size, root in previous:
            if size > head.size:
                raise LedgerForkError(
                    f"refusing to sign size {head.size}: a checkpoint of size {size} exists",
                    size=head.size, checkpoint_size=size,
                )
            if size == head.size:
                if root != head.root:
                    raise LedgerForkError(f"refusing to sign a second root for size {size}")
                continue
            proof = self.tree.consistency_proof(size, head.size, overlay)
            try:
                merkle.verify_consistency(size, head.size, root, head.root, proof)
            except merkle.ProofError as exc:
                raise LedgerForkError(
                    f"refusing to sign size {head.size}: not consistent with the checkpoint "
                    f"of size {size} ({exc.message})", checkpoint_size=size,
                ) from exc
        if latest is not None and latest.size == head.size:
            return (Checkpoint(self.origin, head.size, head.root), latest.note), None
        cp = Checkpoint(self.origin, head.size, head.root)
        signed = sign_checkpoint(cp, self.origin, log_key)
        row = CheckpointRecord(cp.size, cp.root, signed, None if latest is None else latest.size,
                               None).sealed_by(self.row_seal)
        return (cp, signed), row

    def _log_key(self) -> Any:
        """The home's log key, read once (entry 0 fixes which key the log signs with)."""
        if self._cached_log_key is None:
            self._cached_log_key = self.home.log_key()
        return self._cached_log_key

    def _seal_checkpoint_rows(self) -> None:
        """Chain and seal the checkpoint rows of a database made before schema 0005. Only
        rows whose note verifies under the log key, for the row's size and root, are sealed:
        any other is left for `ledger verify` to name."""
        seal = self.row_seal
        assert seal is not None
        with self.storage.write() as (session, _head):
            connection = session.connection()
            rows = connection.execute(select(CHECKPOINTS.c.size, CHECKPOINTS.c.root,
                                             CHECKPOINTS.c.note)
                                      .order_by(CHECKPOINTS.c.size)).all()
            before: int | None = None
            for size, root, note in rows:
                try:
                    cp = open_checkpoint(bytes(note), [self.verifier], self.origin)
                except Exception:  # left unsealed: `ledger verify` names it
                    continue
                if (cp.size, cp.root) != (size, bytes(root)):
                    continue
                record = CheckpointRecord(size, bytes(root), bytes(note), before, None)
                connection.execute(
                    update(CHECKPOINTS).where(CHECKPOINTS.c.size == size)
                    .values(previous=before, seal=record.sealed_by(seal).seal))
                before = size

    @property
    def row_seal(self) -> RowSeal | None:
        """The seal of the derived rows writes trust (`seal.py`); None when this home does not
        hold the log key (such a process cannot append: it cannot sign checkpoints)."""
        if self._row_seal is None and self.home.log_key_path.exists():
            self._row_seal = RowSeal.of_log_key(self._log_key())
        return self._row_seal

    def sign_checkpoint(self) -> tuple[Checkpoint, bytes]:
        """Sign a checkpoint of the current size now (or return the one already signed)."""
        log_key = self._log_key()
        with self.storage.write() as (session, head):
            if head is None:
                raise LedgerNotFoundError("the database holds no ledger")
            cp, note = self._sign_locked(session, head, log_key)
        self.home.write_checkpoint(note, cp, [self.verifier])
        return cp, note

    def keep_cosigned_note(self, cp: Checkpoint, note: bytes) -> bool:
        """Store `note` (checkpoint `cp` signed by the log, with witness cosignatures added)
        in place of the stored note of `cp`, and in checkpoint.txt when it still holds `cp`.
        Refused (LedgerForkError) when the note is not the log's signed `cp`."""
        signed = open_checkpoint(note, [self.verifier], self.origin)
        if (signed.size, signed.root) != (cp.size, cp.root):
            raise LedgerForkError(f"the cosigned note is not the checkpoint of size {cp.size}")
        with self.storage.write() as (session, _head):
            stored = self.storage.replace_checkpoint_note(session, cp.size, note,
                                                          self.row_seal)
        self.home.write_cosigned_checkpoint(note, cp, [self.verifier])
        return bool(stored)

    # --- settings --------------------------------------------------------------------------

    def update_settings(self, values: dict[str, Any]) -> AppendResult:
        """Append an admin-signed LedgerSettings entry; later entries override earlier keys."""
        if not isinstance(values, dict) or not values:
            raise EntryFormatError("settings must be a non-empty JSON object")
        document = _admin_sign(
            {"type": "LedgerSettings", "settings": values}, self.home.admin_key()
        )
        return self.append([Submission("settings", document)])[0]

    def settings_at(self, seq: int) -> dict[str, Any]:
        """The ledger settings in force at log position `seq` (entries up to and including it)."""
        merged: dict[str, Any] = {}
        for body in self.storage.iter_settings(seq + 1):
            merged.update(json.loads(body)["document"]["settings"])
        return merged

    # --- reading ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        head = self.storage.head()
        return head.size if head else 0

    def entry(self, seq: int) -> Entry:
        """The entry at `seq` (EntryNotFoundError past the end)."""
        body = self.storage.entry_body(seq) if isinstance(seq, int) and seq >= 0 else None
        if body is None:
            raise EntryNotFoundError(f"no entry {seq} (log size {self.size})", seq=seq)
        return Entry.parse(body)

    def iter_entries(self, start: int = 0, end: int | None = None) -> Iterator[Entry]:
        """Entries from `start` to `end` (exclusive), streamed in constant memory."""
        for _, body in self.storage.iter_bodies(start, end):
            yield Entry.parse(body)

    def iter_entry_bytes(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stored canonical bytes of the entries, streamed (what `verify_log` reads)."""
        for _, body in self.storage.iter_bodies(start, end):
            yield body

    def latest_checkpoint(self) -> tuple[Checkpoint, bytes]:
        """The largest signed checkpoint and its note."""
        latest = self.storage.latest_checkpoint()
        if latest is None:
            raise CheckpointNotSignedError("no checkpoint has been signed yet")
        size, root, note = latest
        return Checkpoint(self.origin, size, root), note

    def checkpoint_note(self, size: int) -> bytes:
        """The note of the checkpoint signed at `size` (CheckpointNotSignedError if none)."""
        stored = self.storage.checkpoint(size)
        if stored is None:
            raise CheckpointNotSignedError(f"no checkpoint was signed at size {size}", size=size)
        return stored[1]

    def published_checkpoint(self) -> tuple[Checkpoint, bytes]:
        """The latest signed checkpoint as it is published (its stored note carries the
        witnesses' cosignatures, `keep_cosigned_note`), checked to open with the log key
        and to carry the stored size and root (LedgerForkError otherwise: a damaged row is
        never published)."""
        cp, note = self.latest_checkpoint()
        signed = open_checkpoint(note, [self.verifier], self.origin)
        if (signed.size, signed.root) != (cp.size, cp.root):
            raise LedgerForkError(f"the stored note of size {cp.size} is not its checkpoint")
        return cp, note

    def subtree_hashes(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Hashes of complete subtrees (level, index) from the stored tree tiles."""
        return self.tree.subtrees(keys)

    def entry_bytes(self, start: int, end: int) -> list[bytes]:
        """The canonical bytes (leaf data) of entries [start, end)."""
        return list(self.iter_entry_bytes(start, end))

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root at `size` (default: the current size)."""
        return self.tree.root(self._size_arg(size))

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of entry `seq` in the tree of `size` (default: the latest signed
        checkpoint's size)."""
        size = self.latest_checkpoint()[0].size if size is None else self._size_arg(size)
        if not isinstance(seq, int) or not 0 <= seq < size:
            raise EntryNotFoundError(f"no entry {seq} in a tree of size {size}", seq=seq)
        return self.tree.inclusion_proof(seq, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Consistency proof between tree sizes `old` and `new` (1 <= old <= new <= size)."""
        new = self._size_arg(new)
        if not isinstance(old, int) or not 1 <= old <= new:
            raise EntryNotFoundError(f"no consistency proof from size {old} to {new}")
        return self.tree.consistency_proof(old, new)

    def tlog_proof(self, seq: int, size: int | None = None) -> bytes:
        """C2SP tlog-proof file for entry `seq` against the latest signed checkpoint, or the
        one signed at `size`."""
        if size is None:
            cp, note = self.latest_checkpoint()
            size = cp.size
        else:
            note = self.checkpoint_note(size)
        return format_proof(seq, self.inclusion_proof(seq, size), note)

    def info(self) -> dict[str, Any]:
        """Origin, size, root, verifier key and where things are."""
        head = self.storage.head()
        assert head is not None
        latest = self.storage.latest_checkpoint()
        return {
            "origin": self.origin,
            "size": head.size,
            "root": head.root.hex(),
            "verifierKey": self.verifier.vkey,
            "publicUrl": self.public_url,
            "adminKey": self.admin_did,
            "checkpointSize": latest[0] if latest else 0,
            "treeCache": self.tree.cache_info(),
        }

    def _size_arg(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not isinstance(size, int) or not 0 <= size <= current:
            raise EntryNotFoundError(f"tree size {size} is past the log size {current}")
        return size



def _admin_sign(document: dict[str, Any], admin_key: Any) -> dict[str, Any]:
    """Sign an administrative document with the admin key (Data Integrity eddsa-jcs-2022)."""
    return sign(document, admin_key)


def verify_ledger(
    home: Path, database_url: str | None = None, progress: Any = None
) -> tuple[LogSummary, int]:
    """`verify_log` over a stored ledger, trusting only the home's log key and checkpoint.txt.

    Reads the database directly (not through `Ledger.open`, whose checks would stop at the
    first damaged entry without naming it). Returns the summary and the number of entries the
    sequencer row claims. The stored subtree hashes must give the verified root too.
    """
    storage = SqlStorage(database_url or sqlite_url(home))
    try:
        chain, claimed = stored_log_chain(Home(Path(home)), storage)
        summary = run_chain(chain, (body for _, body in storage.iter_bodies()),
                            progress=progress)
        check_stored_head(storage, summary, claimed)
        return summary, claimed
    finally:
        storage.close()


def stored_log_chain(place: Home, storage: SqlStorage) -> tuple[LogChain, int]:
    """`verify_ledger`'s chain, to be fed every stored entry (`LogChain.link_entry`): every
    stored checkpoint note with checkpoint.txt's in its place by size, opened with the home's
    log key; and the number of entries the sequencer row claims. Raises LedgerNotFoundError
    without a ledger or checkpoint.txt, or the checkpoint error of the first note."""
    file_note = place.read_checkpoint()
    head = storage.head() if storage.has_schema() else None
    if head is None or file_note is None:
        raise LedgerNotFoundError(f"no ledger in {place.path} (run batterytrace init)")
    origin = parse_checkpoint_body(file_note.split(b"\n\n", 1)[0] + b"\n").origin
    verifier = NoteVerifier.ed25519(origin, place.log_key().public_key)
    file_size = open_checkpoint(file_note, [verifier], origin).size
    notes = _merge_notes(storage.iter_checkpoints(), file_size, file_note)
    return LogChain(notes, [verifier], origin), head.size


def check_stored_head(storage: SqlStorage, summary: LogSummary, claimed: int) -> None:
    """After the chain of `stored_log_chain`: the sequencer row claims as many entries as are
    stored (LogEntryError), and the stored subtree hashes give the root of the largest
    checkpoint (LedgerForkError)."""
    if summary.size != claimed:
        raise LogEntryError(
            min(summary.size, claimed),
            f"{summary.size} entries are stored but the sequencer says {claimed}",
        )
    cp = summary.checkpoint
    if TreeStore(storage, cache_size=1024).root(cp.size) != cp.root:
        raise LedgerForkError(
            f"the stored subtree hashes do not give the root of checkpoint {cp.size}"
        )


def _merge_notes(
    stored: Iterator[tuple[int, bytes]], file_size: int, file_note: bytes
) -> Iterator[bytes]:
    """The database's checkpoint notes with checkpoint.txt's in its place by size."""
    pending = True
    for size, note in stored:
        if pending and size >= file_size:
            pending = False
            if size > file_size:
                yield file_note
        yield note
    if pending:
        yield file_note
