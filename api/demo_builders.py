"""The builders of the example network: seeded keys, ids, registry documents, events, signed
credentials.

The ONE implementation of the event and document builders: `make demo`, `docs/events.md`, the
tests (through `tests/custody_factory.py`, a thin layer with its own base URL and key seeds)
and the benches all build on it. Keys derive from names (public and insecure: see
keys_example/README.md). Builders are bound to a ledger's public URL, because participant DIDs
and facility ids derive from it:

    b = Builders("https://ledger.example")
    doc = b.signed_credential("miner", [b.extraction("kolwezi-mine", "ore-1", 1000, {"Co": 0.1})])

Also here: the participant tables (`STANDARD_PARTICIPANTS` of the documented lifecycle and the
tests, `DEMO_PARTICIPANTS` of the demo network) and `DEMO`, the demo network's builders.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.events import DTE_CONTEXTS, BizStep
from batterytrace.ledger.registry import participant_did

# The ledger default public URL: the demo's participant DIDs derive from it.
PUBLIC_URL = "http://127.0.0.1:8000"
CREATED = "2026-01-15T08:00:00Z"
DEMO_SEED = "batterytrace-demo"
SOH_SENSOR = "https://batterytrace.dev/vocab/stateOfHealth"

# name -> (legal name, roles, country, [(facility name, kind)]); a facility may add
# latitude, longitude and its own country (default: the participant's).
Participants = Mapping[str, tuple[str, list[str], str, list[tuple[Any, ...]]]]

# The participants of the documented lifecycle (docs/events.md) and of the custody tests.
STANDARD_PARTICIPANTS: dict[str, tuple[str, list[str], str, list[tuple[Any, ...]]]] = {
    "miner": ("Lualaba Cobalt Mining SA", ["miner"], "CD", [("kolwezi-mine", "mine")]),
    "coop": ("Coopérative Minière de Kambove", ["artisanal-cooperative"], "CD",
             [("kambove-asm", "mine")]),
    "trader": ("Likasi Mineral Trading SARL", ["trader"], "CD", [("likasi-depot", "depot")]),
    "refiner": ("Jiangsu Cobalt Refining Co., Ltd.", ["refiner"], "CN",
                [("nantong-refinery", "plant")]),
    "cellmaker": ("Wrocław Cell Works Sp. z o.o.", ["cathode-maker", "cell-maker", "pack-maker"],
                  "PL", [("wroclaw-plant", "plant")]),
    "automaker": ("Nordwagen AG", ["automaker"], "DE", [("zwickau-plant", "plant")]),
    "fleet": ("Rotterdam City Fleet BV", ["fleet"], "NL", [("rotterdam-depot", "depot")]),
    "recycler": ("Hydrovolt Recycling AS", ["collector", "dismantler", "recycler"], "NO",
                 [("fredrikstad-plant", "plant")]),
}

# The demo network: fictional companies in real places (coordinates of the towns).
DEMO_PARTICIPANTS: dict[str, tuple[str, list[str], str, list[tuple[Any, ...]]]] = {
    "mine-kolwezi": ("Lualaba Cobalt Mining SA", ["miner"], "CD",
                     [("kolwezi-mine", "mine", -10.72, 25.47)]),
    "coop": ("Coopérative Minière de Kambove", ["artisanal-cooperative"], "CD",
             [("kambove-asm", "mine", -10.87, 26.60)]),
    "trader": ("Likasi Mineral Trading SARL", ["trader"], "CD",
               [("likasi-depot", "depot", -10.98, 26.73)]),
    "refiner": ("Quzhou Cobalt Materials Co., Ltd.", ["refiner"], "CN",
                [("quzhou-refinery", "plant", 28.97, 118.87)]),
    "mine-atacama": ("Salar del Norte Litio SpA", ["miner", "refiner"], "CL",
                     [("atacama-brine", "mine", -23.50, -68.25),
                      ("la-negra-plant", "plant", -23.75, -70.31)]),
    "mine-morowali": ("PT Sulawesi Nikel Makmur", ["miner", "refiner"], "ID",
                      [("morowali-mine", "mine", -2.82, 122.16),
                       ("morowali-hpal", "plant", -2.83, 122.15)]),
    "mine-jixi": ("Jixi Longxing Graphite Co., Ltd.", ["miner", "refiner"], "CN",
                  [("jixi-mine", "mine", 45.30, 130.97),
                   ("jixi-spheronising", "plant", 45.29, 130.95)]),
    "cathode-maker": ("Pohjola Cathode Materials Oy", ["cathode-maker"], "FI",
                      [("kokkola-cathode", "plant", 63.84, 23.13)]),
    "cell-maker": ("Wrocław Cell Works Sp. z o.o.", ["cell-maker"], "PL",
                   [("wroclaw-cells", "plant", 51.11, 17.03)]),
    "pack-maker": ("Elbe Battery Systems GmbH", ["pack-maker"], "DE",
                   [("salzgitter-pack", "plant", 52.15, 10.33)]),
    "automaker": ("Nordwagen AG", ["automaker"], "DE", [("zwickau-plant", "plant", 50.72, 12.49)]),
    "fleet": ("Rotterdam City Fleet BV", ["fleet"], "NL",
              [("rotterdam-depot", "depot", 51.92, 4.48)]),
    "second-life": ("Eemshaven Grid Storage BV", ["second-life-operator"], "NL",
                    [("eemshaven-storage", "plant", 53.44, 6.83)]),
    "recycler": ("Fjord Battery Recycling AS", ["collector", "dismantler", "recycler"], "NO",
                 [("moerdijk-collection", "depot", 51.70, 4.60, "NL"),
                  ("fredrikstad-recycling", "plant", 59.21, 10.95)]),
}


@cache
def seeded_key(seed: str, name: str) -> Ed25519Key:
    """The key of `name` under `seed`: Ed25519 from sha256(f"{seed}:{name}") (public, insecure)."""
    return Ed25519Key.from_seed(hashlib.sha256(f"{seed}:{name}".encode()).digest())


def key_for(name: str) -> Ed25519Key:
    """The (public, insecure) demo key of a name: the Multikey file `keys_example/<name>.json`."""
    return seeded_key(DEMO_SEED, name)


def lot_id(name: str) -> str:
    return f"https://id.example.com/lots/{name}"


def item_id(name: str) -> str:
    return f"https://id.example.com/items/{name}"


def event_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def digest_of(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


def quantity(lot: str, kg: Any, uom: str = "KGM") -> dict[str, Any]:
    return {"productId": lot_id(lot), "productName": lot, "quantity": kg, "uom": uom}


def item_ref(name: str) -> dict[str, Any]:
    return {"type": ["Item"], "id": item_id(name), "name": name}


def _event(kind: str, location: str, biz_step: str, *, action: str = "observe",
           time: str = "2026-02-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    """An event at the facility URI `location`; None fields are left out."""
    event = {
        "type": [kind, "Event"],
        "id": event_id(),
        "eventTime": time,
        "action": action,
        "bizStep": biz_step,
        "bizLocation": location,
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


class Builders:
    """Registry documents, events and signed credentials for a ledger at `public_url`, with the
    keys derived from `seed` and legal names from `participants`."""

    def __init__(self, public_url: str = PUBLIC_URL, seed: str = DEMO_SEED,
                 participants: Participants = STANDARD_PARTICIPANTS) -> None:
        self.public_url = public_url
        self.seed = seed
        self.participants = participants
        self._registry_docs: list[dict[str, Any]] | None = None

    # --- identities ---------------------------------------------------------------------

    def key_for(self, name: str) -> Ed25519Key:
        """The key of a participant name, or of 'admin' / 'log'."""
        return seeded_key(self.seed, name)

    @property
    def admin_key(self) -> Ed25519Key:
        return self.key_for("admin")

    def did_for(self, name: str) -> str:
        return participant_did(self.public_url, name)

    def facility_id(self, name: str) -> str:
        return f"{self.public_url}/facilities/{name}"

    # --- registry documents -------------------------------------------------------------

    def sign_admin(self, document: dict[str, Any]) -> dict[str, Any]:
        return sign(document, self.admin_key, created=CREATED)

    def sign_as(self, document: dict[str, Any], name: str,
                key: Ed25519Key | None = None) -> dict[str, Any]:
        key = key or self.key_for(name)
        vm = f"{self.did_for(name)}#{key.public_multibase}"
        return sign(document, key, verification_method=vm, created=CREATED)

    def participant_doc(self, name: str, legal_name: str, roles: Sequence[str], country: str,
                        keys: Iterable[Ed25519Key] | None = None) -> dict[str, Any]:
        return {
            "type": "ParticipantRegistration",
            "name": name,
            "legalName": legal_name,
            "roles": list(roles),
            "country": country,
            "keys": [k.public_multibase for k in (keys or [self.key_for(name)])],
        }

    def facility_doc(self, name: str, operator: str, kind: str, country: str,
                     latitude: float = 10.5, longitude: float = 25.25) -> dict[str, Any]:
        return {
            "type": "FacilityRegistration",
            "id": self.facility_id(name),
            "name": name.replace("-", " ").title(),
            "operator": self.did_for(operator),
            "country": country,
            "kind": kind,
            "latitude": latitude,
            "longitude": longitude,
        }

    def registry_docs(self) -> list[dict[str, Any]]:
        """Admin-signed registrations of the participants and their facilities (a copy)."""
        if self._registry_docs is None:
            docs = []
            for name, (legal, roles, country, facilities) in self.participants.items():
                docs.append(self.sign_admin(self.participant_doc(name, legal, roles, country)))
                for fac, kind, *where in facilities:
                    site_country = where[2] if len(where) > 2 else country
                    docs.append(self.sign_admin(self.facility_doc(
                        fac, name, kind, site_country, *where[:2])))
            self._registry_docs = docs
        return copy.deepcopy(self._registry_docs)

    # --- events -------------------------------------------------------------------------

    def extraction(self, location: str, lot: str, kg: Any, composition: Mapping[str, Any],
                   *, time: str = "2026-02-01T10:00:00Z", **details: Any) -> dict[str, Any]:
        return _event(
            "ObjectEvent", self.facility_id(location), BizStep.EXTRACTION, action="add",
            time=time, disposition="https://ref.gs1.org/cbv/Disp-active",
            quantityList=[quantity(lot, kg)],
            lotDeclarations=[{"id": lot_id(lot), "composition": dict(composition), **details}],
        )

    def transformation(
        self,
        location: str,
        inputs: Sequence[tuple[str, Any]] = (),
        outputs: Sequence[tuple[str, Any, Mapping[str, Any]]] = (),
        *,
        input_items: Sequence[str] = (),
        output_items: Sequence[tuple[str, str, Any, Mapping[str, Any]]] = (),
        custody_model: str | None = "segregated",
        biz_step: str = BizStep.COMMISSIONING,
        battery_codes: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """outputs: (lot, kg, composition); output_items: (item, category, mass kg,
        composition); battery_codes: item -> its GB/T 34014 code."""
        codes = battery_codes or {}
        return _event(
            "TransformationEvent", self.facility_id(location), biz_step, action="add",
            inputQuantityList=[quantity(lot, kg) for lot, kg in inputs] or None,
            outputQuantityList=[quantity(lot, kg) for lot, kg, _ in outputs] or None,
            inputEPCList=[item_ref(i) for i in input_items] or None,
            outputEPCList=[item_ref(i) for i, *_ in output_items] or None,
            custodyModel=custody_model,
            lotDeclarations=[{"id": lot_id(lot), "composition": dict(c)}
                             for lot, _, c in outputs] or None,
            itemDeclarations=[
                {"id": item_id(i), "category": cat, "mass": {"value": kg, "uom": "KGM"},
                 "composition": dict(c), **({"batteryCode": codes[i]} if i in codes else {})}
                for i, cat, kg, c in output_items
            ] or None,
            **fields,
        )

    def shipping(self, location: str, source: str, destination: str, destination_site: str,
                 lots: Sequence[tuple[str, Any]] = (), items: Sequence[str] = (),
                 *, mode: str = "road", purpose: str = "sale", waste: bool = False,
                 time: str = "2026-02-01T10:00:00Z") -> dict[str, Any]:
        return _event(
            "TransactionEvent", self.facility_id(location), BizStep.SHIPPING, time=time,
            disposition="https://ref.gs1.org/cbv/Disp-in_transit",
            sourceParty=self.did_for(source), destinationParty=self.did_for(destination),
            bizTransaction="https://ref.gs1.org/cbv/BTT-desadv",
            quantityList=[quantity(lot, kg) for lot, kg in lots] or None,
            epcList=[item_ref(i) for i in items] or None,
            transport={"mode": mode, "purpose": purpose, "origin": self.facility_id(location),
                       "destination": self.facility_id(destination_site),
                       "dispatchTime": time},
            wasteBattery=waste or None,
        )

    def receiving(self, shipment: Mapping[str, Any], location: str,
                  time: str = "2026-02-03T10:00:00Z") -> dict[str, Any]:
        """The receipt that closes `shipment` (same contents), signed by its destination."""
        return _event(
            "TransactionEvent", self.facility_id(location), BizStep.RECEIVING,
            disposition="https://ref.gs1.org/cbv/Disp-active",
            sourceParty=shipment["sourceParty"], destinationParty=shipment["destinationParty"],
            quantityList=shipment.get("quantityList"), epcList=shipment.get("epcList"),
            shipmentEvent=shipment["id"], time=time,
        )

    def assembly(self, location: str, parent: str, children: Sequence[str], *,
                 action: str = "add", kind: str = "AggregationEvent",
                 biz_step: str | None = None,
                 time: str = "2026-02-01T10:00:00Z") -> dict[str, Any]:
        step = biz_step or (BizStep.ASSEMBLING if action == "add" else BizStep.DISASSEMBLING)
        return _event(kind, self.facility_id(location), step, action=action, time=time,
                      parentEPC=item_ref(parent),
                      childEPCList=[item_ref(c) for c in children] or None)

    def observation(self, location: str, items: Sequence[str] = (),
                    lots: Sequence[tuple[str, Any]] = (), *, action: str = "observe",
                    biz_step: str = BizStep.INSPECTING, **fields: Any) -> dict[str, Any]:
        return _event("ObjectEvent", self.facility_id(location), biz_step, action=action,
                      epcList=[item_ref(i) for i in items] or None,
                      quantityList=[quantity(lot, kg) for lot, kg in lots] or None, **fields)

    def soh_reading(self, location: str, item: str, percent: float,
                    time: str) -> dict[str, Any]:
        """A BMS state-of-health sensor report (percent of rated capacity) about `item`."""
        return self.observation(
            location, items=[item], biz_step=BizStep.SENSOR_REPORTING, time=time,
            sensorElementList=[{"sensorMetadata": {"device": item_ref(item)},
                                "sensorReport": [{"time": time, "sensorType": SOH_SENSOR,
                                                  "value": percent, "uom": "P1"}]}])

    # --- credentials --------------------------------------------------------------------

    def credential(self, issuer: str, events: Sequence[Mapping[str, Any]],
                   credential_id: str | None = None) -> dict[str, Any]:
        """An unsigned DTE credential of `issuer` carrying `events`."""
        legal = self.participants.get(issuer, (issuer,))[0]
        return {
            "@context": list(DTE_CONTEXTS),
            "type": ["DigitalTraceabilityEvent", "VerifiableCredential"],
            "id": credential_id or event_id(),
            "issuer": {"type": ["CredentialIssuer"], "id": self.did_for(issuer), "name": legal},
            "validFrom": "2026-02-01T10:00:00Z",
            "credentialSubject": [dict(e) for e in events],
        }

    def signed_credential(self, issuer: str, events: Sequence[Mapping[str, Any]],
                          key: Ed25519Key | None = None) -> dict[str, Any]:
        return self.sign_as(self.credential(issuer, events), issuer, key)


# The demo network's builders (`make demo`, the passport pages, the demo credentials).
DEMO = Builders(PUBLIC_URL, DEMO_SEED, DEMO_PARTICIPANTS)
