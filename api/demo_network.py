"""The example network: registry documents and signed UNTP DTE credentials, mine to recycler.

The ONE implementation of the event and document builders: `make demo`, `docs/events.md`, the
tests (through `tests/custody_factory.py`, a thin layer with its own base URL and key seeds)
and the benches all build on it. Keys derive from names (public and insecure: see
keys_example/README.md). Builders are bound to a ledger's public URL, because participant DIDs
and facility ids derive from it:

    b = Builders("https://ledger.example")
    doc = b.signed_credential("miner", [b.extraction("kolwezi-mine", "ore-1", 1000, {"Co": 0.1})])

`MemoryNetwork` holds an in-memory Registry and CustodyState to apply documents to without a
database. `lifecycle(b)` is the documented stage list (docs/events.md); `story(b)` is the demo
network's history: cobalt, lithium, nickel and graphite to two battery packs, the first one's
life, second life and recycling, and its recovered cobalt and lithium in the second.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.engine import Replay
from batterytrace.ledger.events import DTE_CONTEXTS, BizStep
from batterytrace.ledger.registry import apply_registry, participant_did

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
        **fields: Any,
    ) -> dict[str, Any]:
        """outputs: (lot, kg, composition); output_items: (item, category, mass kg,
        composition)."""
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
                 "composition": dict(c)}
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


# --- an in-memory network ----------------------------------------------------------------


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


# --- the documented lifecycle (docs/events.md is generated from it) ------------------------

NMC811 = {"Li": 0.072, "Ni": 0.48, "Mn": 0.056, "Co": 0.06}


def lifecycle(b: Builders) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, issuer, event) for every stage of REQUIREMENTS 3.3, valid in this order, with
    the STANDARD_PARTICIPANTS of `b`."""
    steps: list[tuple[str, str, dict[str, Any]]] = []

    def add(stage: str, issuer: str, event: dict[str, Any]) -> dict[str, Any]:
        event["id"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'bt-docs/' + stage)}"
        steps.append((stage, issuer, event))
        return event

    add("Extraction at an industrial mine site", "miner", b.extraction(
        "kolwezi-mine", "co-hydroxide-2026-001", 40, {"Co": 0.32, "Cu": 0.04},
        extractionMethod="industrial", mineral="cobalt"))
    add("Extraction at an artisanal site", "coop", b.extraction(
        "kambove-asm", "heterogenite-asm-017", 2, {"Co": 0.12, "Cu": 0.06},
        extractionMethod="artisanal", legalStatus="ZEA Kambove-Ouest"))
    asm = add("ASM purchase: the cooperative ships to a licensed trader", "coop", b.shipping(
        "kambove-asm", "coop", "trader", "likasi-depot", [("heterogenite-asm-017", 2)]))
    add("ASM purchase: the trader receives", "trader", b.receiving(asm, "likasi-depot"))
    add("Aggregation at the trader (commingling, mass balance)", "trader", b.transformation(
        "likasi-depot", [("heterogenite-asm-017", 2)],
        [("likasi-blend-2026-02", 2, {"Co": 0.12, "Cu": 0.06})], custody_model="massBalance"))
    sea = add("Transport by sea to the refiner", "miner", b.shipping(
        "kolwezi-mine", "miner", "refiner", "nantong-refinery",
        [("co-hydroxide-2026-001", 40)], mode="sea"))
    add("Arrival at the refinery", "refiner", b.receiving(sea, "nantong-refinery"))
    add("Refining to cobalt sulphate", "refiner", b.transformation(
        "nantong-refinery", [("co-hydroxide-2026-001", 40)],
        [("coso4-2026-0042", 60, {"Co": 0.2})], biz_step=BizStep.REFINING,
        custody_model="segregated"))
    cathode = add("Shipment of refined material to the cathode and cell maker", "refiner",
                  b.shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                             [("coso4-2026-0042", 60)], mode="rail"))
    add("Receipt at the cell plant", "cellmaker", b.receiving(cathode, "wroclaw-plant"))
    add("Cathode and cell production (model, plant, chemistry)", "cellmaker", b.transformation(
        "wroclaw-plant", [("coso4-2026-0042", 10)],
        output_items=[("cell-a1", "cell", 0.9, {"Co": 0.06}),
                      ("cell-a2", "cell", 0.9, {"Co": 0.06})],
        processType="cell manufacture", cellModel="WCW-NMC811-60Ah", chemistry="NMC811"))
    add("Module housing production", "cellmaker", b.transformation(
        "wroclaw-plant", [("coso4-2026-0042", 1)],
        output_items=[("module-m1", "module", 2.5, {}), ("pack-p1", "pack", 30, {})]))
    add("Module assembly", "cellmaker", b.assembly("wroclaw-plant", "module-m1",
                                                   ["cell-a1", "cell-a2"]))
    add("Pack assembly", "cellmaker", b.assembly("wroclaw-plant", "pack-p1", ["module-m1"]))
    pack = add("Shipment of the pack to the automaker", "cellmaker", b.shipping(
        "wroclaw-plant", "cellmaker", "automaker", "zwickau-plant", items=["pack-p1"]))
    add("Receipt at the vehicle plant", "automaker", b.receiving(pack, "zwickau-plant"))
    add("Vehicle production (body without tracked material)", "automaker", b.transformation(
        "zwickau-plant", output_items=[("vehicle-vin-wnw0001", "vehicle", 1650, {})]))
    add("Installation of the pack in the vehicle", "automaker", b.assembly(
        "zwickau-plant", "vehicle-vin-wnw0001", ["pack-p1"], kind="AssociationEvent",
        biz_step=BizStep.INSTALLING))
    add("Placing on the market", "automaker", b.observation(
        "zwickau-plant", items=["vehicle-vin-wnw0001"], biz_step=BizStep.RETAIL_SELLING,
        market="EU", passport="https://id.example.com/dpp/vehicle-vin-wnw0001"))
    sale = add("Sale and delivery to a fleet", "automaker", b.shipping(
        "zwickau-plant", "automaker", "fleet", "rotterdam-depot",
        items=["vehicle-vin-wnw0001"]))
    add("Delivery received by the fleet", "fleet", b.receiving(sale, "rotterdam-depot"))
    add("State-of-health reading (BMS sensor report)", "fleet", b.observation(
        "rotterdam-depot", items=["pack-p1"], biz_step=BizStep.SENSOR_REPORTING,
        sensorElementList=[{"sensorMetadata": {"device": item_ref("pack-p1")},
                            "sensorReport": [{"time": "2030-05-01T08:00:00Z",
                                              "sensorType": SOH_SENSOR, "value": 78,
                                              "uom": "P1"}]}]))
    add("Removal of the pack", "fleet", b.assembly(
        "rotterdam-depot", "vehicle-vin-wnw0001", ["pack-p1"], action="delete",
        kind="AssociationEvent", biz_step=BizStep.REMOVING))
    add("Repair", "fleet", b.observation("rotterdam-depot", items=["pack-p1"],
                                         biz_step=BizStep.REPAIRING, partsReplaced=["BMS"]))
    add("Repurposing to second life (producer responsibility transferred)", "fleet",
        b.observation("rotterdam-depot", items=["pack-p1"], biz_step=BizStep.REPURPOSING,
                      producerResponsibility=b.did_for("fleet"), newApplication="stationary"))
    waste = add("Collection: transport of a declared waste battery", "fleet", b.shipping(
        "rotterdam-depot", "fleet", "recycler", "fredrikstad-plant", items=["pack-p1"],
        purpose="recycling", waste=True))
    add("Collection received by the recycler", "recycler",
        b.receiving(waste, "fredrikstad-plant"))
    add("Dismantling (pack to module)", "recycler", b.assembly(
        "fredrikstad-plant", "pack-p1", ["module-m1"], action="delete"))
    add("Recycling with recovered-material lots", "recycler", b.transformation(
        "fredrikstad-plant", input_items=["module-m1"],
        outputs=[("recovered-co-2031-001", 0.1, {"Co": 0.99})], biz_step=BizStep.RECYCLING,
        custody_model="segregated", route="hydrometallurgical"))
    add("Disposal of the empty pack housing", "recycler", b.observation(
        "fredrikstad-plant", items=["pack-p1"], action="delete", biz_step=BizStep.DESTROYING,
        disposition="https://ref.gs1.org/cbv/Disp-disposed"))
    return steps


