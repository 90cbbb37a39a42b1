"""EPCIS import: events mapped, signed and appended per second, against the custody batch
append of the same run.

Workload: EPCIS 2.0 documents of 1,000 ObjectEvents each (ADD, an extraction at the registered
mine creating a lot of 10 kg, its declaration in the ILMD), imported by
`ledger.epcis_io.import_epcis` (schema check and mapping of each event, DTE credentials of 100
events signed with the miner's key, one atomic append). Beside it, in the same process and
ledger, the custody bench's batch append (pre-signed credentials of one event, 1,000 a batch).
Both: best of 3 rounds of 3 batches; the ratio is import / custody (target >= 0.8).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from batterytrace.ledger.epcis_io import import_epcis
from batterytrace.ledger.epcis_schema import EPCIS_CONTEXT_URL
from batterytrace.ledger.events import BizStep

from bench.bench_custody import MINE, MINER, MINER_DID, _new_ledger, _submissions
from bench.run import row

EVENTS = 1000
ROUNDS = 3
BATCHES = 3


def epcis_document(tag: str, count: int = EVENTS) -> dict[str, Any]:
    """An EPCISDocument of `count` extraction ObjectEvents creating lots `<tag>-<n>`."""
    events = []
    for n in range(count):
        lot = f"https://id.example.com/lots/{tag}-{n}"
        events.append({
            "type": "ObjectEvent", "eventID": f"urn:bench:epcis:{tag}:{n}",
            "eventTime": "2026-02-01T10:00:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": BizStep.EXTRACTION, "disposition": "active",
            "bizLocation": {"id": MINE}, "readPoint": {"id": MINE},
            "quantityList": [{"epcClass": lot, "quantity": 10, "uom": "KGM"}],
            "ilmd": {"batterytrace:lotDeclarations": [
                {"id": lot, "composition": {"Co": 0.1, "Cu": 0.04}}]},
        })
    return {"@context": [EPCIS_CONTEXT_URL, {"batterytrace": "https://batterytrace.dev/epcis#"}],
            "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-02-01T10:00:00Z", "epcisBody": {"eventList": events}}


def run() -> list[dict[str, object]]:
    custody_batches = [_submissions(EVENTS, f"custody{b}") for b in range(ROUNDS * BATCHES + 1)]
    documents = [epcis_document(f"epcis{b}") for b in range(ROUNDS * BATCHES + 1)]
    custody_rates, import_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        led = _new_ledger(Path(tmp) / "h")
        led.append(custody_batches[0])  # warm-up: the worker pool, the schemas
        import_epcis(led, documents[0], MINER, MINER_DID)
        for r in range(ROUNDS):  # interleaved: both see the same host load
            start = time.perf_counter()
            for batch in custody_batches[1 + r * BATCHES:1 + (r + 1) * BATCHES]:
                led.append(batch)
            custody_rates.append(BATCHES * EVENTS / (time.perf_counter() - start))
            start = time.perf_counter()
            for document in documents[1 + r * BATCHES:1 + (r + 1) * BATCHES]:
                import_epcis(led, document, MINER, MINER_DID)
            import_rates.append(BATCHES * EVENTS / (time.perf_counter() - start))
        led.close()
    custody, imported = max(custody_rates), max(import_rates)
    return [
        row("epcis_import_per_s", imported, "events/s", "custody_append_batch1000_per_s",
            custody, target_ratio=0.8, rounds=[round(x) for x in import_rates],
            custody_rounds=[round(x) for x in custody_rates],
            note="EPCIS 2.0 documents of 1,000 ObjectEvents: schema check, mapping, "
                 "DTE credentials of 100 events signed, one append each; against "
                 "Ledger.append of 1,000 pre-signed one-event credentials, same run"),
    ]
