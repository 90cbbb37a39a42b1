"""Credentials inside evidence bundles, each check passing and failing: proof, schema, validity
at the log position of the entry relying on the credential (not today), status by list and by
anchor, anchor digest, trust path and accreditation, subject matching, redaction, and a bundle
presented to a verifier's challenge through the real command line.

One ledger is built with a clock patched so that entries up to the cell production are
received 200 days ago and later ones 200 days from now: a credential can then be valid today
and not at its position, or the other way round.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from batterytrace.credentials.credential_types import build_credential
from batterytrace.credentials.data_integrity import format_date_time, sign
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.credentials.status_list import (
    StatusList,
    build_status_list_credential,
    status_entry,
)
from batterytrace.ledger import log as log_module
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.verifier.accreditation import ACCREDITATION_CONTEXTS
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.errors import BundleFormatError
from batterytrace.verifier.trust import GovernanceRoot, TrustConfig, TrustedLedger, write_trust
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    facility_id,
    item_id,
    lifecycle,
    lot_id,
    signed_credential,
    standard_registry_docs,
)
from test_credential_types import EXAMPLES

NOW = datetime.now(UTC)
ROOT = Ed25519Key.from_seed(b"\x31" * 32)  # the governance root of the trust file
SCHEME = Ed25519Key.from_seed(b"\x32" * 32)  # accredited by the root, may accredit
BODY = Ed25519Key.from_seed(b"\x33" * 32)  # certification body accredited by the scheme
BODY2 = Ed25519Key.from_seed(b"\x34" * 32)  # its accreditation is revoked before the events
STRANGER = Ed25519Key.from_seed(b"\x35" * 32)  # accredited by nobody
BODY3 = Ed25519Key.from_seed(b"\x37" * 32)  # accredited until after the events, then revoked
MINE_A = facility_id("kolwezi-mine")
PACK = item_id("pack-p1")
LISTS = "https://body.example/status/revocation/0"
TYPES = ["IRMAAuditCredential", "CarbonFootprintCredential"]


def day(offset: int) -> str:
    return format_date_time(NOW + timedelta(days=offset))


def received(offset: int) -> str:
    return (NOW + timedelta(days=offset)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def accreditation(issuer: Ed25519Key, subject: Ed25519Key, n: int, **options) -> dict:
    return {
        "@context": list(ACCREDITATION_CONTEXTS),
        "id": f"urn:uuid:acc00000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "AccreditationCredential"],
        "issuer": issuer.did_key, "validFrom": day(-400), "validUntil": day(400),
        "credentialSubject": {"id": subject.did_key, "type": "Accreditation",
                              "credentialTypes": TYPES, "mayAccredit": False, **options},
    }


def irma(key: Ed25519Key, n: int, *, valid_from: int = -300, valid_until: int = 300,
         subject: str = MINE_A, status: dict | None = None) -> dict:
    body = copy.deepcopy(EXAMPLES["IRMAAuditCredential"]["credentialSubject"])
    body["id"] = subject
    doc = build_credential("IRMAAuditCredential", body, issuer=key.did_key,
                           issuer_name="Body", id=f"urn:uuid:1a000000-0000-4000-8000-{n:012d}",
                           valid_from=day(valid_from), valid_until=day(valid_until))
    if status is not None:
        doc["credentialStatus"] = status
    return doc


def footprint(key: Ed25519Key, n: int, *, valid_from: int, valid_until: int) -> dict:
    body = copy.deepcopy(EXAMPLES["CarbonFootprintCredential"]["credentialSubject"])
    body["id"] = PACK
    return build_credential("CarbonFootprintCredential", body, issuer=key.did_key,
                            issuer_name="Body", id=f"urn:uuid:cf000000-0000-4000-8000-{n:012d}",
                            valid_from=day(valid_from), valid_until=day(valid_until))


class World(dict):
    def __repr__(self) -> str:
        return "<credential ledger>"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("bundle-credentials") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    clock = {"now": received(-200)}
    w = World()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_module, "utc_now", lambda: clock["now"])
        led = Ledger.init(home, None, "ledger.example/credentials", PUBLIC_URL,
                          clock=lambda: clock["now"])
        store = CredentialStore(led)
        led.append([Submission("registry", d) for d in standard_registry_docs()])

        def issue(doc: dict, key: Ed25519Key) -> dict:
            return store.issue(doc, key, purposes=())[0]

        w["accreditations"] = [
            issue(accreditation(ROOT, SCHEME, 1, mayAccredit=True), ROOT),
            issue(accreditation(SCHEME, BODY, 2), SCHEME),
            issue(accreditation(SCHEME, BODY2, 3), SCHEME),
            issue(accreditation(SCHEME, BODY3, 4), SCHEME),
        ]
        store.change_status(w["accreditations"][2]["id"], "revocation", SCHEME)
        w["irma"] = issue(irma(BODY, 1), BODY)
        w["not_yet_at_position"] = issue(irma(BODY, 2, valid_from=-100), BODY)
        w["expired_today"] = issue(irma(BODY, 3, valid_until=-100), BODY)
        w["revoked_before_use"] = issue(irma(BODY, 4), BODY)
        store.change_status(w["revoked_before_use"]["id"], "revocation", BODY)
        w["revoked_after_use"] = issue(irma(BODY, 5), BODY)
        w["suspended_after_use"] = issue(irma(BODY, 13), BODY)
        w["revoked_accreditation"] = issue(irma(BODY2, 6), BODY2)
        w["stranger"] = issue(irma(STRANGER, 7), STRANGER)
        w["issued_while_accredited"] = issue(irma(BODY3, 10), BODY3)
        w["expired_at_position"] = issue(footprint(BODY, 8, valid_from=-300, valid_until=100),
                                         BODY)
        w["valid_only_later"] = issue(footprint(BODY, 9, valid_from=100, valid_until=300), BODY)
        for stage, issuer, event in lifecycle():
            if stage.startswith("Cathode and cell production"):
                clock["now"] = received(200)
            led.append([Submission("event", signed_credential(issuer, [event]))])
        store.change_status(w["revoked_after_use"]["id"], "revocation", BODY)
        store.change_status(w["suspended_after_use"]["id"], "suspension", BODY)
        # BODY3's accreditation ends after the events; then it issues, backdated.
        store.change_status(w["accreditations"][3]["id"], "revocation", SCHEME)
        w["issued_after_accreditation_ended"] = issue(irma(BODY3, 11, valid_from=-300), BODY3)
        w["issued_later"] = issue(irma(BODY, 12), BODY)  # after the events that rely on it
    w["ledger"], w["home"] = led, home
    w["trust"] = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),),
                             governance_roots=(GovernanceRoot(ROOT.did_key),))
    yield w
    led.close()


def bundle(world, *credentials, scope: str = PACK, **options) -> list[bytes]:
    buf = io.BytesIO()
    kind = "item" if scope == PACK else "lot"
    export_bundle(world["ledger"], buf, **{kind: scope},
                  credentials=[*credentials, *world["accreditations"]], **options)
    return buf.getvalue().splitlines(keepends=True)


def verify(world, lines, trust=None, **options):
    return verify_bundle(lines, trust or world["trust"], **options)


def codes(report) -> set[str]:
    return {f.code for f in report.failures}


def failing(report, credential: dict) -> set[str]:
    """The codes of failures about `credential` (and nothing else may fail)."""
    assert {f.record for f in report.failures} <= {f"credential {credential['id']}"}, \
        report.failures
    return codes(report)


def resigned(credential: dict, key: Ed25519Key, change) -> dict:
    doc = {k: v for k, v in copy.deepcopy(credential).items() if k != "proof"}
    change(doc)
    return sign(doc, key)


def with_record(lines: list[bytes], record: dict) -> list[bytes]:
    """`lines` with one more tail record before `end` (the count fixed)."""
    out = [*lines[:-1], json.dumps(record).encode() + b"\n"]
    return [*out, json.dumps({"type": "end", "records": len(out)}).encode() + b"\n"]


# --- proof and schema -------------------------------------------------------------------------


def test_trusted_anchored_credential_verifies_with_its_trust_path(world):
    report = verify(world, bundle(world, world["irma"]))
    assert report.ok, report.failures
    assert report.credentials_verified == 3  # the audit and the two accreditations above it
    assert "credentials at the position of the entry relying on them" in report.checks


def test_tampered_credential_fails_its_proof(world):
    lines = bundle(world, world["irma"])
    index = next(i for i, x in enumerate(lines) if world["irma"]["id"].encode() in x
                 and x.startswith(b'{"type":"credential"'))
    record = json.loads(lines[index])
    record["credential"]["credentialSubject"]["name"] = "IRMA 100, says the exporter"
    lines[index] = json.dumps(record).encode() + b"\n"
    assert failing(verify(world, lines), world["irma"]) == {"PROOF_VERIFICATION_ERROR"}


def test_credential_breaking_its_type_schema_fails(world):
    def drop_schema(doc):
        doc["id"] = "urn:uuid:5c000000-0000-4000-8000-000000000001"
        del doc["credentialSchema"]  # required by the IRMAAuditCredential schema

    broken = resigned(world["irma"], BODY, drop_schema)  # a valid proof over a bad document
    found = failing(verify(world, bundle(world, broken)), broken)
    assert found == {"SCHEMA_VALIDATION_ERROR"}


# --- validity at the log position, not today ----------------------------------------------------


def test_valid_today_but_not_yet_at_its_position_fails(world):
    cred = world["not_yet_at_position"]
    assert failing(verify(world, bundle(world, cred)), cred) == {"NOT_YET_VALID_ERROR"}


def test_expired_today_but_valid_at_its_position_passes(world):
    report = verify(world, bundle(world, world["expired_today"]))
    assert report.ok, report.failures


def test_valid_today_but_expired_at_its_later_position_fails(world):
    cred = world["expired_at_position"]
    assert failing(verify(world, bundle(world, cred)), cred) == {"EXPIRED_ERROR"}


def test_not_yet_valid_today_but_valid_at_its_later_position_passes(world):
    report = verify(world, bundle(world, world["valid_only_later"]))
    assert report.ok, report.failures


# --- status: lists and anchors ----------------------------------------------------------------


def _listed(revoked: bool) -> tuple[dict, dict]:
    """An unanchored credential with a revocation entry, and its list (bit 17 set or not)."""
    doc = sign(irma(BODY, 20 + revoked, status=status_entry("revocation", 17, LISTS)), BODY)
    bits = StatusList()
    if revoked:
        bits.set(17)
    listing = sign(build_status_list_credential(list_url=LISTS, issuer=BODY.did_key,
                                                purpose="revocation", status_list=bits), BODY)
    return doc, listing


def test_status_list_bit(world):
    good, clear = _listed(False)
    report = verify(world, bundle(world, good, status_lists=[clear]))
    assert report.ok, report.failures
    assert any("NOT_ANCHORED" in note for note in report.notes)
    bad, revoked = _listed(True)
    assert failing(verify(world, bundle(world, bad, status_lists=[revoked])), bad) == {
        "CREDENTIAL_STATUS_REVOKED"}
    # a list the bundle does not carry cannot vouch for the credential
    assert failing(verify(world, bundle(world, good)), good) == {"STATUS_RETRIEVAL_ERROR"}


def test_anchored_revocation_before_its_use_fails(world):
    cred = world["revoked_before_use"]
    assert failing(verify(world, bundle(world, cred)), cred) == {"CREDENTIAL_STATUS_REVOKED"}


def test_revocation_anchored_after_its_use_does_not_reach_back(world):
    # The point-in-time verdict (--as-of-use): valid when the entry relied on it.
    lines = bundle(world, world["revoked_after_use"])
    report = verify_bundle(lines, world["trust"], as_of_use=True)
    assert report.ok, report.failures
    assert any("revoked at" in note for note in report.notes)


def test_revocation_after_its_use_is_shown_first_and_fails_at_the_checkpoint(world):
    cred = world["revoked_after_use"]
    report = verify(world, bundle(world, cred))
    assert failing(report, cred) == {"CREDENTIAL_STATUS_REVOKED"}
    [standing] = [c for c in report.credentials if c.id == cred["id"]]
    assert standing.status == "REVOKED" and standing.since > standing.used_at


def test_credential_differing_from_its_anchor_fails(world):
    # The issuer re-signs another version under the anchored id: the proof holds, the anchor
    # (the log's record of what was issued) does not.
    other = resigned(world["irma"], BODY,
                     lambda doc: doc["credentialSubject"].update(name="a later version"))
    assert failing(verify(world, bundle(world, other)), other) == {"ANCHOR_MISMATCH"}


# --- trust path -------------------------------------------------------------------------------


def test_issuer_without_accreditation_is_untrusted(world):
    cred = world["stranger"]
    assert failing(verify(world, bundle(world, cred)), cred) == {"UNTRUSTED_ISSUER"}


def test_chain_to_a_root_the_trust_file_does_not_name_fails(world):
    other_root = Ed25519Key.from_seed(b"\x36" * 32)
    trust = TrustConfig(ledgers=world["trust"].ledgers,
                        governance_roots=(GovernanceRoot(other_root.did_key),))
    cred = world["irma"]
    assert failing(verify(world, bundle(world, cred), trust), cred) == {"UNTRUSTED_ISSUER"}


def test_accreditation_revoked_before_the_use_fails(world):
    cred = world["revoked_accreditation"]
    assert failing(verify(world, bundle(world, cred)), cred) == {"ACCREDITATION_REVOKED"}


def test_issuer_is_judged_when_it_issued_not_when_its_credential_is_used(world):
    # Anchored after its issuer's accreditation was revoked, used by an earlier event, its
    # validFrom backdated: untrusted (judged at the issuance anchor, not at the use).
    late = world["issued_after_accreditation_ended"]
    report = verify(world, bundle(world, late))
    assert failing(report, late) == {"ACCREDITATION_REVOKED"}
    # Issued while accredited: still trusted after the accreditation ended.
    assert verify(world, bundle(world, world["issued_while_accredited"])).ok


def test_a_suspension_after_use_fails_at_the_checkpoint_and_is_shown(world):
    cred = world["suspended_after_use"]
    report = verify(world, bundle(world, cred))
    assert failing(report, cred) == {"CREDENTIAL_STATUS_SUSPENDED"}
    [standing] = [c for c in report.credentials if c.id == cred["id"]]
    assert standing.status == "SUSPENDED" and standing.since > standing.used_at
    point_in_time = verify_bundle(bundle(world, cred), world["trust"], as_of_use=True)
    assert point_in_time.ok and any("suspended at" in n for n in point_in_time.notes)


def test_a_credential_issued_after_its_use_is_said_in_words(world):
    report = verify(world, bundle(world, world["issued_later"]))
    assert report.ok, report.failures
    [note] = [n for n in report.notes if "ISSUED_LATER" in n]
    assert "IRMAAuditCredential about " + MINE_A in note
    assert "after the entry at position" in note and "validity period" in note
    assert "covers that entry's time" in note


def test_forged_accreditation_in_the_bundle_adds_no_trust(world):
    lines = bundle(world, world["irma"])
    index = next(i for i, x in enumerate(lines) if b"acc00000-0000-4000-8000-000000000002" in x
                 and x.startswith(b'{"type":"credential"'))
    record = json.loads(lines[index])
    record["credential"]["credentialSubject"]["credentialTypes"].append("DueDiligenceCredential")
    lines[index] = json.dumps(record).encode() + b"\n"
    report = verify(world, lines)
    assert codes(report) == {"PROOF_VERIFICATION_ERROR", "UNTRUSTED_ISSUER"}


def test_without_governance_roots_the_issuer_is_noted_not_trusted(world):
    trust = TrustConfig(ledgers=world["trust"].ledgers)
    report = verify(world, bundle(world, world["stranger"]), trust)
    assert report.ok and any("UNTRUSTED_ISSUER" in note for note in report.notes)


# --- subject matching -------------------------------------------------------------------------


def test_audit_of_mine_a_does_not_vouch_for_material_of_mine_b(world):
    cred = world["irma"]
    assert verify(world, bundle(world, cred)).ok  # the pack's cobalt comes from mine A
    lot_b = lot_id("likasi-blend-2026-02")  # artisanal material from mine B only
    lines = with_record(bundle(world, scope=lot_b), {"type": "credential", "credential": cred})
    assert failing(verify(world, lines), cred) == {"CREDENTIAL_SUBJECT_MISMATCH"}


# --- redaction --------------------------------------------------------------------------------


def test_redacted_credential_passes_from_its_anchor_and_is_reported_not_shown(world):
    cred = world["irma"]
    lines = bundle(world, cred, redact=["IRMAAuditCredential"])
    assert b'"credentialSubject"' not in b"".join(
        x for x in lines if x.startswith(b'{"type":"redacted'))
    report = verify(world, lines)
    assert report.ok, report.failures
    [shown] = report.not_shown
    assert cred["id"] in shown and "IRMAAuditCredential" in shown
    assert report.to_json()["not_shown"] == [shown]
    index = next(i for i, x in enumerate(lines) if x.startswith(b'{"type":"redacted'))
    record = json.loads(lines[index])
    record["digest"] = "0" * 64
    lines[index] = json.dumps(record).encode() + b"\n"
    assert codes(verify(world, lines)) == {"CREDENTIAL_ANCHOR_MISMATCH"}


# --- presentation through the command line ----------------------------------------------------


def test_bundle_present_and_verify_with_the_challenge(world, tmp_path):
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    runner = CliRunner()
    path, trust, key = tmp_path / "b.jsonl", tmp_path / "trust.toml", tmp_path / "holder.json"
    path.write_bytes(b"".join(bundle(world, world["irma"])))
    write_trust(world["trust"], trust)
    write_key_file(Ed25519Key.from_seed(b"\x37" * 32), key)
    presented = tmp_path / "presented.jsonl"
    done = runner.invoke(app, ["bundle", "present", str(path), "--key", str(key),
                               "--challenge", "n-0423", "--out", str(presented)])
    assert done.exit_code == 0, done.output
    ok = runner.invoke(app, ["bundle", "verify", str(presented), "--trust", str(trust),
                             "--challenge", "n-0423", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["ok"] and report["presented_by"].startswith("did:key:")
    wrong = runner.invoke(app, ["bundle", "verify", str(presented), "--trust", str(trust),
                                "--challenge", "replayed", "--json"])
    assert wrong.exit_code == 1
    assert {f["code"] for f in json.loads(wrong.stdout)["failures"]} == {
        "INVALID_CHALLENGE_ERROR"}


# --- a bundle says everything it must, once -----------------------------------------------------


def _without_line(lines: list[bytes], index: int) -> list[bytes]:
    """`lines` without line `index`, the count of `end` fixed (a careful attacker's edit)."""
    out = [line for i, line in enumerate(lines[:-1]) if i != index]
    return [*out, json.dumps({"type": "end", "records": len(out)}).encode() + b"\n"]


def test_a_dropped_credential_whose_anchor_is_in_the_bundle_is_named(world):
    cred = world["irma"]
    lines = bundle(world, cred)
    index = next(i for i, line in enumerate(lines) if line.startswith(b'{"type":"credential"')
                 and cred["id"].encode() in line)
    report = verify(world, _without_line(lines, index))
    assert codes(report) == {"BUNDLE_INCOMPLETE"}
    assert [f.record for f in report.failures] == [f"credential {cred['id']}"]


def test_a_duplicated_credential_line_is_refused(world):
    lines = bundle(world, world["irma"])
    index = next(i for i, line in enumerate(lines) if line.startswith(b'{"type":"credential"'))
    with pytest.raises(BundleFormatError, match="appears twice"):
        verify(world, with_record(lines, json.loads(lines[index])))


def test_crlf_lines_are_refused_with_their_number(world):
    lines = [line[:-1] + b"\r\n" for line in bundle(world, world["irma"])]
    with pytest.raises(BundleFormatError) as caught:
        verify(world, lines)
    assert caught.value.line == 1 and "CRLF" in caught.value.message
