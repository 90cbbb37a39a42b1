"""Credential anchors, stored: the anchor book in the `credential_anchor` table and the
validator of "anchor" entries (the engine's `check_anchor` inside the Ledger's write
transaction). The rules themselves are pure, in `anchors`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from .anchors import (
    ANCHOR_KIND,
    Anchor,
    AnchorBook,
    AnchorRecord,
    check_anchor,
    document_digest,
)
from .custody_store import StoredRegistry, ensure_schema
from .log import Ledger
from .seal import RowSeal
from .tables import CREDENTIAL_ANCHOR

ANCHOR_TABLE = CREDENTIAL_ANCHOR.name


class StoredAnchorBook(AnchorBook):
    """An AnchorBook reading its rows lazily through a connection."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection

    def _load(self, table: str, key: Any) -> Any:
        t = CREDENTIAL_ANCHOR
        text = self.connection.execute(
            select(t.c.value).where(t.c.tbl == table, t.c.key == key)
        ).scalar()
        if text is None:
            return None
        data = json.loads(text)
        return AnchorRecord.from_json(data) if table == "record" else data

    def prefetch(self, table: str, keys: Iterable[str]) -> None:
        """Load the rows of `keys` in one query (a batch reads them all anyway)."""
        t = CREDENTIAL_ANCHOR
        wanted = [k for k in set(keys) if k not in self.tables[table]]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = dict(self.connection.execute(
                select(t.c.key, t.c.value).where(t.c.tbl == table, t.c.key.in_(chunk))).all())
            for key in chunk:
                text = rows.get(key)
                data = None if text is None else json.loads(text)
                if data is not None and table == "record":
                    data = AnchorRecord.from_json(data)
                self.tables[table][key] = data

    def write(self) -> None:
        """Write back the rows changed since the book was opened."""
        changes = self.changed()
        if not changes:
            return
        t = CREDENTIAL_ANCHOR
        # Only rows that were stored before are deleted (a batch of issuances adds new rows
        # only): the journal's first entry for a key holds the value loaded from storage.
        stored: set[tuple[str, Any]] = set()
        seen: set[tuple[str, Any]] = set()
        for tbl, key, old in self.journal:
            if (tbl, key) not in seen:
                seen.add((tbl, key))
                if old is not None:
                    stored.add((tbl, key))
        for table in self.table_names:
            keys = [k for (tbl, k) in changes if tbl == table and (tbl, k) in stored]
            for start in range(0, len(keys), 500):
                self.connection.execute(delete(t).where(
                    t.c.tbl == table, t.c.key.in_(keys[start:start + 500])))
        rows = [{"tbl": tbl, "key": key, "value": encode_anchor_value(value)}
                for (tbl, key), value in changes.items() if value is not None]
        if rows:
            self.connection.execute(insert(t), rows)


def encode_anchor_value(value: Any) -> str:
    """A credential_anchor row's stored text (an anchor record, or a position)."""
    return json.dumps(value.to_json() if isinstance(value, AnchorRecord) else value)


def open_book(connection: Connection) -> StoredAnchorBook:
    """The stored anchor book (creating its table if needed)."""
    CREDENTIAL_ANCHOR.create(connection, checkfirst=True)
    return StoredAnchorBook(connection)


class AnchorValidator:
    """Validator of "anchor" entries (see `ledger.log.Validator`).

    `on_applied(connection, [(anchor, document, position), ...])`, when set, runs once per batch
    with the new anchors, in the same transaction (the credential store writes credentials and
    status bits there, so a rejected batch writes nothing).

    `signed_here` holds the anchors that THIS process has just signed and hands over without
    letting go of them (the credential store fills it around its own appends): by `id()` of
    the document object, (that object, its `document_digest`, the public key that signed it).
    For such a document (the very object, not an equal one) the digest is not recomputed and
    the Ed25519 equation is not re-run, as it could only succeed. Everything else still is:
    the proof's shape, purpose and times, and that its method resolves, at the anchor's log
    position, to that very key of the issuer. Every other anchor is verified in full.

    `signed_bytes` holds, by the same `id()`, the canonical bytes of such a document when the
    signer computed them (its digest was taken from them): `canonical` hands them to the log
    so that the entry does not canonicalize the anchor again.
    """

    def __init__(self, admin_did: str, public_url: str, on_applied: Any = None,
                 seal: RowSeal | None = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        self.on_applied = on_applied
        self.seal = seal  # checks the registry rows read (`seal.py`)
        self.signed_here: dict[int, tuple[dict[str, Any], str, bytes]] = {}
        self.signed_bytes: dict[int, bytes] = {}

    def canonical(self, document: dict[str, Any]) -> bytes | None:
        """The RFC 8785 bytes of an anchor signed here (see `ledger.log.Preparing`), else
        None. Only the very object handed over counts, as for `signed_here`."""
        mine = self.signed_here.get(id(document))
        if mine is None or mine[0] is not document:
            return None
        return self.signed_bytes.get(id(document))

    def validate(self, session: Session, first_seq: int, submissions: Sequence[Any]
                 ) -> list[int | None]:
        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url, self.seal)
        book = open_book(connection)
        documents = [sub.document for sub in submissions]
        # Each document is hashed once (or not at all when signed here), for the prefetch
        # and the dedupe.
        shas: list[str | None] = []
        keys: list[bytes | None] = []
        for d in documents:
            mine = self.signed_here.get(id(d))
            if mine is not None and mine[0] is d:
                shas.append(mine[1])
                keys.append(mine[2])
            else:
                shas.append(document_digest(d) if isinstance(d, dict) else None)
                keys.append(None)
        book.prefetch("document", [s for s in shas if s is not None])
        book.prefetch("record", [d["credentialId"] for d in documents
                                 if isinstance(d, dict) and isinstance(d.get("credentialId"), str)])
        answers: list[int | None] = []
        applied: list[tuple[Anchor, dict[str, Any], int]] = []
        position = first_seq
        for document, sha, key in zip(documents, shas, keys, strict=True):
            anchor, seen = check_anchor(registry, book, document, position, sha=sha,
                                        signed_here_by=key)
            answers.append(seen)
            if seen is None:
                applied.append((anchor, document, position))
                position += 1  # a deduplicated anchor takes no position
        book.write()
        if self.on_applied is not None and applied:
            self.on_applied(connection, applied)
        return answers


def anchor_validators(ledger: Ledger, on_applied: Any = None) -> dict[str, AnchorValidator]:
    """{"anchor": AnchorValidator} for a ledger (add to `ledger.validators`)."""
    return {ANCHOR_KIND: AnchorValidator(ledger.admin_did, ledger.public_url, on_applied)}


def read_record(ledger: Ledger, credential_id: str) -> AnchorRecord | None:
    """The stored anchor record of a credential (None if never anchored)."""
    with ledger.storage.engine.begin() as connection:
        return open_book(connection).record(credential_id)


__all__ = ["AnchorValidator", "StoredAnchorBook", "anchor_validators", "open_book",
           "read_record"]
