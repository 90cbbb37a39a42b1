"""Offline bundle verification: each check passing and failing, and single-field tampering.
(Credentials: test_bundle_credentials.py; the real command line offline:
test_bundle_subprocess.py.)"""

from __future__ import annotations

import io
import json

import pytest
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle import BundleTruncatedError, BundleVersionError
from batterytrace.verifier.bundle_verify import present_bundle, verify_bundle
from batterytrace.verifier.trust import TrustConfig, TrustedLedger
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    item_id,
    lifecycle,
    signed_credential,
    standard_registry_docs,
)
from hypothesis import example, given
from hypothesis import strategies as st

PACK = item_id("pack-p1")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("bundle") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/test", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    old_note = led.latest_checkpoint()[1]
    for _, issuer, event in lifecycle():
        led.append([Submission("event", signed_credential(issuer, [event]))])
    trust = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
    yield World((led, trust, old_note))
    led.close()


def export(led, **kw) -> bytes:
    buf = io.BytesIO()
    export_bundle(led, buf, **kw)
    return buf.getvalue()


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def codes(report) -> set[str]:
    return {f.code for f in report.failures}


class Blob(bytes):
    """Bundle bytes with a short repr (hypothesis prints the arguments of a failing case)."""

    def __repr__(self) -> str:
        return f"<bundle of {len(self)} bytes>"


class World(tuple):
    def __repr__(self) -> str:
        return "<lifecycle ledger>"


@pytest.fixture(scope="module")
def pack_bundle(world):
    return Blob(export(world[0], item=PACK))


@pytest.mark.parametrize("scope", [{"item": PACK}, {"all_entries": True},
                                   {"lot": "https://id.example.com/lots/recovered-co-2031-001"}])
def test_bundles_verify(world, scope):
    led, trust, _ = world
    report = verify_bundle(lines(export(led, **scope)), trust)
    assert report.ok, report.failures
    assert report.replayed > 20 and report.signatures_verified == report.entries


def test_untrusted_ledger_fails_closed(pack_bundle):
    report = verify_bundle(lines(pack_bundle), TrustConfig())
    assert codes(report) == {"BUNDLE_UNTRUSTED_LEDGER"}


def test_checkpoint_by_another_key_fails(world, pack_bundle):
    led = world[0]
    other = Ed25519Key.from_seed(b"\x07" * 32)
    from batterytrace.ledger.checkpoint import note_verifier_key

    trust = TrustConfig(ledgers=(TrustedLedger(led.origin,
                                               note_verifier_key(led.origin, other.public_key)),))
    assert codes(verify_bundle(lines(pack_bundle), trust)) == {"CHECKPOINT_NO_TRUSTED_SIGNATURE"}


def _edit(data: bytes, index: int, change) -> list[bytes]:
    out = lines(data)
    record = json.loads(out[index])
    change(record)
    out[index] = json.dumps(record).encode() + b"\n"
    return out


def test_tampered_entry_fails_inclusion(world, pack_bundle):
    tampered = _edit(pack_bundle, 20, lambda r: r["entry"].update(received="2020-01-01T00:00:00Z"))
    report = verify_bundle(tampered, world[1])
    assert codes(report) == {"BUNDLE_INCLUSION_PROOF"}
    assert report.failures[0].line == 21


def test_tampered_entry_in_all_bundle_breaks_the_chain(world):
    data = export(world[0], all_entries=True)
    tampered = _edit(data, 20, lambda r: r["entry"]["document"].update(extra=1))
    assert codes(verify_bundle(tampered, world[1])) & {"LOG_CHAIN_BROKEN", "LOG_ROOT_MISMATCH"}


def test_entries_out_of_order_fail(world, pack_bundle):
    out = lines(pack_bundle)
    out[20], out[21] = out[21], out[20]
    assert "BUNDLE_ENTRY_ORDER" in codes(verify_bundle(out, world[1]))


def test_omitted_extraction_breaks_the_closure(world, pack_bundle):
    out = [x for x in lines(pack_bundle)
           if b"BizStep-extraction" not in x or b"co-hydroxide" not in x]
    end = json.loads(out[-1])
    end["records"] = len(out) - 1
    out[-1] = json.dumps(end).encode() + b"\n"
    assert "BUNDLE_CLOSURE_INCOMPLETE" in codes(verify_bundle(out, world[1]))


def test_truncated_and_unknown_version_are_unusable(world, pack_bundle):
    with pytest.raises(BundleTruncatedError):
        verify_bundle(lines(pack_bundle)[:-1], world[1])
    with pytest.raises(BundleVersionError) as info:
        verify_bundle(_edit(pack_bundle, 0, lambda r: r.update(version=2)), world[1])
    assert info.value.exit_code == 2


