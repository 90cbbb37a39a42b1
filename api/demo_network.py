"""The example network: registry documents and signed UNTP DTE credentials, mine to recycler.

`make demo`, `docs/events.md`, the tests and the benches all build on it. Keys come from
`keys_example/` (public and insecure, derived from names: see keys_example/README.md).
A `Network` holds an in-memory Registry and CustodyState to apply documents to without a
database; the same documents append through the Ledger in the integration tests and benches.

    net = Network.standard()            # miner, trader, refiner, ... with their facilities
    net.apply(net.credential("miner", [extraction(net, "miner", "ore-1", 1000, {"Co": 0.1})]))
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.custody import CustodyState, apply_credential
from batterytrace.ledger.events import DTE_CONTEXTS, BizStep, parse_credential
from batterytrace.ledger.registry import Registry, apply_registry, participant_did

# The ledger default public URL: participant DIDs derive from it.
PUBLIC_URL = "http://127.0.0.1:8000"
CREATED = "2026-01-15T08:00:00Z"

# name -> (legal name, roles, country, [(facility name, kind)])
STANDARD_PARTICIPANTS: dict[str, tuple[str, list[str], str, list[tuple[str, str]]]] = {
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


def key_for(name: str) -> Ed25519Key:
    """The (public, insecure) demo key of a participant name, or of 'admin' / 'log'.

    The same seed as the Multikey file `keys_example/<name>.json`."""
    return _key_for(name)


@cache
def _key_for(name: str) -> Ed25519Key:
    return Ed25519Key.from_seed(hashlib.sha256(f"batterytrace-demo:{name}".encode()).digest())


ADMIN_KEY = key_for("admin")


def did_for(name: str) -> str:
    return participant_did(PUBLIC_URL, name)


def facility_id(name: str) -> str:
    return f"{PUBLIC_URL}/facilities/{name}"


def lot_id(name: str) -> str:
    return f"https://id.example.com/lots/{name}"


def item_id(name: str) -> str:
    return f"https://id.example.com/items/{name}"


def event_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def digest_of(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


# --- registry documents -------------------------------------------------------------------


def sign_admin(document: dict[str, Any]) -> dict[str, Any]:
    return sign(document, ADMIN_KEY, created=CREATED)


def sign_as(document: dict[str, Any], name: str, key: Ed25519Key | None = None) -> dict[str, Any]:
    key = key or key_for(name)
    vm = f"{did_for(name)}#{key.public_multibase}"
    return sign(document, key, verification_method=vm, created=CREATED)


def participant_doc(name: str, legal_name: str, roles: Sequence[str], country: str,
                    keys: Iterable[Ed25519Key] | None = None) -> dict[str, Any]:
    return {
        "type": "ParticipantRegistration",
        "name": name,
        "legalName": legal_name,
        "roles": list(roles),
        "country": country,
        "keys": [k.public_multibase for k in (keys or [key_for(name)])],
    }


def facility_doc(name: str, operator: str, kind: str, country: str) -> dict[str, Any]:
    return {
        "type": "FacilityRegistration",
        "id": facility_id(name),
        "name": name.replace("-", " ").title(),
        "operator": did_for(operator),
        "country": country,
        "kind": kind,
        "latitude": 10.5,
        "longitude": 25.25,
    }


def standard_registry_docs() -> list[dict[str, Any]]:
    """Admin-signed registrations of STANDARD_PARTICIPANTS and their facilities."""
    return copy.deepcopy(_standard_registry_docs())


@lru_cache(maxsize=1)
def _standard_registry_docs() -> list[dict[str, Any]]:
    docs = []
    for name, (legal, roles, country, facilities) in STANDARD_PARTICIPANTS.items():
        docs.append(sign_admin(participant_doc(name, legal, roles, country)))
        for fac, kind in facilities:
            docs.append(sign_admin(facility_doc(fac, name, kind, country)))
    return docs


# --- events -------------------------------------------------------------------------------


def quantity(lot: str, kg: Any, uom: str = "KGM") -> dict[str, Any]:
    return {"productId": lot_id(lot), "productName": lot, "quantity": kg, "uom": uom}


def item_ref(name: str) -> dict[str, Any]:
    return {"type": ["Item"], "id": item_id(name), "name": name}


def _event(kind: str, location: str, biz_step: str, *, action: str = "observe",
           time: str = "2026-02-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    event = {
        "type": [kind, "Event"],
        "id": event_id(),
        "eventTime": time,
        "action": action,
        "bizStep": biz_step,
        "bizLocation": facility_id(location),
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


def extraction(location: str, lot: str, kg: Any, composition: Mapping[str, Any],
               **details: Any) -> dict[str, Any]:
    return _event(
        "ObjectEvent", location, BizStep.EXTRACTION, action="add",
        disposition="https://ref.gs1.org/cbv/Disp-active",
        quantityList=[quantity(lot, kg)],
        lotDeclarations=[{"id": lot_id(lot), "composition": dict(composition), **details}],
    )


def transformation(
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
    """outputs: (lot, kg, composition); output_items: (item, category, mass kg, composition)."""
    return _event(
        "TransformationEvent", location, biz_step, action="add",
        inputQuantityList=[quantity(lot, kg) for lot, kg in inputs] or None,
        outputQuantityList=[quantity(lot, kg) for lot, kg, _ in outputs] or None,
        inputEPCList=[item_ref(i) for i in input_items] or None,
        outputEPCList=[item_ref(i) for i, *_ in output_items] or None,
        custodyModel=custody_model,
        lotDeclarations=[{"id": lot_id(lot), "composition": dict(c)} for lot, _, c in outputs]
        or None,
        itemDeclarations=[
            {"id": item_id(i), "category": cat, "mass": {"value": kg, "uom": "KGM"},
             "composition": dict(c)}
            for i, cat, kg, c in output_items
        ] or None,
        **fields,
    )


def shipping(location: str, source: str, destination: str, destination_site: str,
             lots: Sequence[tuple[str, Any]] = (), items: Sequence[str] = (),
             *, mode: str = "road", purpose: str = "sale", waste: bool = False) -> dict[str, Any]:
    return _event(
        "TransactionEvent", location, BizStep.SHIPPING,
        disposition="https://ref.gs1.org/cbv/Disp-in_transit",
        sourceParty=did_for(source), destinationParty=did_for(destination),
        bizTransaction="https://ref.gs1.org/cbv/BTT-desadv",
        quantityList=[quantity(lot, kg) for lot, kg in lots] or None,
        epcList=[item_ref(i) for i in items] or None,
        transport={"mode": mode, "purpose": purpose, "origin": facility_id(location),
                   "destination": facility_id(destination_site),
                   "dispatchTime": "2026-02-01T10:00:00Z"},
        wasteBattery=waste or None,
    )


def receiving(shipment: Mapping[str, Any], location: str) -> dict[str, Any]:
    """The receipt that closes `shipment` (same contents), signed by its destination."""
    return _event(
        "TransactionEvent", location, BizStep.RECEIVING,
        disposition="https://ref.gs1.org/cbv/Disp-active",
        sourceParty=shipment["sourceParty"], destinationParty=shipment["destinationParty"],
        quantityList=shipment.get("quantityList"), epcList=shipment.get("epcList"),
        shipmentEvent=shipment["id"], time="2026-02-03T10:00:00Z",
    )


def assembly(location: str, parent: str, children: Sequence[str], *, action: str = "add",
             kind: str = "AggregationEvent", biz_step: str | None = None) -> dict[str, Any]:
    step = biz_step or (BizStep.ASSEMBLING if action == "add" else BizStep.DISASSEMBLING)
    return _event(kind, location, step, action=action, parentEPC=item_ref(parent),
                  childEPCList=[item_ref(c) for c in children] or None)


def observation(location: str, items: Sequence[str] = (), lots: Sequence[tuple[str, Any]] = (),
                *, action: str = "observe", biz_step: str = BizStep.INSPECTING,
                **fields: Any) -> dict[str, Any]:
    return _event("ObjectEvent", location, biz_step, action=action,
                  epcList=[item_ref(i) for i in items] or None,
                  quantityList=[quantity(lot, kg) for lot, kg in lots] or None, **fields)


def credential(issuer: str, events: Sequence[Mapping[str, Any]],
               credential_id: str | None = None) -> dict[str, Any]:
    """An unsigned DTE credential of `issuer` carrying `events`."""
    legal = STANDARD_PARTICIPANTS.get(issuer, (issuer,))[0]
    return {
        "@context": list(DTE_CONTEXTS),
        "type": ["DigitalTraceabilityEvent", "VerifiableCredential"],
        "id": credential_id or event_id(),
        "issuer": {"type": ["CredentialIssuer"], "id": did_for(issuer), "name": legal},
        "validFrom": "2026-02-01T10:00:00Z",
        "credentialSubject": [dict(e) for e in events],
    }


def signed_credential(issuer: str, events: Sequence[Mapping[str, Any]],
                      key: Ed25519Key | None = None) -> dict[str, Any]:
    return sign_as(credential(issuer, events), issuer, key)


# --- an in-memory network ----------------------------------------------------------------


class Network:
    """Registry + custody state in memory, with log positions counted as documents apply."""

    def __init__(self, tolerance: Decimal | str = "0") -> None:
        self.registry = Registry(ADMIN_KEY.did_key, PUBLIC_URL)
        self.state = CustodyState(self.registry, Decimal(tolerance))
        self.position = 0

    @classmethod
    def standard(cls, tolerance: Decimal | str = "0") -> Network:
        net = cls(tolerance)
        for doc in standard_registry_docs():
            net.register(doc)
        return net

    def register(self, document: Mapping[str, Any], signers: Iterable[str] | None = None) -> Any:
        self.position += 1
        if signers is None:
            signers = [ADMIN_KEY.verification_method]
        return apply_registry(self.registry, document, self.position, signers,
                              digest_of(document))

    def apply(self, document: Mapping[str, Any]) -> int | None:
        """Parse and apply a credential as its issuer (signatures are the store's concern)."""
        self.position += 1
        parsed = parse_credential(document)
        return apply_credential(self.state, parsed, parsed.issuer, self.position,
                                digest_of(document))

    def events(self, issuer: str, *events: Mapping[str, Any]) -> int | None:
        return self.apply(credential(issuer, events))


# --- the documented lifecycle (docs/events.md is generated from it) ------------------------

NMC811 = {"Li": 0.072, "Ni": 0.48, "Mn": 0.056, "Co": 0.06}


def lifecycle() -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, issuer, event) for every stage of REQUIREMENTS 3.3, valid in this order."""
    steps: list[tuple[str, str, dict[str, Any]]] = []

    def add(stage: str, issuer: str, event: dict[str, Any]) -> dict[str, Any]:
        event["id"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'bt-docs/' + stage)}"
        steps.append((stage, issuer, event))
        return event

    add("Extraction at an industrial mine site", "miner", extraction(
        "kolwezi-mine", "co-hydroxide-2026-001", 40, {"Co": 0.32, "Cu": 0.04},
        extractionMethod="industrial", mineral="cobalt"))
    add("Extraction at an artisanal site", "coop", extraction(
        "kambove-asm", "heterogenite-asm-017", 2, {"Co": 0.12, "Cu": 0.06},
        extractionMethod="artisanal", legalStatus="ZEA Kambove-Ouest"))
    asm = add("ASM purchase: the cooperative ships to a licensed trader", "coop", shipping(
        "kambove-asm", "coop", "trader", "likasi-depot", [("heterogenite-asm-017", 2)]))
    add("ASM purchase: the trader receives", "trader", receiving(asm, "likasi-depot"))
    add("Aggregation at the trader (commingling, mass balance)", "trader", transformation(
        "likasi-depot", [("heterogenite-asm-017", 2)],
        [("likasi-blend-2026-02", 2, {"Co": 0.12, "Cu": 0.06})], custody_model="massBalance"))
    sea = add("Transport by sea to the refiner", "miner", shipping(
        "kolwezi-mine", "miner", "refiner", "nantong-refinery",
        [("co-hydroxide-2026-001", 40)], mode="sea"))
    add("Arrival at the refinery", "refiner", receiving(sea, "nantong-refinery"))
    add("Refining to cobalt sulphate", "refiner", transformation(
        "nantong-refinery", [("co-hydroxide-2026-001", 40)],
        [("coso4-2026-0042", 60, {"Co": 0.2})], biz_step=BizStep.REFINING,
        custody_model="segregated"))
    cathode = add("Shipment of refined material to the cathode and cell maker", "refiner",
                  shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                           [("coso4-2026-0042", 60)], mode="rail"))
    add("Receipt at the cell plant", "cellmaker", receiving(cathode, "wroclaw-plant"))
    add("Cathode and cell production (model, plant, chemistry)", "cellmaker", transformation(
        "wroclaw-plant", [("coso4-2026-0042", 10)],
        output_items=[("cell-a1", "cell", 0.9, {"Co": 0.06}), ("cell-a2", "cell", 0.9,
                                                                {"Co": 0.06})],
        processType="cell manufacture", cellModel="WCW-NMC811-60Ah", chemistry="NMC811"))
    add("Module housing production", "cellmaker", transformation(
        "wroclaw-plant", [("coso4-2026-0042", 1)],
        output_items=[("module-m1", "module", 2.5, {}), ("pack-p1", "pack", 30, {})]))
    add("Module assembly", "cellmaker", assembly("wroclaw-plant", "module-m1",
                                                 ["cell-a1", "cell-a2"]))
    add("Pack assembly", "cellmaker", assembly("wroclaw-plant", "pack-p1", ["module-m1"]))
    pack = add("Shipment of the pack to the automaker", "cellmaker", shipping(
        "wroclaw-plant", "cellmaker", "automaker", "zwickau-plant", items=["pack-p1"]))
    add("Receipt at the vehicle plant", "automaker", receiving(pack, "zwickau-plant"))
    add("Vehicle production (body without tracked material)", "automaker", transformation(
        "zwickau-plant", output_items=[("vehicle-vin-wnw0001", "vehicle", 1650, {})]))
    add("Installation of the pack in the vehicle", "automaker", assembly(
        "zwickau-plant", "vehicle-vin-wnw0001", ["pack-p1"], kind="AssociationEvent",
        biz_step=BizStep.INSTALLING))
    add("Placing on the market", "automaker", observation(
        "zwickau-plant", items=["vehicle-vin-wnw0001"], biz_step=BizStep.RETAIL_SELLING,
        market="EU", passport="https://id.example.com/dpp/vehicle-vin-wnw0001"))
    sale = add("Sale and delivery to a fleet", "automaker", shipping(
        "zwickau-plant", "automaker", "fleet", "rotterdam-depot",
        items=["vehicle-vin-wnw0001"]))
    add("Delivery received by the fleet", "fleet", receiving(sale, "rotterdam-depot"))
    add("State-of-health reading (BMS sensor report)", "fleet", observation(
        "rotterdam-depot", items=["pack-p1"], biz_step=BizStep.SENSOR_REPORTING,
        sensorElementList=[{"sensorMetadata": {"device": item_ref("pack-p1")},
                            "sensorReport": [{"time": "2030-05-01T08:00:00Z",
                                              "sensorType": "https://batterytrace.dev/vocab/"
                                              "stateOfHealth", "value": 78, "uom": "P1"}]}]))
    add("Removal of the pack", "fleet", assembly(
        "rotterdam-depot", "vehicle-vin-wnw0001", ["pack-p1"], action="delete",
        kind="AssociationEvent", biz_step=BizStep.REMOVING))
    add("Repair", "fleet", observation("rotterdam-depot", items=["pack-p1"],
                                       biz_step=BizStep.REPAIRING, partsReplaced=["BMS"]))
    add("Repurposing to second life (producer responsibility transferred)", "fleet",
        observation("rotterdam-depot", items=["pack-p1"], biz_step=BizStep.REPURPOSING,
                    producerResponsibility=did_for("fleet"), newApplication="stationary"))
    waste = add("Collection: transport of a declared waste battery", "fleet", shipping(
        "rotterdam-depot", "fleet", "recycler", "fredrikstad-plant", items=["pack-p1"],
        purpose="recycling", waste=True))
    add("Collection received by the recycler", "recycler", receiving(waste, "fredrikstad-plant"))
    add("Dismantling (pack to module)", "recycler", assembly(
        "fredrikstad-plant", "pack-p1", ["module-m1"], action="delete"))
    add("Recycling with recovered-material lots", "recycler", transformation(
        "fredrikstad-plant", input_items=["module-m1"],
        outputs=[("recovered-co-2031-001", 0.1, {"Co": 0.99})], biz_step=BizStep.RECYCLING,
        custody_model="segregated", route="hydrometallurgical"))
    add("Disposal of the empty pack housing", "recycler", observation(
        "fredrikstad-plant", items=["pack-p1"], action="delete", biz_step=BizStep.DESTROYING,
        disposition="https://ref.gs1.org/cbv/Disp-disposed"))
    return steps
