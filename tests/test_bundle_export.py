"""Bundle export: closure selection, record layout, --all, --redact, --consistency-from."""

from __future__ import annotations

import io
import json

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import BundleExportError, export_bundle
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    item_id,
    lifecycle,
    lot_id,
    signed_credential,
    standard_registry_docs,
)


@pytest.fixture(scope="module")
def led(tmp_path_factory):
    home = tmp_path_factory.mktemp("export") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    ledger = Ledger.init(home, None, "ledger.example/export", PUBLIC_URL)
    ledger.validators.update(validators_for(ledger))
    ledger.append([Submission("registry", d) for d in standard_registry_docs()])
    for _, issuer, event in lifecycle():
        ledger.append([Submission("event", signed_credential(issuer, [event]))])
    yield ledger
    ledger.close()


def records(led, **kw):
    buf = io.BytesIO()
    summary = export_bundle(led, buf, **kw)
    return summary, [json.loads(line) for line in buf.getvalue().splitlines()]


def test_item_closure_holds_its_history_not_unrelated_material(led):
    summary, recs = records(led, item=item_id("pack-p1"))
    assert recs[0]["type"] == "header" and recs[0]["version"] == 1
    assert recs[0]["scope"] == {"kind": "item", "id": item_id("pack-p1")}
    assert recs[-1] == {"type": "end", "records": len(recs) - 1}
    entries = [r["entry"] for r in recs if r["type"] == "entry"]
    seqs = [e["seq"] for e in entries]
    assert seqs[0] == 0 and seqs == sorted(seqs) and len(seqs) == summary.entries
    assert all(len(r["proof"]) > 0 for r in recs if r["type"] == "entry")
    text = json.dumps(entries)
    assert lot_id("co-hydroxide-2026-001") in text  # upstream back to extraction
    assert lot_id("recovered-co-2031-001") in text  # its own recycling downstream
    assert "heterogenite-asm-017" not in text  # the artisanal chain feeds nothing of it
    assert summary.entries < led.latest_checkpoint()[0].size


def test_all_bundle_has_every_entry_and_no_proofs(led):
    _, recs = records(led, all_entries=True)
    entries = [r for r in recs if r["type"] == "entry"]
    assert [r["entry"]["seq"] for r in entries] == list(range(led.latest_checkpoint()[0].size))
    assert not any("proof" in r for r in entries)


def test_consistency_proof_and_scope_options(led):
    _, recs = records(led, lot=lot_id("coso4-2026-0042"), consistency_from=5)
    assert recs[0]["consistency"]["oldSize"] == 5 and recs[0]["consistency"]["proof"]
    with pytest.raises(BundleExportError):
        records(led, item=item_id("pack-p1"), all_entries=True)
    with pytest.raises(BundleExportError):
        records(led, item=item_id("no-such-item"))


def test_redacted_credential_keeps_only_its_digest(led):
    cred = {"id": "urn:uuid:c1", "type": ["VerifiableCredential", "IRMAAuditCredential"],
            "credentialSubject": {"id": f"{PUBLIC_URL}/facilities/kolwezi-mine", "level": 75}}
    other = {"id": "urn:uuid:c2", "type": ["VerifiableCredential"],
             "credentialSubject": {"id": f"{PUBLIC_URL}/facilities/elsewhere"}}
    summary, recs = records(led, item=item_id("pack-p1"), credentials=[cred, other],
                            redact=["IRMAAuditCredential"])
    [red] = [r for r in recs if r["type"] == "redacted-credential"]
    assert red["id"] == "urn:uuid:c1" and len(red["digest"]) == 64 and "level" not in str(red)
    assert summary.redacted == 1 and not any(r["type"] == "credential" for r in recs)


def test_every_record_validates_against_the_published_schema(led):
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("batterytrace.verifier").joinpath(
        "data/bundle-1.schema.json").read_text())
    _, recs = records(led, item=item_id("pack-p1"), consistency_from=3)
    for record in recs:
        jsonschema.validate(record, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**recs[0], "version": 2}, schema)
