"""`make demo` runs in the test suite: the whole story, with its expected failures, exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path):
    home = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "batterytrace.api.cli", "demo", "--demo-home", str(home)],
        capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "VERIFIED ledger: 47 entries" in out
    assert "VALID    IRMA audit credential" in out
    assert "REJECTED tampered copy (level raised): PROOF_VERIFICATION_ERROR" in out
    assert "VERIFIED bundle of item https://id.example.com/items/pack-p1" in out
    assert "BUNDLE_INCLUSION_PROOF" in out
    for name in ("ledger.sqlite", "checkpoint.txt", "trust.toml", "bundle.jsonl",
                 "keys/admin.json", "keys/log.json"):
        assert (home / name).exists(), name
    # What the demo left behind verifies again with the real command line.
    again = subprocess.run(
        [sys.executable, "-m", "batterytrace.api.cli", "bundle", "verify",
         str(home / "bundle.jsonl"), "--trust", str(home / "trust.toml"), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr
    # `ledger verify` checks the log and replays every signature and custody rule.
    replayed = subprocess.run(
        [sys.executable, "-m", "batterytrace.api.cli", "--home", str(home), "ledger", "verify",
         "--json"], capture_output=True, text=True, timeout=300,
    )
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["size"] == 47 and report["replay"]["events"] >= 30


def test_demo_refuses_a_home_that_already_holds_a_ledger(tmp_path: Path):
    home = tmp_path / "demo"
    args = [sys.executable, "-m", "batterytrace.api.cli", "demo", "--demo-home", str(home)]
    assert subprocess.run(args, capture_output=True, timeout=300).returncode == 0
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and "already holds a ledger" in (second.stderr + second.stdout)
