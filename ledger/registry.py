"""The participant registry: participants, facilities and keys, as log entries of kind "registry".

Every change is an admin-signed document (eddsa-jcs-2022); the registry at a log position is
the replay of those entries, so a participant's DID document and whole key history can be
derived offline at any position. Keys are valid over a range of log positions
[valid_from, valid_until): a key added by the entry at position n signs entries after n; a key
ended at position m signs nothing at m or later, whatever a proof's `created` says.

Documents (`type`):
- ParticipantRegistration {id?, name, legalName, roles, country, keys: [publicKeyMultibase]}
  (admin);
- FacilityRegistration {id, name, operator, country, kind, latitude?, longitude?} (admin);
- KeyRotation {participant, newKey, retire?} (admin AND a current key of the participant);
- KeyRevocation {participant, key, reason?} (admin, or a current key of the participant);
- KeyRecovery {participant, newKey, reason?} (admin only: ends every current key; the new key
  is marked `recovery` and every report relying on it says so).

The functions here are pure: `apply_registry` is told which verification methods signed (the
store checks the proofs through `RegistryResolver`), so the verifier replays the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from batterytrace.credentials.did import DID_KEY_PREFIX, VerificationMethod, public_key_from_did_key
from batterytrace.credentials.domain_models import PARTICIPANT_ROLES
from batterytrace.credentials.errors import DidResolutionError, VerificationMethodError
from batterytrace.credentials.keys import decode_public_multibase

from .custody import Facility, Tables
from .custody_errors import (
    FacilityExistsError,
    KeyNotValidError,
    ParticipantExistsError,
    RegistryAuthorizationError,
    RegistryError,
    UnknownParticipantError,
)

PARTICIPANT_REGISTRATION = "ParticipantRegistration"
FACILITY_REGISTRATION = "FacilityRegistration"
KEY_ROTATION = "KeyRotation"
KEY_REVOCATION = "KeyRevocation"
KEY_RECOVERY = "KeyRecovery"
REGISTRY_TYPES = (
    PARTICIPANT_REGISTRATION,
    FACILITY_REGISTRATION,
    KEY_ROTATION,
    KEY_REVOCATION,
    KEY_RECOVERY,
)

ROLES = PARTICIPANT_ROLES
FACILITY_KINDS = ("mine", "plant", "depot")
MULTIKEY = "Multikey"
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def participant_did(public_url: str, name: str) -> str:
    """`did:web:<host>[%3A<port>][:<path>...]:participants:<name>` under the ledger's URL."""
    if not _NAME.match(name):
        raise RegistryError(f"participant name {name!r} must be lowercase letters, digits, '-'")
    parts = urlsplit(public_url)
    if not parts.hostname:
        raise RegistryError(f"public URL {public_url!r} has no host")
    authority = parts.hostname + (f"%3A{parts.port}" if parts.port else "")
    path = [segment for segment in parts.path.split("/") if segment]
    return ":".join(["did:web", authority, *path, "participants", name])


@dataclass(frozen=True)
class KeyRecord:
    """One key of a participant and the log positions it may sign at."""

    id: str
    controller: str
    public_multibase: str
    valid_from: int
    valid_until: int | None = None
    recovery: bool = False
    ended_by: str | None = None

    def valid_at(self, position: int) -> bool:
        return self.valid_from <= position and (
            self.valid_until is None or position < self.valid_until
        )

    def to_multikey(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": MULTIKEY,
            "controller": self.controller,
            "publicKeyMultibase": self.public_multibase,
        }


@dataclass(frozen=True)
class Participant:
    id: str
    name: str
    legal_name: str
    roles: tuple[str, ...]
    country: str
    registered_at: int
    keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "legalName": self.legal_name,
            "roles": list(self.roles),
            "country": self.country,
            "registeredAt": self.registered_at,
        }


@dataclass(frozen=True)
class UsedDocument:
    seq: int


