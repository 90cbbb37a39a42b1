"""did:web documents the ledger serves: its participants' and its own.

- A participant's DID (`did:web:<host>:participants:<name>`) resolves, by the did:web URL
  transform, to `https://<host>/participants/<name>/did.json`. `participant_did_document` is
  the registry's document at a log position (`Registry.did_document`: the keys valid there, in
  `assertionMethod` and `authentication`) with EVERY key the registry ever held for the
  participant in `verificationMethod`, each with its `keyValidity` (`validFrom`, `validUntil`:
  log positions, the end exclusive; `endedBy`; `recovery`): a resolver sees the key history, and
  only the keys valid now may assert.
- The ledger's own DID (`did:web:<host>`, or `did:web:<host>:<path>` under a path) resolves to
  `https://<host>/.well-known/did.json` (`<path>/did.json`): `ledger_did_document` lists the
  admin key (signs registry entries: `#admin`) and the log key (signs checkpoints: `#log`), and
  the ledger's public URL as a `LinkedDomains` service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from batterytrace.credentials.keys import encode_public_multibase

from .checkpoint import parse_verifier_key
from .registry import Registry

DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
KEY_VALIDITY = {"keyValidity": {"@id": "https://batterytrace.dev/vocab#keyValidity",
                                "@type": "@json"}}


def ledger_did(public_url: str) -> str:
    """The ledger's did:web: its public URL's host (port as `%3A`) and path segments."""
    parts = urlsplit(public_url)
    if not parts.hostname:
        raise ValueError(f"public URL {public_url!r} has no host")
    authority = parts.hostname + (f"%3A{parts.port}" if parts.port else "")
    return ":".join(["did:web", authority, *[s for s in parts.path.split("/") if s]])


def participant_did_document(registry: Registry, did: str, position: int) -> dict[str, Any]:
    """The served DID document of a participant at `position`: every key with its validity."""
    document = registry.did_document(did, position)
    methods = []
    for key in registry.keys_of(did):
        validity: dict[str, Any] = {"validFrom": key.valid_from}
        if key.valid_until is not None:
            validity["validUntil"] = key.valid_until
        if key.ended_by is not None:
            validity["endedBy"] = key.ended_by
        if key.recovery:
            validity["recovery"] = True
        methods.append({**key.to_multikey(), "keyValidity": validity})
    return {**document, "@context": [*DID_CONTEXTS, KEY_VALIDITY],
            "verificationMethod": methods}


def ledger_did_document(public_url: str, admin_did: str, log_key: str) -> dict[str, Any]:
    """The ledger's DID document: its admin key (`admin_did`, a did:key) and log key (the
    C2SP verifier key `log_key`) as Multikeys."""
    did = ledger_did(public_url)
    admin = admin_did.removeprefix("did:key:")
    log = encode_public_multibase(parse_verifier_key(log_key).public_key)
    methods = [
        {"id": f"{did}#admin", "type": "Multikey", "controller": did,
         "publicKeyMultibase": admin},
        {"id": f"{did}#log", "type": "Multikey", "controller": did,
         "publicKeyMultibase": log},
    ]
    return {
        "@context": list(DID_CONTEXTS),
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [f"{did}#admin", f"{did}#log"],
        "authentication": [f"{did}#admin"],
        "service": [{"id": f"{did}#ledger", "type": "LinkedDomains",
                     "serviceEndpoint": public_url.rstrip("/") + "/"}],
    }


__all__ = ["ledger_did", "ledger_did_document", "participant_did_document"]