# --- the demo network's story --------------------------------------------------------------

DEMO = Builders(PUBLIC_URL, DEMO_SEED, DEMO_PARTICIPANTS)

PACK_1 = "pack-EBS80-000117"  # the first-life pack: its bundle is the demo's subject
PACK_2 = "pack-EBS80-004512"  # the new pack made with pack 1's recovered cobalt and lithium
VEHICLE = "vehicle-WNW-4Z100117"
BATTERY_MODEL = "EBS-80 NMC811"
CELL_MODEL = "WCW-NMC811-230Ah"
CELLS_PER_MODULE, MODULES_PER_PACK = 12, 8
CELL_KG = 3.3
# Mass fractions of one cell: cathode active material NMC811 (LiNi0.8Mn0.1Co0.1O2) is 30 % of
# the cell, spherical graphite 18 %. Manganese is not traced in the demo.
CELL_COMPOSITION = {"Li": 0.0216, "Ni": 0.144, "Co": 0.018, "graphite": 0.18}
CAM_COMPOSITION = {"Li": 0.072, "Ni": 0.48, "Co": 0.06}  # NMC811 active material
COSO4, NISO4, LI2CO3 = {"Co": 0.2}, {"Ni": 0.22}, {"Li": 0.188}


@dataclass(frozen=True)
class Step:
    """One signed credential of the story: its chapter, issuer and events."""

    chapter: str
    issuer: str
    events: tuple[dict[str, Any], ...]


