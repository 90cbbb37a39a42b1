"""`make demo` runs in the test suite: the whole story, with its expected failures, exits 0, and
every command it suggests next works on the home it leaves."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from batterytrace.api.demo import next_commands, passport_url
from batterytrace.api.demo_builders import DEMO_PARTICIPANTS, Builders, item_id
from batterytrace.api.demo_credentials import ACCREDITED_TYPES, demo_issuances
from batterytrace.api.demo_lifecycle import lifecycle
from batterytrace.api.demo_story import PACK_1, PACK_2, recycled_shares, story
from batterytrace.credentials.credential_types import credential_types
from batterytrace.verifier.untp_dpp import untp_schema_errors

CLI = [sys.executable, "-m", "batterytrace.api.cli"]
ENV = {**os.environ, "COLUMNS": "200"}


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=ENV)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("demo") / "home"
    result = _run(["demo", "--demo-home", str(home)])
    assert result.returncode == 0, result.stderr
    return home, result.stdout


def test_demo_builds_and_verifies_the_network(demo: tuple[Path, str]) -> None:
    home, out = demo
    registry = sum(1 + len(p[3]) for p in DEMO_PARTICIPANTS.values())
    assert f"registered {len(DEMO_PARTICIPANTS)} participants" in out
    assert f"({registry} admin-signed entries)" in out
    # genesis + registry + one entry per story step + accreditations, credentials, anchors
    events = len(story())
    issued = len(demo_issuances()) + 1 + len(ACCREDITED_TYPES)
    size = 1 + registry + events + issued + 1  # and the settings entry naming the witnesses
    assert f"VERIFIED ledger: {1 + registry + events} entries" in out
    assert f"VERIFIED bundle of item {item_id(PACK_1)}" in out
    info = json.loads(_run(["--home", str(home), "ledger", "info", "--json"]).stdout)
    assert info["size"] == size


def test_demo_credentials_and_provenance(demo: tuple[Path, str]) -> None:
    home, out = demo
    assert "IRMAAuditCredential (IRMA 75)" in out
    assert "IRMAAuditCredential (IRMA Transparency)" in out
    for kind in ("CarbonFootprintCredential", "RecycledContentCredential",
                 "DueDiligenceCredential", "RecyclingEfficiencyCredential",
                 "BatteryPassportCredential", "AccreditationCredential"):
        assert kind in out
    provenance = _run(["bundle", "provenance", str(home / "bundle.jsonl"), "--trust",
                       str(home / "trust.toml"), "--json"])
    assert provenance.returncode == 0, provenance.stderr
    # the pack maker's passport carries UNTP's blocks, from the pack's verified bundle
    passports = [r["credential"] for r in map(json.loads, (home / "bundle.jsonl").read_text(
        encoding="utf-8").splitlines()) if r.get("type") == "credential"
        and "BatteryPassportCredential" in r["credential"]["type"]
        and r["credential"]["credentialSubject"]["id"] == item_id(PACK_1)]
    assert len(passports) == 1
    subject = passports[0]["credentialSubject"]
    assert all(subject.get(block) for block in ("conformityClaim", "traceabilityInformation",
                                                "materialsProvenance", "emissionsScorecard"))
    assert untp_schema_errors({k: v for k, v in passports[0].items() if k != "proof"}) == []
    # every credential of a UNTP family the demo issued validates against its pinned schema
    families = {t.name: t.untp.short for t in credential_types()}
    issued = [r["credential"] for r in map(json.loads, (home / "bundle.jsonl").read_text(
        encoding="utf-8").splitlines()) if r.get("type") == "credential"]
    checked = {f: 0 for f in ("dcc", "dpp")}
    for credential in issued:
        name = next((t for t in credential["type"] if t in families), None)
        if name is not None:
            unsigned = {k: v for k, v in credential.items() if k != "proof"}
            assert untp_schema_errors(unsigned, families[name]) == [], name
            checked[families[name]] += 1
    assert all(checked.values()), checked
    data = json.loads(provenance.stdout)
    assert data["subject"] == item_id(PACK_1)
    cobalt = {s["country"]: s for s in data["elements"]["Co"]["sources"] if not s["recycled"]}
    assert cobalt["CD"]["irma_level"] in ("IRMA 75", None)  # industrial and artisanal sites
    assert 0 < data["elements"]["Co"]["artisanal_share"] < 0.1
    assert {"CD", "CL", "ID", "CN"} <= set(data["countries"])
    assert data["recycled_content"]["claimed"]["Co"] == pytest.approx(0.08)
    assert data["recycled_content"]["computed"]["Co"] == pytest.approx(0.08)
    # the signer wrote 1 Sep 2026; the policy date is the day the ledger received it
    assert data["placed_on_market_event_time"] == "2026-09-01"
    assert data["placed_on_market"] >= "2026-09-01"
    assert data["placed_on_market_by"].endswith(":participants:automaker")


def test_done_when_the_eu_policy_gives_no_pass_without_a_legal_basis(
        demo: tuple[Path, str]) -> None:
    """Issue 19's command on the demo home: no PASS for the carbon-footprint maximum (none
    adopted), recycled content on the ledger's basis, every passport attribute present."""
    home, _ = demo
    result = _run(["bundle", "verify", str(home / "bundle.jsonl"), "--trust",
                   str(home / "trust.toml"), "--policy", "eu-2023-1542", "--policy-date",
                   "2031-09-01", "--json"])
    report = json.loads(result.stdout)
    outcomes = {o["rule_id"]: o for o in report["policy"]["outcomes"]}
    maximum = outcomes["eu-art7-3-carbon-footprint-maximum"]
    assert maximum["status"] == "NOT_EVALUATED" and "no maximum adopted" in maximum["reason"]
    recycled = outcomes["eu-art8-recycled-content"]
    assert recycled["evidence"]["basis"] == "ledger"
    assert recycled["evidence"]["figures"]["Co"]["ledger"] == pytest.approx(0.08)
    passport = outcomes["eu-art77-passport"]
    assert passport["status"] == "PASS", passport["reason"]
    assert passport["evidence"]["missing"] == {}
    assert outcomes["eu-art48-due-diligence"]["status"] == "PASS"
    assert outcomes["eu-art52-artisanal-sources"]["status"] == "PASS"  # a site credential
    basis = report["policy"]["policy_date_basis"]
    assert basis["source"] == "--policy-date"
    assert basis["placed_on_market_event_time"] == "2026-09-01"
    # without --policy-date: the ledger's receipt of the placing on the market
    default = json.loads(_run(["bundle", "verify", str(home / "bundle.jsonl"), "--trust",
                               str(home / "trust.toml"), "--policy", "eu-2023-1542",
                               "--json"]).stdout)["policy"]
    assert default["policy_date"] == default["policy_date_basis"]["placed_on_market"]
    assert default["policy_date_basis"]["source"].startswith("ledger receipt")


