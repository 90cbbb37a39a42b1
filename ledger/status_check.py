"""The stored status lists against the log's anchors (part of `ledger verify` and `repair`).

A `status_list` row is the issuer's store, but its bits follow from the log: a revocation
anchor sets the revocation bit of its credential, a suspension sets the suspension bit and a
reinstatement clears it (`credential_store._on_applied`, in the anchor's transaction). So for
each stored list the bits are recomputed from the anchor book of the engine's replay and
compared. Besides the bits:

- every index an issuance anchor names must be marked allocated (a free index would be handed
  out again, and two credentials would share a bit);
- only anchors by the list's own issuer count (any participant can name any URL); the list
  must belong to the issuer of the stored credentials that name it, and its URL must be the
  one the store gives it (`.../<purpose>/<number>`, one number per issuer and purpose);
- a list of this ledger (under its `/status-lists/`) named by a credential stored here must
  be stored.

`ledger repair --from-entries` rewrites the bits from the anchors, marks the named indexes
allocated (and the list for republishing); what the log does not hold (a deleted list's
length and allocations, an issuer) it reports instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.status_list import MIN_BITS, StatusList
from sqlalchemy import delete, insert, inspect, select, update
from sqlalchemy.engine import Connection

from .anchors import AnchorBook, AnchorRecord
from .mismatch import DerivedMismatch
from .tables import CREDENTIAL_RECORD, STATUS_LIST

TABLE = STATUS_LIST.name


def _bit_of(record: AnchorRecord, purpose: str) -> bool:
    if purpose == "revocation":
        return record.revoked_at() is not None
    if purpose == "suspension":
        return record.suspended_at() is not None
    return False


def _named_entries(book: AnchorBook) -> dict[str, list[tuple[int, AnchorRecord, str]]]:
    """List URL -> (index, record, purpose) of every status entry an issuance anchor names."""
    named: dict[str, list[tuple[int, AnchorRecord, str]]] = defaultdict(list)
    for _, value in book.rows("record"):
        if isinstance(value, AnchorRecord):
            for purpose, index, url in value.status:
                named[url].append((int(index), value, purpose))
    return named


class _ListShape(NamedTuple):
    issuer: str
    purpose: str
    length: int


def _own(row: Any, entries: list[tuple[int, AnchorRecord, str]]
         ) -> list[tuple[int, AnchorRecord, str]]:
    """The entries of anchors by the list's own issuer: another issuer's credential that
    names this list (any participant can write any URL) changes nothing in it."""
    return [entry for entry in entries if entry[1].issuer == row.issuer]


def _expected_bits(row: Any, entries: list[tuple[int, AnchorRecord, str]]) -> StatusList:
    want = StatusList(row.length)
    for index, record, purpose in _own(row, entries):
        if purpose == row.purpose and 0 <= index < row.length and _bit_of(record, purpose):
            want.set(index)
    return want


def _stored_lists(connection: Connection) -> Iterator[Any]:
    if inspect(connection).has_table(TABLE):
        yield from connection.execute(select(STATUS_LIST).order_by(STATUS_LIST.c.url))


def _check_row(row: Any, entries: list[tuple[int, AnchorRecord, str]],
               numbers: set[tuple[str, str, int]], kept: set[str]) -> DerivedMismatch | None:
    where = f"url={row.url}"
    try:
        bits = StatusList(row.length, data=row.bits)
        allocated = StatusList(row.length, data=row.allocated)
    except (BatterytraceError, ValueError) as exc:
        return DerivedMismatch(TABLE, where, f"bitstrings of {row.length} bits",
                               getattr(exc, "message", str(exc)))
    if not row.url.endswith(f"/{row.purpose}/{row.number}"):
        return DerivedMismatch(TABLE, where, f"a URL ending /{row.purpose}/{row.number}",
                               row.url)
    if (row.issuer, row.purpose, row.number) in numbers:
        return DerivedMismatch(TABLE, where, f"one list numbered {row.number}",
                               "a second list with that number")
    numbers.add((row.issuer, row.purpose, row.number))
    for _index, record, _purpose in entries:
        if record.credential_id in kept and record.issuer != row.issuer:
            return DerivedMismatch(TABLE, where, f"issuer {record.issuer}",
                                   f"issuer {row.issuer}")
    for index, record, purpose in _own(row, entries):
        if purpose == row.purpose and 0 <= index < row.length and not allocated.get(index):
            return DerivedMismatch(TABLE, f"{where} index={index}",
                                   f"allocated (named by {record.credential_id})", "free")
    want = _expected_bits(row, entries)
    if want.to_bytes() != bytes(row.bits):
        index = next(i for i in range(row.length) if want.get(i) != bits.get(i))
        return DerivedMismatch(TABLE, f"{where} index={index}",
                               "set" if want.get(index) else "clear (no anchor sets it)",
                               "clear" if want.get(index) else "set")
    return None


def check_status_lists(connection: Connection, book: AnchorBook, public_url: str
                       ) -> DerivedMismatch | None:
    """The first stored status list whose bits, allocation, issuer or URL the anchors
    contradict, or a list of this ledger named by a stored credential and not stored."""
    named = _named_entries(book)
    numbers: set[tuple[str, str, int]] = set()
    stored: set[str] = set()
    kept = _stored_credentials(connection)
    for row in _stored_lists(connection):
        stored.add(row.url)
        found = _check_row(row, named.get(row.url, []), numbers, kept)
        if found is not None:
            return found
    ours = public_url.rstrip("/") + "/status-lists/"
    for url in sorted(named):
        if not url.startswith(ours) or url in stored:
            continue
        for _index, record, _purpose in named[url]:
            if record.credential_id in kept:
                return DerivedMismatch(TABLE, f"url={url}",
                                       f"the list named by {record.credential_id}", "(no row)")
    return None


def _stored_credentials(connection: Connection) -> set[str]:
    """Ids of the credentials stored here: issued through this store, from its own lists."""
    if not inspect(connection).has_table(CREDENTIAL_RECORD.name):
        return set()
    return {cid for (cid,) in connection.execute(select(CREDENTIAL_RECORD.c.id))}


def rebuild_status_lists(connection: Connection, book: AnchorBook, public_url: str) -> int:
    """Rewrite each stored list's bits from the anchors and mark the indexes they name
    allocated (the list then waits to be republished), drop copies no credential names under
    a URL the store never gives, and recreate the deleted lists of stored credentials; in the
    caller's transaction. Returns the lists written."""
    named = _named_entries(book)
    rewritten = 0
    numbers: set[tuple[str, str, int]] = set()
    for row in list(_stored_lists(connection)):
        entries = named.get(row.url, [])
        number = (row.issuer, row.purpose, row.number)
        if not entries and (number in numbers
                            or not row.url.endswith(f"/{row.purpose}/{row.number}")):
            # A copy under a URL the store never gives, that no credential names.
            connection.execute(delete(STATUS_LIST).where(STATUS_LIST.c.url == row.url))
            rewritten += 1
            continue
        numbers.add(number)
        try:
            want = _expected_bits(row, entries).to_bytes()
            allocated = StatusList(row.length, data=row.allocated)
        except (BatterytraceError, ValueError):
            continue  # a length that is not a list's: reported, not repairable here
        for index, _record, purpose in _own(row, entries):
            if purpose == row.purpose and 0 <= index < row.length:
                allocated.set(index)
        if want != bytes(row.bits) or allocated.to_bytes() != bytes(row.allocated):
            connection.execute(update(STATUS_LIST).where(STATUS_LIST.c.url == row.url)
                               .values(bits=want, allocated=allocated.to_bytes(), stale=1))
            rewritten += 1
    rewritten += _restore_deleted(connection, named, public_url)
    return rewritten