def recycled_shares() -> dict[str, dict[str, float]]:
    """Recycled share (percent of element mass) in the cathode material of each pack, from the
    quantities of `story`: pre-consumer (manufacturing scrap) in pack 1, post-consumer (pack 1
    itself) in pack 2. The RecycledContentCredentials declare these figures."""
    def share(recycled_kg: float, virgin_kg: float) -> float:
        return round(100 * recycled_kg / (recycled_kg + virgin_kg), 1)

    return {
        PACK_1: {"Cobalt": share(15 * 0.2, 172.5 * 0.2),
                 "Lithium": share(20 * 0.188, 230 * 0.188),
                 "Nickel": share(120 * 0.22, 1380 * 0.22)},
        PACK_2: {"Cobalt": share(27 * 0.2, 75 * 0.2),
                 "Lithium": share(29 * 0.188, 160 * 0.188),
                 "Nickel": share(196 * 0.22, 1100 * 0.22)},
    }


def _pack_production(b: Builders, add: Any, chapter: str, *, batch: str, pack: str,
                     cam_lot: str, month: str) -> list[str]:
    """Cells (cell maker), modules and a pack (pack maker) from 100 kg of `cam_lot`, in the
    month `month` (YYYY-MM)."""
    cells = [f"cell-{batch}-{n:03d}" for n in range(CELLS_PER_MODULE * MODULES_PER_PACK)]
    modules = [f"module-{batch}-{m}" for m in range(MODULES_PER_PACK)]
    add(chapter, "cell-maker", b.transformation(
        "wroclaw-cells", [(cam_lot, 100), ("spherical-graphite-JX-2026-40", 60)],
        output_items=[(c, "cell", CELL_KG, CELL_COMPOSITION) for c in cells],
        processType="cell manufacture", cellModel=CELL_MODEL, chemistry="NMC811",
        time=f"{month}-10T08:00:00Z"))
    add(chapter, "cell-maker", b.transformation(
        "wroclaw-cells", output_items=[(m, "module", 6.0, {}) for m in modules],
        time=f"{month}-11T08:00:00Z"))
    add(chapter, "cell-maker", *[
        b.assembly("wroclaw-cells", m, cells[i * CELLS_PER_MODULE:(i + 1) * CELLS_PER_MODULE],
                   time=f"{month}-12T08:00:00Z")
        for i, m in enumerate(modules)])
    ship = add(chapter, "cell-maker", b.shipping(
        "wroclaw-cells", "cell-maker", "pack-maker", "salzgitter-pack", items=modules,
        time=f"{month}-15T08:00:00Z"))
    add(chapter, "pack-maker", b.receiving(ship, "salzgitter-pack", f"{month}-17T08:00:00Z"))
    add(chapter, "pack-maker", b.transformation(
        "salzgitter-pack", output_items=[(pack, "pack", 95.0, {})],
        batteryModel=BATTERY_MODEL, time=f"{month}-20T08:00:00Z"))
    add(chapter, "pack-maker", b.assembly("salzgitter-pack", pack, modules,
                                         time=f"{month}-21T08:00:00Z"))
    return modules