def test_consistency_since_an_earlier_checkpoint(world):
    led, trust, old_note = world
    old_size = int(old_note.split(b"\n")[1])
    data = export(led, item=PACK, consistency_from=old_size)
    assert verify_bundle(lines(data), trust, since=old_note).ok
    # no proof in the bundle: the auditor cannot be convinced
    assert codes(verify_bundle(lines(export(led, item=PACK)), trust, since=old_note)) == {
        "BUNDLE_CONSISTENCY"}
    # a rewritten history: a proof from another size does not link the roots
    wrong = _edit(data, 0, lambda r: r["consistency"]["proof"].reverse())
    assert codes(verify_bundle(wrong, trust, since=old_note)) == {"BUNDLE_CONSISTENCY"}


def test_presentation_bound_to_the_challenge(world, pack_bundle):
    holder = Ed25519Key.from_seed(b"\x09" * 32)
    presented = present_bundle(lines(pack_bundle), holder, challenge="c-123")
    report = verify_bundle(lines(presented), world[1], challenge="c-123")
    assert report.ok and report.presented_by.startswith("did:key:")
    assert codes(verify_bundle(lines(presented), world[1], challenge="other")) == {
        "INVALID_CHALLENGE_ERROR"}
    assert codes(verify_bundle(lines(pack_bundle), world[1], challenge="c-123")) == {
        "BUNDLE_PRESENTATION"}
    # the presentation binds the bundle's bytes
    edited = lines(presented)
    edited[-2] = edited[-2].replace(b'"records":', b'"records": ')
    assert "BUNDLE_PRESENTATION" in codes(verify_bundle(edited, world[1], challenge="c-123"))


def _credential(subject: str) -> dict:
    from batterytrace.credentials.data_integrity import sign

    issuer = Ed25519Key.from_seed(b"\x05" * 32)
    doc = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "id": "urn:uuid:7a1c9e2e-0000-4000-8000-000000000001",
        "issuer": issuer.did_key,
        "validFrom": "2020-01-01T00:00:00Z",
        "credentialSubject": {"id": subject, "audited": True},
    }
    return sign(doc, issuer, created="2020-01-01T00:00:00Z")


def test_credential_about_a_facility_of_the_events(world):
    led, trust, _ = world
    good = _credential(f"{PUBLIC_URL}/facilities/kolwezi-mine")
    report = verify_bundle(lines(export(led, item=PACK, credentials=[good])), trust)
    assert report.ok and report.credentials_verified == 1
    # an exporter that adds a credential about another mine: the subject does not match
    data = export(led, item=PACK)
    out = lines(data)
    stray = json.dumps({"type": "credential",
                        "credential": _credential(f"{PUBLIC_URL}/facilities/other-mine")})
    out.insert(-1, stray.encode() + b"\n")
    out[-1] = json.dumps({"type": "end", "records": len(out) - 1}).encode() + b"\n"
    assert codes(verify_bundle(out, trust)) == {"CREDENTIAL_SUBJECT_MISMATCH"}


def test_credential_tampered_fails_its_proof(world):
    led, trust, _ = world
    data = export(led, item=PACK, credentials=[_credential(f"{PUBLIC_URL}/facilities/"
                                                           "kolwezi-mine")])
    out = _edit(data, len(lines(data)) - 2,
                lambda r: r["credential"]["credentialSubject"].update(audited=False))
    assert codes(verify_bundle(out, trust)) == {"PROOF_VERIFICATION_ERROR"}


def test_redacted_credential_without_anchor_fails(world):
    led, trust, _ = world
    cred = _credential(f"{PUBLIC_URL}/facilities/kolwezi-mine")
    data = export(led, item=PACK, credentials=[cred], redact=["VerifiableCredential"])
    report = verify_bundle(lines(data), trust)
    assert report.not_shown and codes(report) == {"CREDENTIAL_ANCHOR_MISMATCH"}


# Which code a single edited field yields, by record type (docs/formats.md, "Bundle").
HEADER_CODES = {"BUNDLE_FORMAT", "BUNDLE_VERSION", "BUNDLE_UNTRUSTED_LEDGER",
                "BUNDLE_CLOSURE_INCOMPLETE", "CHECKPOINT_MALFORMED_NOTE",
                "CHECKPOINT_NO_TRUSTED_SIGNATURE", "CHECKPOINT_BAD_SIGNATURE",
                "CHECKPOINT_WRONG_ORIGIN"}
ENTRY_CODES = {"BUNDLE_INCLUSION_PROOF", "BUNDLE_FORMAT"}
END_CODES = {"BUNDLE_TRUNCATED", "BUNDLE_FORMAT"}


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path


