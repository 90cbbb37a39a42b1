"""Human output that participants cannot bend: every human renderer of the command line prints
participant text literally (rich markup escaped; ANSI escapes, bidi overrides, newlines and other
control characters shown escaped), with no Python reprs, and piped output is not cut at 80
columns. A property test feeds generated strings through every renderer; an end-to-end test
registers hostile names in a ledger and runs the listing commands."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from batterytrace.api.cli import run
from batterytrace.api.cli_credentials import render_check
from batterytrace.api.cli_custody import _render_subject
from batterytrace.api.console import fail, say, show
from batterytrace.credentials.errors import InputError
from batterytrace.verifier.policy import PolicyResult, RuleOutcome
from batterytrace.verifier.provenance_render import render_facts
from batterytrace.verifier.report import CredentialStanding, Failure, Report
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from terminal_support import stderr_on_a_terminal
from typer.testing import CliRunner

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = st.lists(
    st.one_of(st.text(st.characters(codec="utf-8"), max_size=4),
              st.sampled_from(["[", "]", "/", "[/]", "[/red]", "[bold]", "\x1b[31m",
                               "\u202e", "\u2066", "\n", "\r", "\t", ":key:"])),
    min_size=1, max_size=8).map("".join)


def _expected(text: str) -> str:
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _console() -> Console:
    return Console(record=True, width=10_000, force_terminal=True, color_system=None,
                   emoji=False)


def _provenance(h: str) -> dict[str, Any]:
    source = {"recycled": False, "site_name": h, "country": h, "share": 0.5,
              "irma_level": h, "artisanal": True, "custody_models": [h]}
    return {"subject": h, "model": {"name": h}, "elements": {"Co": {"mass_kg": 1.0,
                                                                     "sources": [source]}},
            "countries": {h: 0.5}, "artisanal_share": 0.1,
            "route": [{"seq": 1, "time": h, "from_country": h, "to_country": h, "mode": h,
                       "purpose": h, "waste": False}],
            "lifecycle": {"production": 3}, "carbon_footprint": {
                "value": 1, "unit": h, "class": h, "model": h, "plant_name": h, "plant": h},
            "recycled_content": {"claimed": {h: 0.08}, "computed": {h: 0.08}},
            "state_of_health": {"value": 90, "time": h}, "placed_on_market": h}


def _renderers(h: str) -> dict[str, Any]:
    """Every human renderer of the CLI, each given `h` wherever participant text goes."""
    report = Report(origin=h, scope="item", subject=h, presented_by=h)
    report.credentials.append(CredentialStanding(h, h, "REVOKED", 3))
    report.notes.append(h)
    report.not_shown.append(h)
    report.failures.append(Failure(h, "CODE", h))
    check = SimpleNamespace(
        id=h, issuer=h, issuer_status="UNTRUSTED_ISSUER", subject_ids=(h,), trust_path=(
            {"subject": h},), trust_root=h, checks=("proof",), warnings=(h,),
        status={"decisions": [{"purpose": "revocation", "value": False, "source": h}]})
    policy = PolicyResult(h, date(2031, 9, 1), (RuleOutcome(h, h, "FAIL", h, {}, h, h),))
    subject = {"id": h, "holder": h, "composition": {h: 0.5}, "upstream": [h] * 5,
               "holders": [{"holder": h, "kg": h}], "history": [{"event": h, "seq": 1}]}
    return {
        "bundle verify report": lambda c: report.render(c, verbose=True),
        "credential verify/check": lambda c: render_check(check, c),
        "bundle provenance": lambda c: render_facts(_provenance(h), c),
        "policy": lambda c: policy.render(c),
        "lot/item show/trace": _render_subject(subject),
        "say(show(...))": lambda c: say(c, f"x {show({h: [h, None, 0.5]})}"),
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(HOSTILE)
# rich reads `\\[` as `[`; a trailing backslash or an open `[` pairs with the markup after it
@example("\\[")
@example("a\\\\")
@example("[/")
@example("x[b")
def test_every_renderer_prints_participant_text_literally(hostile: str) -> None:
    expected = _expected(hostile).strip()
    assume(expected)
    for name, render in _renderers(hostile).items():
        console = _console()
        render(console)
        text = console.export_text()
        assert expected in text, (name, hostile, text)
        assert "\x1b" not in text and "\u202e" not in text, (name, text)


@given(HOSTILE)
def test_an_error_is_one_literal_line(hostile: str) -> None:
    import typer

    runner = CliRunner()
    with runner.isolation() as (_out, err, _mixed):
        with pytest.raises(typer.Exit):
            fail(InputError(f"no {hostile} with origin"))
        sys.stderr.flush()
        text = err.getvalue().decode()
    assert text.count("\n") == 1 and "\x1b" not in text
    assert _expected(hostile).strip() in text


def test_show_has_no_python_reprs() -> None:
    assert show(None) == "-"
    assert show({"Co": 0.0, "Li": 0.08}) == "Co 0, Li 0.08"
    assert show(["VerifiableCredential", "X"]) == "VerifiableCredential, X"
    assert show(True) == "yes"


# --- end to end: a ledger with hostile names ---------------------------------------------------

NAMES = ["ACME [ledger] Mining [/] Ltd", "[/red]Evil", "\x1b[31mRed\x1b[0m Corp",
         "\u202eevil\u202c SA", "two\nlines"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation() as (out, err, _mixed):
        code = run(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    home = tmp / "home"
    assert _run(["--home", str(home), "init"])[0] == 0
    for n, legal in enumerate(NAMES):
        key = tmp / f"k{n}.json"
        assert _run(["key", "new", "--out", str(key)])[0] == 0
        code, _out, err = _run(["--home", str(home), "participant", "add", f"p{n}",
                                "--legal-name", legal, "--role", "miner", "--country", "CD",
                                "--key", str(key)])
        assert code == 0, err
        code, _out, err = _run(["--home", str(home), "facility", "add",
                                f"https://id.example.com/f/{n}", "--name", legal,
                                "--operator", f"p{n}", "--kind", "mine", "--country", "CD"])
        assert code == 0, err
    return home


@pytest.mark.parametrize("command", [["participant", "list"], ["facility", "list"]])
def test_listings_print_hostile_names_literally(hostile_home: Path, command: list[str]) -> None:
    code, out, err = _run(["--home", str(hostile_home), *command])
    assert code == 0, err
    for name in NAMES:
        assert _expected(name) in out, (name, out)
    assert "\x1b" not in out and "\u202e" not in out
    assert len(out.splitlines()) == len(NAMES)  # one line each: newlines shown escaped


def test_trust_error_names_the_origin_literally(tmp_path: Path) -> None:
    trust = tmp_path / "trust.toml"
    trust.write_text('version = 1\n[[ledger]]\norigin = "x"\nverifier_key = "[/]"\n',
                     encoding="utf-8")
    bundle = tmp_path / "b.jsonl"
    bundle.write_text('{"type":"header"}\n', encoding="utf-8")
    code, _out, err = _run(["bundle", "verify", str(bundle), "--trust", str(trust)])
    assert code == 2 and len(err.splitlines()) == 1, err


def test_piped_output_is_not_cut_at_80_columns(hostile_home: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    long_id = "https://id.example.com/facilities/" + "a-very-long-facility-name-" * 6
    result = subprocess.run(
        [sys.executable, "-m", "batterytrace.api.cli", "--home", str(hostile_home),
         "facility", "add", long_id, "--name", "N", "--operator", "p0", "--kind", "mine",
         "--country", "CD"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert long_id in result.stdout.replace("\n", "") and long_id in result.stdout


def test_json_is_available_on_reporting_commands(hostile_home: Path, tmp_path: Path) -> None:
    """credential issue, bundle export and event sign (among others) answer with --json."""
    code, out, _err = _run(["--home", str(hostile_home), "participant", "list", "--json"])
    assert code == 0 and [p["legalName"] for p in json.loads(out)] == NAMES
    home = tmp_path / "home"
    shutil.copytree(hostile_home, home)
    code, out, err = _run(["--home", str(home), "bundle", "export", "--all", "--out",
                           str(tmp_path / "all.jsonl"), "--json"])
    assert code == 0, err
    assert json.loads(out)["entries"] > len(NAMES)


def test_progress_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    """`bundle verify` draws a rich progress bar on a terminal's stderr; piped, stderr stays
    empty (and stdout holds only the report)."""
    import subprocess

    home = tmp_path / "home"
    code, _out, err = _run(["demo", "--demo-home", str(home)])
    assert code == 0, err
    args = [sys.executable, "-m", "batterytrace.api.cli", "bundle", "verify",
            str(home / "bundle.jsonl"), "--trust", str(home / "trust.toml")]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
    code, seen = stderr_on_a_terminal(args)
    assert code == 0
    assert b"verifying the bundle" in seen