def story(b: Builders = DEMO) -> list[Step]:
    """The demo network's history, valid in this order (each step one signed credential)."""
    steps: list[Step] = []

    def add(chapter: str, issuer: str, *events: dict[str, Any]) -> dict[str, Any]:
        steps.append(Step(chapter, issuer, tuple(events)))
        return events[0]

    def ship(chapter: str, source: str, site: str, dest: str, dest_site: str,
             lots: Sequence[tuple[str, Any]] = (), items: Sequence[str] = (), *,
             time: str, arrive: str, **options: Any) -> None:
        sent = add(chapter, source, b.shipping(site, source, dest, dest_site, lots, items,
                                               time=time, **options))
        add(chapter, dest, b.receiving(sent, dest_site, arrive))

    # Cobalt, DRC to China: industrial (IRMA 75) and artisanal through a licensed trader.
    add("cobalt", "mine-kolwezi", b.extraction(
        "kolwezi-mine", "co-hydroxide-KZ-2026-014", 20000, {"Co": 0.32, "Cu": 0.04},
        extractionMethod="industrial", mineral="cobalt", time="2026-03-02T06:00:00Z"))
    add("cobalt", "coop", b.extraction(
        "kambove-asm", "heterogenite-ASM-2026-031", 2000, {"Co": 0.12, "Cu": 0.06},
        extractionMethod="artisanal", mineral="cobalt", legalStatus="ZEA Kambove-Ouest",
        time="2026-03-05T09:00:00Z"))
    ship("cobalt", "coop", "kambove-asm", "trader", "likasi-depot",
         [("heterogenite-ASM-2026-031", 2000)], time="2026-03-09T07:00:00Z",
         arrive="2026-03-09T15:00:00Z")
    add("cobalt", "trader", b.transformation(
        "likasi-depot", [("heterogenite-ASM-2026-031", 2000)],
        [("likasi-blend-2026-07", 1950, {"Co": 0.12, "Cu": 0.06})],
        custody_model="massBalance", time="2026-03-12T10:00:00Z"))
    ship("cobalt", "trader", "likasi-depot", "refiner", "quzhou-refinery",
         [("likasi-blend-2026-07", 1950)], mode="sea", time="2026-03-20T10:00:00Z",
         arrive="2026-05-02T10:00:00Z")
    ship("cobalt", "mine-kolwezi", "kolwezi-mine", "refiner", "quzhou-refinery",
         [("co-hydroxide-KZ-2026-014", 20000)], mode="sea", time="2026-03-18T10:00:00Z",
         arrive="2026-04-30T10:00:00Z")
    add("cobalt", "refiner", b.transformation(
        "quzhou-refinery", [("co-hydroxide-KZ-2026-014", 20000), ("likasi-blend-2026-07", 1950)],
        [("coso4-QZ-2026-0815", 30000, COSO4)], biz_step=BizStep.REFINING,
        custody_model="massBalance", time="2026-05-15T10:00:00Z"))
    ship("cobalt", "refiner", "quzhou-refinery", "cathode-maker", "kokkola-cathode",
         [("coso4-QZ-2026-0815", 1000)], mode="sea", time="2026-05-20T10:00:00Z",
         arrive="2026-06-30T10:00:00Z")

    # Lithium brine in Chile (IRMA Transparency only), nickel in Indonesia, graphite in China.
    add("lithium", "mine-atacama", b.extraction(
        "atacama-brine", "li-concentrate-SA-2026-05", 50000, {"Li": 0.06},
        extractionMethod="brine", mineral="lithium", time="2026-02-10T12:00:00Z"))
    add("lithium", "mine-atacama", b.transformation(
        "la-negra-plant", [("li-concentrate-SA-2026-05", 50000)],
        [("li2co3-LN-2026-112", 10000, LI2CO3)], biz_step=BizStep.REFINING,
        time="2026-03-01T12:00:00Z"))
    ship("lithium", "mine-atacama", "la-negra-plant", "cathode-maker", "kokkola-cathode",
         [("li2co3-LN-2026-112", 1500)], mode="sea", time="2026-03-10T12:00:00Z",
         arrive="2026-04-25T12:00:00Z")
    add("nickel", "mine-morowali", b.extraction(
        "morowali-mine", "laterite-MW-2026-220", 100000, {"Ni": 0.015},
        extractionMethod="industrial", mineral="nickel", time="2026-02-15T03:00:00Z"))
    add("nickel", "mine-morowali", b.transformation(
        "morowali-hpal", [("laterite-MW-2026-220", 100000)],
        [("niso4-MW-2026-031", 5000, NISO4)], biz_step=BizStep.REFINING,
        route="high-pressure acid leach", time="2026-03-01T03:00:00Z"))
    ship("nickel", "mine-morowali", "morowali-hpal", "cathode-maker", "kokkola-cathode",
         [("niso4-MW-2026-031", 5000)], mode="sea", time="2026-03-05T03:00:00Z",
         arrive="2026-04-20T03:00:00Z")
    add("graphite", "mine-jixi", b.extraction(
        "jixi-mine", "graphite-flake-JX-2026-40", 20000, {"graphite": 0.94},
        extractionMethod="industrial", mineral="natural-graphite", time="2026-02-20T01:00:00Z"))
    add("graphite", "mine-jixi", b.transformation(
        "jixi-spheronising", [("graphite-flake-JX-2026-40", 20000)],
        [("spherical-graphite-JX-2026-40", 9000, {"graphite": 0.9995})],
        biz_step=BizStep.REFINING, time="2026-03-15T01:00:00Z"))
    ship("graphite", "mine-jixi", "jixi-spheronising", "cell-maker", "wroclaw-cells",
         [("spherical-graphite-JX-2026-40", 1000)], mode="rail", time="2026-03-20T01:00:00Z",
         arrive="2026-04-28T01:00:00Z")

    # Cathode material: a first batch's scrap is recycled (pre-consumer) into the pack's batch.
    add("cathode", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 300), ("niso4-MW-2026-031", 1500),
                            ("li2co3-LN-2026-112", 500)],
        [("cam-KK-2026-B0", 600, CAM_COMPOSITION), ("cam-scrap-KK-2026-B0", 60, CAM_COMPOSITION)],
        custody_model="massBalance", processType="precursor co-precipitation and calcination",
        time="2026-07-02T08:00:00Z"))
    ship("cathode", "cathode-maker", "kokkola-cathode", "recycler", "fredrikstad-recycling",
         [("cam-scrap-KK-2026-B0", 60)], purpose="recycling", time="2026-07-06T08:00:00Z",
         arrive="2026-07-09T08:00:00Z")
    add("cathode", "recycler", b.transformation(
        "fredrikstad-recycling", [("cam-scrap-KK-2026-B0", 60)],
        [("rec-niso4-FR-2026-01", 120, NISO4), ("rec-li2co3-FR-2026-01", 20, LI2CO3),
         ("rec-coso4-FR-2026-01", 15, COSO4)], biz_step=BizStep.RECYCLING,
        route="hydrometallurgical", wasteOrigin="pre-consumer", time="2026-07-20T08:00:00Z"))
    ship("cathode", "recycler", "fredrikstad-recycling", "cathode-maker", "kokkola-cathode",
         [("rec-niso4-FR-2026-01", 120), ("rec-li2co3-FR-2026-01", 20),
          ("rec-coso4-FR-2026-01", 15)], time="2026-07-25T08:00:00Z",
         arrive="2026-07-28T08:00:00Z")
    add("cathode", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 172.5), ("rec-coso4-FR-2026-01", 15),
                            ("niso4-MW-2026-031", 1380), ("rec-niso4-FR-2026-01", 120),
                            ("li2co3-LN-2026-112", 230), ("rec-li2co3-FR-2026-01", 20)],
        [("cam-KK-2026-B1", 600, CAM_COMPOSITION)], custody_model="massBalance",
        processType="precursor co-precipitation and calcination", time="2026-08-03T08:00:00Z"))
    ship("cathode", "cathode-maker", "kokkola-cathode", "cell-maker", "wroclaw-cells",
         [("cam-KK-2026-B1", 100)], time="2026-08-05T08:00:00Z", arrive="2026-08-08T08:00:00Z")

    # Cells, modules and the first-life pack; the automaker places it on the EU market.
    modules_1 = _pack_production(b, add, "cells and pack", batch="WCW-2026-B1", pack=PACK_1,
                                 cam_lot="cam-KK-2026-B1", month="2026-08")
    ship("vehicle", "pack-maker", "salzgitter-pack", "automaker", "zwickau-plant",
         items=[PACK_1], time="2026-08-25T08:00:00Z", arrive="2026-08-26T08:00:00Z")
    add("vehicle", "automaker", b.transformation(
        "zwickau-plant", output_items=[(VEHICLE, "vehicle", 1650, {})],
        time="2026-08-28T08:00:00Z"))
    add("vehicle", "automaker", b.assembly(
        "zwickau-plant", VEHICLE, [PACK_1], kind="AssociationEvent",
        biz_step=BizStep.INSTALLING, time="2026-08-29T08:00:00Z"))
    add("vehicle", "automaker", b.observation(
        "zwickau-plant", items=[VEHICLE, PACK_1], biz_step=BizStep.RETAIL_SELLING,
        market="EU", time="2026-09-01T08:00:00Z",
        passport=f"{b.public_url}/passports/{PACK_1}"))
    ship("use", "automaker", "zwickau-plant", "fleet", "rotterdam-depot", items=[VEHICLE],
         time="2026-09-02T08:00:00Z", arrive="2026-09-04T08:00:00Z")

    # First life in a fleet, second life in stationary storage, collection as waste.
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 96, "2028-09-01T08:00:00Z"))
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 88, "2031-09-01T08:00:00Z"))
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 79, "2034-03-01T08:00:00Z"))
    add("use", "fleet", b.assembly(
        "rotterdam-depot", VEHICLE, [PACK_1], action="delete", kind="AssociationEvent",
        biz_step=BizStep.REMOVING, time="2034-03-10T08:00:00Z"))
    ship("second life", "fleet", "rotterdam-depot", "second-life", "eemshaven-storage",
         items=[PACK_1], purpose="secondUse", time="2034-03-20T08:00:00Z",
         arrive="2034-03-21T08:00:00Z")
    add("second life", "second-life", b.observation(
        "eemshaven-storage", items=[PACK_1], biz_step=BizStep.REPURPOSING,
        producerResponsibility=b.did_for("second-life"), newApplication="stationary",
        time="2034-04-01T08:00:00Z"))
    add("second life", "second-life", b.soh_reading("eemshaven-storage", PACK_1, 61,
                                                     "2039-02-01T08:00:00Z"))
    # Collection as declared waste at the recycler's collection point, dismantled there.
    ship("end of life", "second-life", "eemshaven-storage", "recycler", "moerdijk-collection",
         items=[PACK_1], purpose="recycling", waste=True, time="2039-03-01T08:00:00Z",
         arrive="2039-03-02T08:00:00Z")
    add("end of life", "recycler", b.assembly("moerdijk-collection", PACK_1, modules_1,
                                              action="delete", time="2039-03-15T08:00:00Z"))

    # Hydrometallurgical recycling: recovered cobalt, lithium and nickel lots.
    add("recycling", "recycler", b.transformation(
        "fredrikstad-recycling", input_items=modules_1,
        outputs=[("rec-coso4-FR-2039-07", 27, COSO4), ("rec-li2co3-FR-2039-07", 29, LI2CO3),
                 ("rec-niso4-FR-2039-07", 196, NISO4)],
        biz_step=BizStep.RECYCLING, route="hydrometallurgical", wasteOrigin="post-consumer",
        time="2039-04-02T08:00:00Z"))
    add("recycling", "recycler", b.observation(
        "moerdijk-collection", items=[PACK_1], action="delete", biz_step=BizStep.DESTROYING,
        disposition="https://ref.gs1.org/cbv/Disp-disposed", time="2039-04-03T08:00:00Z"))

    # The recovered cobalt and lithium (and nickel) go into a new cathode batch, cell and pack.
    ship("new pack", "recycler", "fredrikstad-recycling", "cathode-maker", "kokkola-cathode",
         [("rec-coso4-FR-2039-07", 27), ("rec-li2co3-FR-2039-07", 29),
          ("rec-niso4-FR-2039-07", 196)], time="2039-04-10T08:00:00Z",
         arrive="2039-04-13T08:00:00Z")
    add("new pack", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 75), ("rec-coso4-FR-2039-07", 27),
                            ("niso4-MW-2026-031", 1100), ("rec-niso4-FR-2039-07", 196),
                            ("li2co3-LN-2026-112", 160), ("rec-li2co3-FR-2039-07", 29)],
        [("cam-KK-2039-B7", 300, CAM_COMPOSITION)], custody_model="massBalance",
        processType="precursor co-precipitation and calcination", time="2039-05-02T08:00:00Z"))
    ship("new pack", "cathode-maker", "kokkola-cathode", "cell-maker", "wroclaw-cells",
         [("cam-KK-2039-B7", 100)], time="2039-05-05T08:00:00Z", arrive="2039-05-08T08:00:00Z")
    _pack_production(b, add, "new pack", batch="WCW-2039-B7", pack=PACK_2, cam_lot="cam-KK-2039-B7",
                     month="2039-05")
    return steps