class Registry(Tables):
    """Participants, facilities and keys, as replayed from registry entries."""

    table_names = ("participant", "key", "facility", "document", "name")

    def __init__(self, admin_did: str, public_url: str) -> None:
        super().__init__()
        if not admin_did.startswith(DID_KEY_PREFIX):
            raise RegistryError("the admin key must be a did:key")
        self.admin_did = admin_did
        self.public_url = public_url

    # Directory (custody rules)
    def facility(self, facility_id: str) -> Facility | None:
        return self.get("facility", facility_id)

    def is_participant(self, did: str) -> bool:
        return self.get("participant", did) is not None

    def participant(self, did: str) -> Participant:
        found = self.get("participant", did)
        if found is None:
            raise UnknownParticipantError(f"participant {did} is not registered", did=did)
        return found

    def key(self, vm_id: str) -> KeyRecord | None:
        return self.get("key", vm_id)

    def key_at(self, vm_id: str, position: int) -> KeyRecord:
        """The participant key `vm_id`, checked valid at log position `position`."""
        record = self.key(vm_id)
        if record is None:
            raise KeyNotValidError(f"{vm_id} is not a registered key", key=vm_id)
        if not record.valid_at(position):
            raise KeyNotValidError(
                f"{vm_id} is valid for log positions [{record.valid_from}, "
                f"{record.valid_until if record.valid_until is not None else ''}), "
                f"not at {position}",
                key=vm_id,
                position=position,
            )
        return record

    def keys_of(self, did: str) -> list[KeyRecord]:
        return [self.get("key", k) for k in self.participant(did).keys]

    def did_document(self, did: str, position: int) -> dict[str, Any]:
        """The DID document of a participant as derived at log position `position`."""
        participant = self.participant(did)
        if participant.registered_at > position:
            raise UnknownParticipantError(f"{did} is not registered at position {position}")
        keys = [k for k in self.keys_of(did) if k.valid_at(position)]
        ids = [k.id for k in keys]
        return {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": did,
            "verificationMethod": [k.to_multikey() for k in keys],
            "assertionMethod": ids,
            "authentication": ids,
        }


def _require(document: Mapping[str, Any], name: str, kind: type = str) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise RegistryError(f"registry document needs {name!r} ({kind.__name__})")
    return value


def _new_key(
    registry: Registry, did: str, multibase: str, position: int, *, recovery: bool = False
) -> KeyRecord:
    decode_public_multibase(multibase)  # raises KeyFormatError when malformed
    vm_id = f"{did}#{multibase}"
    if registry.key(vm_id) is not None:
        raise RegistryError(f"key {multibase} was already registered for {did}; keys are not "
                            "reused")
    record = KeyRecord(vm_id, did, multibase, valid_from=position, recovery=recovery)
    registry.put("key", vm_id, record)
    return record


def _end_key(registry: Registry, record: KeyRecord, position: int, how: str) -> None:
    registry.put("key", record.id, replace(record, valid_until=position, ended_by=how))


def apply_registry(
    registry: Registry,
    document: Mapping[str, Any],
    position: int,
    signers: Iterable[str],
    digest: str,
) -> int | None:
    """Apply one registry entry at log position `position`, given the verification methods
    whose proofs verified. Returns None, or the position of the same document seen before."""
    used = registry.get("document", digest)
    if used is not None:
        return used.seq
    signed = set(signers)
    admin = any(s.split("#", 1)[0] == registry.admin_did for s in signed)
    kind = document.get("type")
    with registry.transaction():
        registry.put("document", digest, UsedDocument(position))
        if kind == PARTICIPANT_REGISTRATION:
            _require_admin(admin, kind)
            _register_participant(registry, document, position)
        elif kind == FACILITY_REGISTRATION:
            _require_admin(admin, kind)
            _register_facility(registry, document)
        elif kind in (KEY_ROTATION, KEY_REVOCATION, KEY_RECOVERY):
            did = _require(document, "participant")
            current = [k for k in registry.keys_of(did) if k.valid_at(position)]
            own = any(s in {k.id for k in current} for s in signed)
            if kind == KEY_ROTATION:
                _require_admin(admin, kind)
                if not own:
                    raise RegistryAuthorizationError(
                        "a key rotation needs a proof by a current key of the participant "
                        "(use KeyRecovery when it is lost)"
                    )
                retire = document.get("retire")
                ended = current if retire is None else [k for k in current if k.id in retire]
                _rotate(registry, did, document, ended, position, "rotation")
            elif kind == KEY_RECOVERY:
                _require_admin(admin, kind)
                _rotate(registry, did, document, current, position, "recovery")
            else:
                if not (admin or own):
                    raise RegistryAuthorizationError("a revocation is signed by the admin key or "
                                                     "a current key of the participant")
                vm_id = _require(document, "key")
                record = registry.key(vm_id)
                if record is None or record.controller != did:
                    raise KeyNotValidError(f"{vm_id} is not a key of {did}", key=vm_id)
                if record.valid_until is not None and record.valid_until <= position:
                    raise KeyNotValidError(f"{vm_id} already ended at {record.valid_until}")
                _end_key(registry, record, position, "revocation")
        else:
            raise RegistryError("registry document type must be one of "
                                + ", ".join(REGISTRY_TYPES))
    return None