def test_demo_policy_fails_exactly_the_recycled_cobalt_rule(demo: tuple[Path, str]) -> None:
    home, out = demo
    assert "recycled content below the minimum: Co 8.00 % < 16 %" in out
    result = _run(["bundle", "verify", str(home / "bundle.jsonl"), "--trust",
                   str(home / "trust.toml"), "--policy", str(home / "eu-2023-1542.toml"),
                   "--policy-date", "2031-09-01", "--json"])
    assert result.returncode == 1  # the failing rule, not the bundle
    report = json.loads(result.stdout)
    assert report["ok"] is True
    failed = [o for o in report["policy"]["outcomes"] if o["status"] == "FAIL"]
    assert [o["rule_id"] for o in failed] == ["eu-art8-recycled-content"]
    assert "Co 8.00 % < 16 %" in failed[0]["reason"]


def test_demo_catches_the_tampered_bundle_and_leaves_a_usable_home(
        demo: tuple[Path, str]) -> None:
    home, out = demo
    assert "REJECTED bundle-tampered.jsonl" in out
    assert "BUNDLE_INCLUSION_PROOF" in out
    tampered = _run(["bundle", "verify", str(home / "bundle-tampered.jsonl"), "--trust",
                     str(home / "trust.toml")])
    assert tampered.returncode == 1
    for name in ("ledger.sqlite", "checkpoint.txt", "trust.toml", "bundle.jsonl",
                 "eu-2023-1542.toml", "keys/admin.json", "keys/log.json",
                 "keys/governance.json", "keys/mine-kolwezi.json"):
        assert (home / name).exists(), name
    assert oct((home / "keys" / "admin.json").stat().st_mode & 0o777) == "0o600"
    assert passport_url() in out
    assert passport_url().endswith("/passports/https%3A%2F%2Fid.example.com%2Fitems%2F"
                                   f"{PACK_1}")
    assert f"batterytrace --home {home} serve" in out


def test_every_suggested_command_works(demo: tuple[Path, str]) -> None:
    home, out = demo
    for command in next_commands(home):
        assert command in out
        args = shlex.split(command)[1:]
        result = _run(args)
        expected = 1 if "--policy" in args else 0  # the demo's one failing rule
        assert result.returncode == expected, (command, result.stderr)
    assert _run(["--home", str(home), "serve", "--help"]).returncode == 0  # printed last
    replayed = json.loads(_run(["--home", str(home), "ledger", "verify", "--json"]).stdout)
    assert replayed["replay"]["events"] >= len(story())