# --- the demo network's credentials ----------------------------------------------------------

# Issuers outside the ledger (did:key, from keys_example/): name -> legal name. The governance
# root accredits the accreditation body, which accredits the auditors and the pack maker.
OFF_LEDGER_ISSUERS = {
    "governance": "Battery Traceability Governance Board",
    "accreditation-body": "European Battery Accreditation Service",
    "auditor-irma": "Andes Assurance Auditores SpA",
    "certifier-carbon": "Rheinland Carbon Verification GmbH",
    "laboratory": "Nordic Battery Test Lab AS",
}
# Who may issue what: the verifier's trust path asks for the specific credential type (an
# IRMA auditor accredited for IRMAAuditCredential may not issue carbon footprints).
ACCREDITED_TYPES = {
    "auditor-irma": ["IRMAAuditCredential", "DueDiligenceCredential"],
    "certifier-carbon": ["CarbonFootprintCredential", "RecycledContentCredential"],
    "laboratory": ["RecyclingEfficiencyCredential"],
    "pack-maker": ["BatteryPassportCredential"],
}


@dataclass(frozen=True)
class Issuance:
    """One credential of the demo: who issues it, its type and subject, and for how long."""

    issuer: str
    type_name: str
    subject: dict[str, Any]
    years: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def party(b: Builders, name: str) -> dict[str, str]:
    """{id, name} of a participant (its did:web) or of an issuer outside the ledger (did:key)."""
    legal = b.participants[name][0] if name in b.participants else OFF_LEDGER_ISSUERS[name]
    did = b.did_for(name) if name in b.participants else key_for(name).did_key
    return {"id": did, "name": legal}