def _restore_deleted(connection: Connection,
                     named: dict[str, list[tuple[int, AnchorRecord, str]]],
                     public_url: str) -> int:
    """Recreate the lists of this ledger that stored credentials name and that are gone:
    issuer, purpose and number from the anchors and the URL, the named indexes allocated,
    bits from the anchors, to be republished. The length is the store's default unless an
    index needs more (a list's length is not in the log)."""
    ours = public_url.rstrip("/") + "/status-lists/"
    stored = {row.url for row in _stored_lists(connection)}
    kept = _stored_credentials(connection)
    restored = 0
    for url, entries in sorted(named.items()):
        if (not url.startswith(ours) or url in stored
                or not any(record.credential_id in kept for _i, record, _p in entries)):
            continue
        _, purpose, number = url.rsplit("/", 2)
        issuer = next(r.issuer for _i, r, _p in entries if r.credential_id in kept)
        entries = [entry for entry in entries if entry[1].issuer == issuer]
        length = max(MIN_BITS, -(-(max(i for i, _r, _p in entries) + 1) // 8) * 8)
        allocated = StatusList(length)
        for index, _record, _purpose in entries:
            allocated.set(index)
        row = _ListShape(issuer, purpose, length)
        connection.execute(insert(STATUS_LIST), [{
            "url": url, "issuer": issuer, "purpose": purpose,
            "number": int(number) if number.isdigit() else 0, "length": length,
            "bits": _expected_bits(row, entries).to_bytes(),
            "allocated": allocated.to_bytes(), "allocated_count": len(entries),
            "published": None, "stale": 1,
        }])
        restored += 1
    return restored


__all__ = ["check_status_lists", "rebuild_status_lists"]
