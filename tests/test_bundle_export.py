"""Bundle export: closure selection, record layout, --all, --redact, --consistency-from."""

from __future__ import annotations

import io
import json

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import BundleExportError, export_bundle
from batterytrace.ledger.home import DATABASE_FILE
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


@pytest.fixture
def small_home(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    ledger = Ledger.init(home, None, "ledger.example/self-check", PUBLIC_URL)
    ledger.validators.update(validators_for(ledger))
    ledger.append([Submission("registry", d) for d in standard_registry_docs()])
    for _, issuer, event in lifecycle()[:6]:
        ledger.append([Submission("event", signed_credential(issuer, [event]))])
    ledger.close()
    return home


def _flip_leaf_one(home):
    """Flip a byte of leaf 1's hash in its tree tile: entry 0 (in every bundle) proves with it,
    while the root's own subtrees stay intact."""
    import sqlite3

    from batterytrace.ledger.storage import tile_slot

    key, offset = tile_slot(0, 1)
    with sqlite3.connect(home / DATABASE_FILE) as db:
        (hashes,) = db.execute("SELECT hashes FROM ledger_tree_tiles WHERE key = ?",
                               (key,)).fetchone()
        hashes = bytearray(hashes)
        hashes[offset] ^= 0x01
        db.execute("UPDATE ledger_tree_tiles SET hashes = ? WHERE key = ?", (bytes(hashes), key))


def test_export_checks_its_proofs_and_refuses_a_damaged_tree(small_home):
    from batterytrace.ledger.bundle_export import BundleSelfCheckError

    ledger = Ledger.open(small_home)
    try:
        export_bundle(ledger, io.BytesIO(), lot=lot_id("co-hydroxide-2026-001"))  # intact: passes
    finally:
        ledger.close()
    _flip_leaf_one(small_home)
    ledger = Ledger.open(small_home)
    try:
        with pytest.raises(BundleSelfCheckError) as caught:
            export_bundle(ledger, io.BytesIO(), lot=lot_id("co-hydroxide-2026-001"))
        assert caught.value.code == "BUNDLE_EXPORT_SELF_CHECK"
        assert BundleSelfCheckError.exit_code == 1
    finally:
        ledger.close()


def _assert_all_export_refused(home):
    """An `all` export of the ledger in `home` fails its self-check."""
    from batterytrace.ledger.bundle_export import BundleSelfCheckError

    ledger = Ledger.open(home)
    try:
        with pytest.raises(BundleSelfCheckError):
            export_bundle(ledger, io.BytesIO(), all_entries=True)
    finally:
        ledger.close()


def test_export_refuses_a_checkpoint_not_signed_by_the_ledger_key(small_home):
    import sqlite3

    with sqlite3.connect(small_home / DATABASE_FILE) as db:
        size, note = db.execute("SELECT size, note FROM ledger_checkpoints"
                                " ORDER BY size DESC LIMIT 1").fetchone()
        forged = bytes(note).replace(b"self-check", b"self-chekk", 1)  # signature now wrong
        db.execute("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (forged, size))
    _assert_all_export_refused(small_home)


def test_cli_export_of_a_damaged_store_exits_1_and_leaves_no_file(small_home, tmp_path):
    from batterytrace.api.cli import app
    from batterytrace.ledger.bundle_export import BundleSelfCheckError
    from typer.testing import CliRunner

    runner = CliRunner()
    out = tmp_path / "out" / "b.jsonl"
    out.parent.mkdir()
    args = ["--home", str(small_home), "bundle", "export", "--lot", lot_id("co-hydroxide-2026-001"),
            "--out", str(out)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert out.exists() and out.read_bytes().endswith(b"\n")
    out.unlink()
    _flip_leaf_one(small_home)
    failed = runner.invoke(app, args)  # main() turns the typed error into its exit code
    assert isinstance(failed.exception, BundleSelfCheckError), failed.output
    assert failed.exception.code == "BUNDLE_EXPORT_SELF_CHECK" and failed.exception.exit_code == 1
    assert list(out.parent.iterdir()) == []


def test_all_bundle_entry_lines_are_the_stored_entries_byte_for_byte(led):
    """An `all` export writes the stored bytes without parsing them: each line is what the
    exporter wrote from the parsed entry before (`entry_line(entry.canonical, None)`)."""
    from batterytrace.ledger.bundle_format import entry_line

    buf = io.BytesIO()
    summary = export_bundle(led, buf, all_entries=True)
    lines = buf.getvalue().splitlines(keepends=True)
    size = led.latest_checkpoint()[0].size
    assert summary.entries == size and len(lines) == size + 2
    assert lines[1:-1] == [entry_line(e.canonical, None) for e in led.iter_entries(0, size)]
    assert json.loads(lines[-1]) == {"type": "end", "records": size + 1}


@pytest.mark.parametrize("damage", [
    lambda body: body.replace(b'"registry"', b'"registrY"', 1),  # still canonical JSON
    lambda body: b"not json" + body,
])
def test_all_export_of_a_changed_entry_body_fails_its_self_check(small_home, damage):
    import sqlite3

    with sqlite3.connect(small_home / DATABASE_FILE) as db:
        (body,) = db.execute("SELECT body FROM ledger_entries WHERE seq = 1").fetchone()
        db.execute("UPDATE ledger_entries SET body = ? WHERE seq = 1", (damage(bytes(body)),))
    _assert_all_export_refused(small_home)