def _attestation(b: Builders, subject_id: str, name: str, to: str, kind: str = "certification",
                 ) -> dict[str, Any]:
    return {"id": subject_id, "name": name, "assessorLevel": "3rdParty",
            "assessmentLevel": "Accredited", "attestationType": kind,
            "issuedToParty": party(b, to)}


def _report(url: str, name: str) -> dict[str, Any]:
    return {"type": ["SecureLink", "Link"], "linkURL": url, "linkName": name,
            "hashDigest": _digest(url)}


def _irma(b: Builders, site: str, operator: str, level: str, mineral: str,
          where: tuple[float, float], scores: tuple[float, float, float, float]
          ) -> dict[str, Any]:
    country = b.participants[operator][2]
    site_name = site.replace("-", " ").title()
    chapters = [("1.1", "Legal compliance"), ("2.1", "Environmental and social impact "
                "assessment"), ("3.1", "Fair labour and terms of work"),
                ("4.1", "Waste and materials management")]
    return {
        **_attestation(b, b.facility_id(site), f"IRMA audit of {site_name} (initial, 2025)",
                       operator),
        "conformityCertificate": _report(f"https://responsiblemining.net/reports/{site}-2025.pdf",
                                         f"IRMA initial audit report, {site_name}"),
        "facilityName": site_name, "operator": party(b, operator),
        "countryOfOperation": country,
        "geoLocation": {"type": "Point", "coordinates": [where[1], where[0]]},
        "minerals": [mineral], "irmaStandardVersion": "IRMA-STD-001 v1.0",
        "achievementLevel": level, "certified": False,
        "chapterScores": [{"chapter": c, "title": t, "score": s}
                          for (c, t), s in zip(chapters, scores, strict=True)],
        "auditType": "initial", "certificationBody": party(b, "auditor-irma"),
        "leadAuditor": {"name": "Carolina Vidal"},
        "auditDates": {"stage1Date": "2025-06-02", "stage2Date": "2025-08-18",
                       "reportFinalisedDate": "2025-10-20"},
        "openNonConformities": {"critical": 0, "major": 0},
        "certificationPeriod": {"startDate": "2025-11-01", "endDate": "2028-10-31"},
    }