def _require_admin(admin: bool, kind: str) -> None:
    if not admin:
        raise RegistryAuthorizationError(f"{kind} must be signed by the ledger's admin key")


def _register_participant(registry: Registry, doc: Mapping[str, Any], position: int) -> None:
    name = _require(doc, "name")
    did = doc.get("id") or participant_did(registry.public_url, name)
    if not isinstance(did, str) or not did.startswith("did:"):
        raise RegistryError(f"participant id {did!r} is not a DID")
    if registry.get("participant", did) is not None or registry.get("name", name) is not None:
        raise ParticipantExistsError(f"participant {name} ({did}) is already registered")
    roles = tuple(_require(doc, "roles", list))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise RegistryError(f"roles must be among {', '.join(ROLES)}; got {unknown or roles}")
    country = _require(doc, "country")
    if not _COUNTRY.match(country):
        raise RegistryError(f"country {country!r} must be an ISO 3166-1 alpha-2 code")
    keys = _require(doc, "keys", list)
    if not keys:
        raise RegistryError("a participant is registered with at least one key")
    records = [_new_key(registry, did, k, position) for k in keys]
    registry.put("participant", did, Participant(
        id=did, name=name, legal_name=_require(doc, "legalName"), roles=roles, country=country,
        registered_at=position, keys=tuple(r.id for r in records),
    ))
    registry.put("name", name, did)


def _register_facility(registry: Registry, doc: Mapping[str, Any]) -> None:
    facility_id = _require(doc, "id")
    if registry.facility(facility_id) is not None:
        raise FacilityExistsError(f"facility {facility_id} is already registered")
    operator = _require(doc, "operator")
    registry.participant(operator)
    kind = _require(doc, "kind")
    if kind not in FACILITY_KINDS:
        raise RegistryError(f"facility kind must be one of {', '.join(FACILITY_KINDS)}")
    country = _require(doc, "country")
    if not _COUNTRY.match(country):
        raise RegistryError(f"country {country!r} must be an ISO 3166-1 alpha-2 code")
    coords = [doc.get("latitude"), doc.get("longitude")]
    for value, bound in zip(coords, (90, 180), strict=True):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > bound
        ):
            raise RegistryError("latitude and longitude must be numbers within range")
    registry.put("facility", facility_id, Facility(
        id=facility_id, name=_require(doc, "name"), operator=operator, country=country,
        kind=kind, latitude=coords[0], longitude=coords[1],
    ))


def _rotate(
    registry: Registry, did: str, doc: Mapping[str, Any], ended: list[KeyRecord],
    position: int, how: str,
) -> None:
    participant = registry.participant(did)
    for record in ended:
        _end_key(registry, record, position, how)
    record = _new_key(registry, did, _require(doc, "newKey"), position,
                      recovery=how == "recovery")
    registry.put("participant", did, replace(participant, keys=(*participant.keys, record.id)))


class RegistryResolver:
    """A credentials `Resolver` over the registry at one log position: participant keys valid
    there, and (when `admin` is set) the ledger's admin did:key."""

    def __init__(self, registry: Registry, position: int, *, admin: bool = False) -> None:
        self.registry = registry
        self.position = position
        self.admin = admin

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        if relationship not in ("assertionMethod", "authentication"):
            raise VerificationMethodError(f"registry keys are not authorised for {relationship}")
        did = vm_id.split("#", 1)[0]
        if did == self.registry.admin_did:
            if not self.admin:
                raise VerificationMethodError("the admin key signs registry entries only")
            fragment = vm_id.split("#", 1)[1] if "#" in vm_id else ""
            if fragment != did[len(DID_KEY_PREFIX):]:
                raise DidResolutionError(f"{vm_id} is not the admin key's verification method")
            return VerificationMethod(vm_id, did, MULTIKEY, public_key_from_did_key(did))
        # key_at checks the key's validity at this position on every call; only the decode
        # is remembered, per record (a rotation or revocation replaces the record).
        return _method_of(self.registry.key_at(vm_id, self.position))


@lru_cache(maxsize=4096)
def _method_of(record: KeyRecord) -> VerificationMethod:
    """The verification method of a key record, its base58 key decoded once per record."""
    return VerificationMethod(
        record.id, record.controller, MULTIKEY, decode_public_multibase(record.public_multibase)
    )