def test_demo_witnesses_mirror_and_split_view(demo: tuple[Path, str]) -> None:
    home, out = demo
    assert "witness.ngo.example, witness.regulator.example cosigned" in out
    assert "REFUSED by witness.regulator.example (HTTP 422)" in out
    assert "WITNESS_QUORUM_NOT_MET" in out and "SPLIT VIEW shown by ledger compare" in out
    verified = json.loads(_run(["bundle", "verify", str(home / "bundle.jsonl"), "--trust",
                                str(home / "trust.toml"), "--json"]).stdout)
    assert verified["witnesses"] == ["witness.ngo.example", "witness.regulator.example"]
    split = _run(["ledger", "compare", str(home / "checkpoint.txt"),
                  str(home / "split-view-checkpoint.txt"), "--trust", str(home / "trust.toml")])
    assert split.returncode == 1 and "SPLIT_VIEW" in split.stderr


def test_demo_refuses_a_home_that_already_holds_a_ledger(demo: tuple[Path, str]) -> None:
    home, _ = demo
    second = _run(["demo", "--demo-home", str(home)])
    assert second.returncode == 2 and "already holds a ledger" in (second.stderr + second.stdout)


def test_story_recycled_shares_follow_its_quantities() -> None:
    shares = recycled_shares()
    assert shares[PACK_1] == {"Cobalt": 8.0, "Lithium": 8.0, "Nickel": 8.0}
    assert shares[PACK_2]["Cobalt"] >= 26  # the 2036 tier, from pack 1's cobalt


def test_lifecycle_keeps_the_documented_stages() -> None:
    b = Builders("https://ledger.example", "batterytrace-test")
    stages = lifecycle(b)
    assert len(stages) >= 25
    assert stages[0][2]["bizLocation"] == "https://ledger.example/facilities/kolwezi-mine"


def test_a_revocation_after_use_fails_the_bundle_unless_the_point_in_time_verdict_is_asked(
        demo: tuple[Path, str], tmp_path: Path) -> None:
    """The attack on a copy of the demo home: the carbon verifier revokes its credential after
    the pack's events relied on it; `bundle verify` must not say VERIFIED with only a note."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(demo[0], home)
    pack = item_id(PACK_1)
    carbon = next(json.loads(line)["credential"] for line in
                  (home / "bundle.jsonl").read_text("utf-8").splitlines()
                  if '"CarbonFootprintCredential"' in line and '"type":"credential"' in line)
    revoked = _run(["--home", str(home), "credential", "revoke", carbon["id"], "--key",
                    str(home / "keys" / "certifier-carbon.json")])
    assert revoked.returncode == 0, revoked.stderr
    out = tmp_path / "b.jsonl"
    exported = _run(["--home", str(home), "bundle", "export", "--item", pack, "--out", str(out)])
    assert exported.returncode == 0, exported.stderr
    # The demo's witnesses are not running: the new checkpoint is not cosigned, so this
    # verifier trusts the log key alone (the quorum is tested in test_transparency.py).
    from batterytrace.verifier.trust import TrustConfig, TrustedLedger, load_trust, write_trust

    demo_trust = load_trust(home / "trust.toml")
    write_trust(TrustConfig(
        ledgers=tuple(TrustedLedger(x.origin, x.verifier_key) for x in demo_trust.ledgers),
        governance_roots=demo_trust.governance_roots), home / "trust-log-key.toml")
    verify = ["--home", str(home), "bundle", "verify", str(out), "--trust",
              str(home / "trust-log-key.toml"), "--json"]
    result = _run(verify)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    [standing] = [c for c in report["credentials"] if c["id"] == carbon["id"]]
    assert standing["status"] == "REVOKED" and standing["since"] > standing["used_at"]
    assert {f["code"] for f in report["failures"]} == {"CREDENTIAL_STATUS_REVOKED"}
    human = _run(verify[:-1])
    assert "REVOKED CarbonFootprintCredential" in human.stdout
    point_in_time = _run([*verify, "--as-of-use"])
    assert point_in_time.returncode == 0, point_in_time.stdout
    assert any("revoked at log position" in n for n in json.loads(point_in_time.stdout)["notes"])


def test_demo_prints_the_resolver_url_of_its_pack_and_the_linkset(
        demo: tuple[Path, str]) -> None:
    """Issue 21: the label's resolver URL and the RFC 9264 linkset with UNTP link types."""
    from urllib.parse import quote

    _, out = demo
    resolver = passport_url().split("/passports/")[0] + "/id/" + quote(item_id(PACK_1), safe="")
    assert f"Resolver URL on its label (QR): {resolver}" in out
    for rel in ("https://gs1.org/voc/defaultLink",
                "https://test.uncefact.org/vocabulary/linkTypes/dpp",
                "https://test.uncefact.org/vocabulary/linkTypes/dte",
                "https://test.uncefact.org/vocabulary/linkTypes/dfr"):
        assert rel in out
