"""The in-memory network: the engine's replay (`ledger.engine.Replay`) without a database.

`MemoryNetwork` applies registry documents and event credentials made by the builders
(`api/demo_builders.py`), signed with their keys, and lets the engine judge them like any log
entry. The tests subclass it with their own builders (`tests/custody_factory.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from batterytrace.ledger.engine import Replay
from batterytrace.ledger.registry import apply_registry

from .demo_builders import Builders, digest_of


class MemoryNetwork:
    """The engine's replay (`ledger.engine.Replay`) in memory, log positions counted as
    documents apply. Documents are signed here with the builders' keys (the admin key for
    registry documents, the issuer's key for events) and then judged by the engine like any
    entry. Subclasses set `builders` (the keys and base URL the documents were made with)."""

    builders: Builders = Builders()

    def __init__(self, tolerance: Decimal | str = "0") -> None:
        self.replay = Replay()
        self.replay.start(self.builders.admin_key.did_key, self.builders.public_url)
        self.registry, self.state = self.replay.started()
        self.state.tolerance = Decimal(tolerance)
        self.position = 0

    @classmethod
    def standard(cls, tolerance: Decimal | str = "0") -> MemoryNetwork:
        net = cls(tolerance)
        for doc in cls.builders.registry_docs():
            net.register(doc)
        return net

    def register(self, document: Mapping[str, Any], signers: Iterable[str] | None = None) -> Any:
        """Apply a registry document signed by the admin key (`sign_admin` unless it carries a
        proof). `signers`: the registry rule alone with that signer list taken as given, for
        tests of who may sign what (no proof is made or checked)."""
        self.position += 1
        if signers is not None:
            return apply_registry(self.registry, document, self.position, list(signers),
                                  digest_of(document))
        signed = document if "proof" in document else self.builders.sign_admin(dict(document))
        return self._apply("registry", signed)

    def apply(self, document: Mapping[str, Any]) -> int | None:
        """Apply an event credential, signed as its issuer unless it carries a proof."""
        self.position += 1
        signed = dict(document)
        if "proof" not in signed:
            issuer = signed.get("issuer")
            did = issuer.get("id") if isinstance(issuer, Mapping) else None
            name = str(did).rsplit(":", 1)[-1]
            if did == self.builders.did_for(name):
                signed = self.builders.sign_as(signed, name)
        return self._apply("event", signed)

    def _apply(self, kind: str, document: dict[str, Any]) -> int | None:
        try:
            return self.replay.apply(self.position, kind, document)
        finally:
            self.replay.forget_undo()

    def events(self, issuer: str, *events: Mapping[str, Any]) -> int | None:
        return self.apply(self.builders.credential(issuer, events))