def _carbon(b: Builders, pack: str, total: float, stages: tuple[float, float, float, float],
            klass: str) -> dict[str, Any]:
    names = ("RawMaterialExtraction", "MainProduction", "Distribution", "Recycling")
    return {
        **_attestation(b, item_id(pack), f"Carbon footprint of {BATTERY_MODEL}, {pack}",
                       "pack-maker", "verification"),
        "batteryModelName": BATTERY_MODEL,
        "manufacturingPlant": {"id": b.facility_id("salzgitter-pack"),
                               "name": "Salzgitter Pack"},
        "batteryCarbonFootprint": total,
        "carbonFootprintPerLifecycleStage": [{"lifecycleStage": n, "carbonFootprint": v}
                                             for n, v in zip(names, stages, strict=True)],
        "carbonFootprintPerformanceClass": klass,
        "calculationRules": "EU-2023/1542-delegated-act",
        "carbonFootprintStudy": f"https://elbe-battery.example/lca/{pack}.pdf",
        "thirdPartyVerifier": party(b, "certifier-carbon"),
    }


def _recycled(b: Builders, pack: str, batch: str, lots: list[str], post: bool
              ) -> dict[str, Any]:
    shares = recycled_shares()[pack]
    return {
        **_attestation(b, item_id(pack), f"Recycled content of {BATTERY_MODEL}, batch {batch}",
                       "pack-maker", "verification"),
        "batteryModelName": BATTERY_MODEL, "batchNumber": batch,
        "manufacturingPlant": {"id": b.facility_id("salzgitter-pack"),
                               "name": "Salzgitter Pack"},
        "recycledContent": [{"recycledMaterial": m, "preConsumerShare": 0.0 if post else v,
                             "postConsumerShare": v if post else 0.0}
                            for m, v in shares.items()],
        "backingLots": [lot_id(lot) for lot in lots],
    }


def _passport(b: Builders, pack: str, batch: str, produced: str) -> dict[str, Any]:
    return {
        "id": item_id(pack), "granularityLevel": "item",
        "product": {"type": ["Product"], "id": item_id(pack), "name": BATTERY_MODEL,
                    "serialNumber": pack.rsplit("-", 1)[-1], "batchNumber": batch,
                    "producedByParty": party(b, "pack-maker"),
                    "producedAtFacility": {"id": b.facility_id("salzgitter-pack"),
                                           "name": "Salzgitter Pack"},
                    "productionDate": produced, "countryOfProduction": "DE"},
        "batteryCategory": "ev",
        "batteryChemistry": {"shortName": "NMC811",
                             "clearName": "Lithium nickel manganese cobalt oxide (8:1:1)"},
        "ratedCapacity": 230.0, "ratedEnergy": 80.6, "nominalVoltage": 350.4,
        "batteryMass": 420.0,
        "hazardousSubstances": [{"hazardousSubstanceName": "Lithium hexafluorophosphate",
                                 "hazardousSubstanceIdentifier": "21324-40-3",
                                 "hazardousSubstanceClass": "AcuteToxicity"}],
        "dismantlingAndRemovalInformation": [{
            "documentType": "DismantlingManual", "mimeType": "application/pdf",
            "documentURL": "https://elbe-battery.example/manuals/ebs-80-dismantling.pdf"}],
        "safetyMeasures": {"safetyInstructions": "https://elbe-battery.example/safety/ebs-80",
                           "extinguishingAgent": ["Water (large quantities)"]},
        "dueDiligenceDeclaration": {
            "type": ["Link"], "linkURL": "https://elbe-battery.example/due-diligence/2026",
            "linkName": "Supply chain due diligence report 2026"},
    }


