"""An issuer registry in the shape of B.C. Digital Trust's
(`{"issuers": [{"id": DID, "name": ..., "scope": ...}]}`, as
`../shared/domain/samples/bcgov/issuer-registrations-prod.json`) turned into trust file entries.

Trust still comes only from the verifier's own file: the registry is read once, offline, by
the operator who decides to rely on it (`batterytrace trust import-registry`). For each issuer:

- with its DID document handed in (never fetched: the registry names did:web DIDs, and the
  operator fetches and inspects the documents first), a `[[pinned_did_document]]` entry (the
  SHA-256 of the RFC 8785 form), and, with `as_roots`, a `[[governance_root]]` whose keys are the
  document's Ed25519 assertion keys (`Multikey` or `Ed25519VerificationKey2018/2020`) named
  "<name> (<scope>)";
- without one: skipped, with the did:web URL its document is published at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from batterytrace.credentials.base58 import b58decode
from batterytrace.credentials.errors import InputError
from batterytrace.credentials.keys import decode_public_multibase, encode_public_multibase

from .trust import GovernanceRoot, PinnedDidDocument, TrustConfig, did_document_sha256

ED25519_TYPES = ("Multikey", "Ed25519VerificationKey2018", "Ed25519VerificationKey2020")


class IssuerRegistryError(InputError):
    """Not an issuer registry of the expected shape."""

    code = "ISSUER_REGISTRY_INVALID"
    title = "Not an issuer registry"


@dataclass(frozen=True)
class RegistryIssuer:
    did: str
    name: str
    scope: str


@dataclass(frozen=True)
class RegistryImport:
    """The new configuration, what was imported, and what was skipped (with why)."""

    config: TrustConfig
    imported: tuple[RegistryIssuer, ...]
    skipped: tuple[tuple[RegistryIssuer, str], ...]


def read_registry(document: Any) -> tuple[RegistryIssuer, ...]:
    """The issuers of a registry document (IssuerRegistryError when malformed)."""
    issuers = document.get("issuers") if isinstance(document, Mapping) else None
    if not isinstance(issuers, list):
        raise IssuerRegistryError("an issuer registry is an object with an `issuers` list")
    out = []
    for i, entry in enumerate(issuers):
        did = entry.get("id") if isinstance(entry, Mapping) else None
        if not isinstance(did, str) or not did.startswith("did:"):
            raise IssuerRegistryError(f"issuers[{i}].id must be a DID")
        name, scope = entry.get("name", ""), entry.get("scope", "")
        if not isinstance(name, str) or not isinstance(scope, str):
            raise IssuerRegistryError(f"issuers[{i}]: name and scope must be strings")
        out.append(RegistryIssuer(did, name, scope))
    return tuple(out)


def did_web_location(did: str) -> str | None:
    """Where a did:web document is published (the did:web URL transform), else None."""
    if not did.startswith("did:web:"):
        return None
    parts = did.removeprefix("did:web:").split(":")
    path = "/".join(unquote(p) for p in parts[1:])
    host = unquote(parts[0])
    return f"https://{host}/{path}/did.json" if path else f"https://{host}/.well-known/did.json"


def assertion_keys(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The Ed25519 assertion keys of a DID document as publicKeyMultibase values."""
    wanted = {m if isinstance(m, str) else m.get("id")
              for m in document.get("assertionMethod") or []}
    keys = []
    for method in document.get("verificationMethod") or []:
        if not isinstance(method, Mapping) or method.get("id") not in wanted:
            continue
        if method.get("type") not in ED25519_TYPES:
            continue
        if isinstance(method.get("publicKeyMultibase"), str):
            decode_public_multibase(method["publicKeyMultibase"])  # Ed25519 or raises
            keys.append(method["publicKeyMultibase"])
        elif isinstance(method.get("publicKeyBase58"), str):
            keys.append(encode_public_multibase(b58decode(method["publicKeyBase58"])))
    return tuple(dict.fromkeys(keys))


def import_registry(config: TrustConfig, registry: Any,
                    documents: Sequence[Mapping[str, Any]], *,
                    as_roots: bool = False) -> RegistryImport:
    """`config` with the registry's issuers whose DID documents are in `documents`."""
    by_id = {str(d.get("id")): d for d in documents}
    imported, skipped = [], []
    for issuer in read_registry(registry):
        document = by_id.get(issuer.did)
        if document is None:
            where = did_web_location(issuer.did)
            reason = (f"no DID document given (fetch {where}, inspect it, pass it with "
                      "--did-document)" if where else "not a did:web DID")
            skipped.append((issuer, reason))
            continue
        if not issuer.did.startswith("did:web:"):
            skipped.append((issuer, "only did:web documents are pinned"))
            continue
        config = config.with_pinned_did_document(
            PinnedDidDocument(issuer.did, did_document_sha256(document)))
        if as_roots:
            keys = assertion_keys(document)
            if not keys:
                skipped.append((issuer, "its DID document has no Ed25519 assertion key"))
                continue
            label = f"{issuer.name} ({issuer.scope})" if issuer.scope else issuer.name
            config = config.with_governance_root(GovernanceRoot(issuer.did, keys, label))
        imported.append(issuer)
    return RegistryImport(config, tuple(imported), tuple(skipped))


__all__ = ["IssuerRegistryError", "RegistryImport", "RegistryIssuer", "assertion_keys",
           "did_web_location", "import_registry", "read_registry"]