@given(data=st.data())
def test_any_single_field_edit_fails_with_the_documented_code(world, pack_bundle, data):
    out = lines(pack_bundle)
    index = data.draw(st.integers(0, len(out) - 1), label="record")
    record = json.loads(out[index])
    paths = [p for p in _leaves(record) if p != ("type",)]
    path = data.draw(st.sampled_from(paths), label="field")
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    new = data.draw(st.sampled_from(["x", 7, None, True]).filter(lambda v: v != old
                                                                 and type(v) is not type(old)))
    if isinstance(old, str) and old:  # also a subtle edit of one character
        new = data.draw(st.sampled_from([new, old[:-1] + chr((ord(old[-1]) + 1) % 0x7f or 65)]))
    parent[path[-1]] = new
    out[index] = json.dumps(record).encode() + b"\n"
    try:
        found = codes(verify_bundle(out, world[1]))
    except BatterytraceError as error:
        found = {error.code}
    assert found, (index, path)
    kind = record["type"]
    allowed = HEADER_CODES if kind == "header" else ENTRY_CODES if kind == "entry" else END_CODES
    assert found <= allowed | {"BUNDLE_FORMAT"}, (index, path, found)


# --- the same verifier over the database: verify_entries and `ledger verify` --------------


def test_verify_entries_over_the_stored_log(world):
    from batterytrace.verifier.bundle_verify import verify_entries

    led, trust, _ = world
    report = verify_entries(led.iter_entry_bytes(), trust.ledgers[0],
                            [led.latest_checkpoint()[1]])
    assert report.ok, report.failures
    assert report.entries == led.size and report.signatures_verified == led.size
    assert report.kinds["event"] == len(lifecycle()) and report.replayed == len(lifecycle())
    # a log that is not the trusted ledger's
    from batterytrace.ledger.checkpoint import note_verifier_key

    other = TrustedLedger(led.origin, note_verifier_key(
        led.origin, Ed25519Key.from_seed(b"\x08" * 32).public_key))
    bad = verify_entries(led.iter_entry_bytes(), other, [led.latest_checkpoint()[1]])
    assert codes(bad) >= {"CHECKPOINT_NO_TRUSTED_SIGNATURE"}


def test_ledger_verify_command_replays_with_the_bundle_verifier(world, tmp_path):
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    runner = CliRunner()
    led = world[0]
    ok = runner.invoke(app, ["--home", str(led.home.path), "ledger", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["ok"] and data["replay"]["events"] == len(lifecycle())
    assert data["replay"]["signaturesVerified"] == led.size
    # A ledger that took an event no rule would accept (appended without validators): the
    # chain and checkpoints hold, the replay names the entry with the rule's code.
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    raw = Ledger.init(home, None, "ledger.example/raw", PUBLIC_URL)
    raw.append([Submission("registry", d) for d in standard_registry_docs()])
    raw.append([Submission("event", {"n": 1})])
    size = raw.size
    raw.close()
    bad = runner.invoke(app, ["--home", str(home), "ledger", "verify", "--json"])
    assert isinstance(bad.exception, BatterytraceError), bad.output
    assert bad.exception.exit_code == 1 and bad.exception.details.get("seq", size - 1) == size - 1
    assert runner.invoke(app, ["--home", str(home), "ledger", "verify", "--no-replay"]
                         ).exit_code == 0


def test_every_code_the_tamper_test_allows_is_documented():
    from conftest import ROOT

    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text[text.index("## Bundle (version 1)"):]
    for code in HEADER_CODES | ENTRY_CODES | END_CODES:
        assert f"`{code}`" in section, code
    assert "not covered by any signature or proof" in section


def test_a_not_in_force_credential_is_rendered_first_and_literally():
    from batterytrace.verifier.report import CredentialStanding, Report
    from rich.console import Console

    report = Report(origin="o", scope="item", subject="s")
    report.credentials.append(CredentialStanding("urn:x[/red]", "[bold]Carbon[/]", "REVOKED", 7))
    console = Console(record=True, width=200)
    report.render(console)
    text = console.export_text()
    assert "REVOKED [bold]Carbon[/] urn:x[/red] at log position 7" in text


@given(st.text(max_size=40))
@example(":KEY:")  # a rich emoji code, shown as written (not as an emoji)
@example("a:b:smile:c")
def test_bundle_text_is_rendered_literally_in_every_place(hostile):
    """Markup, ANSI escapes, bidi overrides and newlines from a bundle reach the terminal as
    text: exactly as written when printable, escaped (\\x.., \\u....) when a control."""
    import re

    from batterytrace.verifier.report import CredentialStanding, Failure, Report
    from rich.console import Console

    report = Report(origin=hostile, scope="item", subject=hostile, presented_by=hostile)
    report.credentials.append(CredentialStanding(hostile, hostile, "REVOKED", 3))
    report.notes.append(hostile)
    report.not_shown.append(hostile)
    report.failures.append(Failure(hostile, "CODE", hostile))
    console = Console(record=True, width=10_000, force_terminal=True, color_system=None)
    report.render(console, verbose=True)
    text = console.export_text()
    expected = re.sub(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                      lambda m: m.group().encode("unicode_escape").decode(), hostile)
    assert f"note {expected}".rstrip() in text
    assert "\x1b" not in text