def demo_issuances(b: Builders = DEMO) -> list[Issuance]:
    """The credentials of the demo, by accredited issuers (and the pack maker's passports)."""
    return [
        Issuance("auditor-irma", "IRMAAuditCredential", _irma(
            b, "kolwezi-mine", "mine-kolwezi", "IRMA 75", "cobalt", (-10.72, 25.47),
            (88, 79, 81, 76)), 3),
        Issuance("auditor-irma", "IRMAAuditCredential", _irma(
            b, "atacama-brine", "mine-atacama", "IRMA Transparency", "lithium",
            (-23.50, -68.25), (61, 42, 55, 47)), 3),
        Issuance("auditor-irma", "DueDiligenceCredential", {
            **_attestation(b, b.did_for("refiner"), "OECD-aligned due diligence of "
                           "Quzhou Cobalt Materials", "refiner", "verification"),
            "dueDiligencePolicy": {"coveredMinerals": ["cobalt"], "oecdAligned": True,
                                   "policyDocument": _report(
                                       "https://quzhou-cobalt.example/dd-policy.pdf",
                                       "Cobalt supply chain policy")},
            "chainOfCustodySystem": "mass-balance", "supplierContractClauses": True,
            "latestAnnualReport": {"reportDate": "2026-04-30", "report": _report(
                "https://quzhou-cobalt.example/dd-report-2025.pdf", "Annual report 2025")},
        }, 1),
        Issuance("certifier-carbon", "CarbonFootprintCredential",
                 _carbon(b, PACK_1, 61.4, (38.2, 19.6, 1.9, 1.7), "B"), 10),
        Issuance("certifier-carbon", "RecycledContentCredential", _recycled(
            b, PACK_1, "WCW-2026-B1", ["rec-coso4-FR-2026-01", "rec-li2co3-FR-2026-01",
                                       "rec-niso4-FR-2026-01"], post=False), 10),
        Issuance("laboratory", "RecyclingEfficiencyCredential", {
            **_attestation(b, b.facility_id("fredrikstad-recycling"), "Recycling efficiency "
                           "of the Fredrikstad plant, 2038-2039", "recycler", "verification"),
            "reportingPeriod": {"startDate": "2038-07-01", "endDate": "2039-06-30"},
            "inputMass": {"value": 18500, "unit": "TNE"}, "recyclingEfficiency": 74.5,
            # The plant's statement covers its whole input, which includes the 12 V lead-acid
            # auxiliary batteries collected with end-of-life vehicles' packs.
            "materialRecovery": [{"material": m, "recoveryRate": r} for m, r in (
                ("Cobalt", 96.2), ("Nickel", 95.8), ("Copper", 97.1), ("Lead", 95.4),
                ("Lithium", 81.5))],
            "processRoute": ["mechanical-pretreatment", "hydrometallurgy"],
            "energySource": {"renewableShare": 98, "description": "Norwegian hydropower"},
        }, 2),
        Issuance("pack-maker", "BatteryPassportCredential",
                 _passport(b, PACK_1, "WCW-2026-B1", "2026-08-21"), 15),
        Issuance("certifier-carbon", "CarbonFootprintCredential",
                 _carbon(b, PACK_2, 44.8, (24.1, 17.9, 1.6, 1.2), "A"), 10),
        Issuance("certifier-carbon", "RecycledContentCredential", _recycled(
            b, PACK_2, "WCW-2039-B7", ["rec-coso4-FR-2039-07", "rec-li2co3-FR-2039-07",
                                       "rec-niso4-FR-2039-07"], post=True), 10),
        Issuance("pack-maker", "BatteryPassportCredential",
                 _passport(b, PACK_2, "WCW-2039-B7", "2039-05-21"), 15),
    ]


def accreditation(b: Builders, issuer: str, subject: str, types: Sequence[str], *,
                  may_accredit: bool, valid_from: str, valid_until: str) -> dict[str, Any]:
    """An unsigned AccreditationCredential: `issuer` accredits `subject` (names) for `types`."""
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", "AccreditationCredential"],
        "issuer": party(b, issuer)["id"], "validFrom": valid_from, "validUntil": valid_until,
        "credentialSubject": {"id": party(b, subject)["id"], "type": "Accreditation",
                              "credentialTypes": list(types), "mayAccredit": may_accredit},
    }
