"""The command line's contract, walked over every command of typer's command tree: a missing
file, a malformed value for each option and an empty stdin each give exit 2 and exactly one
line on stderr, never a traceback; a full disk or a read-only folder leaves no file behind.

Commands run in this process through `api.cli.run` (the console script's code path) for
speed; the write-failure cases run the real console script in a subprocess.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from batterytrace.api.cli import app, run
from typer.core import TyperGroup
from typer.testing import CliRunner

MISSING_DIR = "nowhere"
# Parameters that name a file to read although typed `str` (they accept '-' for stdin).
FILE_PARAMS = {"file", "files", "status", "accreditation", "did_document"}
STDIN_FILE = {("credential", "issue"): "subject"}
# Free-text parameters given a plausible value when another parameter is the one under test.
PLAUSIBLE = {"type_name": "IRMAAuditCredential", "credential_type": "IRMAAuditCredential",
             "valid_from": "2030-01-01", "valid_until": "2031-01-01", "challenge": "c",
             "role": "miner", "country": "CD", "kind": "mine", "seq": "1", "old": "1",
             "new": "2", "lot_id": "https://id.example.com/lots/co-hydroxide-KZ-2026-014",
             "item_id": "https://id.example.com/items/pack-EBS80-000117"}
# Commands whose missing-file error may name another problem checked first (the contract
# still holds: exit 2, one line), and why.
EARLIER_CHECK = {
    "event export": "the scope (--lot, --item or --all) is checked before --out",
    "item label": "the --out suffix (.png or .svg) is checked before its folder",
    "lot label": "the --out suffix (.png or .svg) is checked before its folder",
    "trust import-registry": "the --trust file (default ./trust.toml) is read first",
    "ledger compare": "a --trust file is required before the checkpoints are read",
    "ledger monitor": "a --trust file (or --since/--state) is required before any file is read",
}
# Commands not walked with a missing file, and why.
NO_FILE_WALK = {("demo",): "creates --demo-home and its parents by design",
                ("serve",): "runs until interrupted (its malformed --port is walked)",
                ("witness", "serve"): "runs until interrupted (its malformed --port is walked)"}
# Folders a command creates by design: not walked as "missing" (the other files are).
CREATES = {("ledger", "publish", "out"): "writes the mirror into a new --out folder",
           ("witness", "init", "home"): "creates the witness's --home",
           ("witness", "state", "home"): "a --home without a witness reads as empty"}


def leaf_commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        if isinstance(node, TyperGroup):
            for name, sub in sorted(node.commands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path, node

    yield from walk(typer.main.get_command(app), ())


def _is_file(path: tuple[str, ...], param: Any) -> bool:
    return ("Path" in str(param.bare_type()) or param.name in FILE_PARAMS
            or STDIN_FILE.get(path) == param.name)


def _flag(param: Any) -> str | None:
    return param.opts[0] if param.param_type_name == "option" else None


def _argv(path: tuple[str, ...], node: Any, values: dict[str, str]) -> list[str]:
    """argv for the command: `values` by parameter name, required ones filled plausibly."""
    args: list[str] = list(path)
    for param in node.params:
        if param.name in values:
            value = values[param.name]
        elif param.required:
            value = PLAUSIBLE.get(param.name, "x")
        else:
            continue
        flag = _flag(param)
        args += [flag, value] if flag else [value]
    return args


def cases(home: Path) -> Iterator[tuple[str, list[str], str | None, str]]:
    """(case id, argv, stdin, text the error line must contain)."""
    missing = str(home.parent / MISSING_DIR / "missing.json")
    for path, node in leaf_commands():
        files = [p for p in node.params if _is_file(path, p)
                 and (*path, p.name) not in CREATES]
        name = " ".join(path)
        if path not in NO_FILE_WALK:
            for param in files:
                values = {p.name: missing for p in files if p.required or p is param}
                yield (f"{name} missing {param.name}", _argv(path, node, values), None,
                       "" if name in EARLIER_CHECK else MISSING_DIR)
            # '-' is stdin for the files typed `str`; a Path option is a file name
            stdin = [p for p in files if "Path" not in str(p.bare_type())
                     and (p.param_type_name == "argument" or STDIN_FILE.get(path) == p.name)]
            if stdin:
                values = {p.name: missing for p in files if p.required}
                values[stdin[0].name] = "-"
                yield f"{name} empty stdin", _argv(path, node, values), "", ""
        for param in node.params:
            if param.bare_type() in ("int", "float") and not getattr(param, "is_flag", False):
                values = {param.name: "not-a-number"}
                yield (f"{name} malformed {param.name}", _argv(path, node, values), None,
                       _flag(param) or param.name)


def _run(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(input=stdin or "") as (out, err, _mixed):
        code = run(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("contract") / "home"
    code, _out, err = _run(["demo", "--demo-home", str(home)])
    assert code == 0, err
    return home


def _assert_contract(case: str, code: int, err: str, needle: str) -> None:
    lines = err.splitlines()
    assert code == 2, (case, code, err)
    assert len(lines) == 1, (case, err)
    assert "Traceback" not in err and lines[0].startswith("error "), (case, err)
    assert needle.lower() in lines[0].lower(), (case, needle, err)


def test_every_command_is_walked(demo_home: Path) -> None:
    walked = {tuple(c[0].split(" ")[:len(p)]) for c in cases(demo_home) for p, _ in
              leaf_commands() if c[0].startswith(" ".join(p) + " ")}
    untested = {p for p, _ in leaf_commands()} - walked - set(EXPLICIT_COMMANDS)
    assert not untested, untested


def test_missing_files_malformed_numbers_and_empty_stdin(
        demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # plausible relative values ("x") land here
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    failures = []
    for case, argv, stdin, needle in cases(home):
        code, _out, err = _run(["--home", str(home), *argv], stdin)
        try:
            _assert_contract(case, code, err, needle)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


def _explicit(home: Path) -> list[tuple[str, list[str], str]]:
    """Malformed values the walk cannot derive from types: dates, choices, unknown ids."""
    key = str(home / "keys" / "auditor-irma.json")
    trust, bundle = str(home / "trust.toml"), str(home / "bundle.jsonl")
    subject = str(home / "subject.json")
    return [
        ("credential issue bad --valid-until",
         ["credential", "issue", "--type", "IRMAAuditCredential", "--subject", subject,
          "--key", key, "--valid-until", "not-a-date"], "--valid-until"),
        ("credential issue expired", ["credential", "issue", "--type", "IRMAAuditCredential",
                                      "--subject", subject, "--key", key, "--valid-until",
                                      "2020-01-01"], "--allow-expired"),
        ("credential issue invalid subject",
         ["credential", "issue", "--type", "IRMAAuditCredential", "--subject", bundle,
          "--key", key], "bundle.jsonl"),
        ("credential issue unknown type",
         ["credential", "issue", "--type", "Nope", "--subject", subject, "--key", key], "Nope"),
        ("credential template unknown type", ["credential", "template", "--type", "Nope"],
         "Nope"),
        ("credential schema unknown type", ["credential", "schema", "--type", "Nope"], "Nope"),
        ("credential verify bad --at", ["credential", "verify", subject, "--at", "soon"],
         "--at"),
        ("credential sign bad --created", ["credential", "sign", subject, "--key", key,
                                           "--created", "soon"], "soon"),
        ("accreditation issue bad dates",
         ["accreditation", "issue", "--subject", "did:key:x", "--type", "IRMAAuditCredential",
          "--key", key, "--valid-from", "soon", "--valid-until", "later"], ""),
        ("participant add bad --role",
         ["participant", "add", "newcomer", "--legal-name", "N", "--role", "astronaut",
          "--country", "CD", "--key", key], "astronaut"),
        ("facility add bad --kind",
         ["facility", "add", "https://id.example.com/f/1", "--name", "F", "--operator",
          "mine-kolwezi", "--kind", "volcano", "--country", "CD"], "kind"),
        ("status-list create bad --purpose",
         ["status-list", "create", "--issuer", "did:key:x", "--purpose", "fun"], "purpose"),
        ("bundle verify bad --policy-date",
         ["bundle", "verify", bundle, "--trust", trust, "--policy", "eu-2023-1542",
          "--policy-date", "someday"], "someday"),
        ("bundle verify unknown --policy",
         ["bundle", "verify", bundle, "--trust", trust, "--policy", "no-such-policy"],
         "no-such-policy"),
        ("bundle export unknown item", ["bundle", "export", "--item", "urn:nope"], "urn:nope"),
        ("bundle export --json without --out", ["bundle", "export", "--all", "--json"],
         "--out"),
        ("lot show unknown", ["lot", "show", "urn:lot:nope"], "urn:lot:nope"),
        ("lot trace unknown", ["lot", "trace", "urn:lot:nope"], "urn:lot:nope"),
        ("item show unknown", ["item", "show", "urn:item:nope"], "urn:item:nope"),
        ("item trace unknown", ["item", "trace", "urn:item:nope"], "urn:item:nope"),
        ("participant show unknown", ["participant", "show", "nobody"], "nobody"),
        ("participant rotate-key unknown",
         ["participant", "rotate-key", "nobody", "--current-key", key, "--new-key", key],
         "nobody"),
        ("participant revoke-key unknown", ["participant", "revoke-key", "nobody", "k"],
         "nobody"),
        ("credential show unknown", ["credential", "show", "urn:cred:nope"], "urn:cred:nope"),
        ("credential revoke unknown", ["credential", "revoke", "urn:cred:nope", "--key", key],
         "urn:cred:nope"),
        ("credential suspend unknown", ["credential", "suspend", "urn:cred:nope", "--key",
                                        key], "urn:cred:nope"),
        ("credential reinstate unknown", ["credential", "reinstate", "urn:cred:nope", "--key",
                                          key], "urn:cred:nope"),
        ("accreditation revoke unknown", ["accreditation", "revoke", "urn:cred:nope", "--key",
                                          key], "urn:cred:nope"),
        ("status-list publish unknown", ["status-list", "publish", "urn:list:nope", "--key",
                                         key], "urn:list:nope"),
        ("status-list show unknown", ["status-list", "show", "urn:list:nope"],
         "urn:list:nope"),
        ("credential find malformed", ["credential", "find"], "--subject"),
        ("ledger show unknown", ["ledger", "show", "99999"], "99999"),
        ("ledger prove unknown", ["ledger", "prove", "99999"], "99999"),
        ("ledger consistency backwards", ["ledger", "consistency", "5", "2"], ""),
        ("ledger settings unknown", ["ledger", "settings", "no_such_setting=1"],
         "no_such_setting"),
        ("ledger settings malformed", ["ledger", "settings", "novalue"], "novalue"),
        ("ledger repair without a source", ["ledger", "repair"], "--from-entries"),
        ("init on a ledger", ["init"], ""),
        ("trust add nothing", ["trust", "add", trust], "nothing to add"),
        ("trust show not a trust file", ["trust", "show", bundle], ""),
        ("presentation create no challenge", ["presentation", "create", subject, "--key",
                                              key], "--challenge"),
        ("event sign unregistered key",
         ["event", "sign", str(Path(__file__).parent.parent / "docs" / "examples" /
                               "plain-event.json"), "--key", key], "--issuer"),
        ("event append not a credential", ["event", "append", subject], ""),
        ("key new existing", ["key", "new", "--out", key], "--force"),
        ("credential types unknown option", ["credential", "types", "--colour"], "--colour"),
        ("ledger info unknown option", ["ledger", "info", "--colour"], "--colour"),
        ("ledger checkpoint unknown option", ["ledger", "checkpoint", "--colour"],
         "--colour"),
        ("participant list unknown option", ["participant", "list", "--colour"], "--colour"),
        ("facility list unknown option", ["facility", "list", "--colour"], "--colour"),
        ("ledger verify unknown option", ["ledger", "verify", "--colour"], "--colour"),
        ("demo unknown option", ["demo", "--colour"], "--colour"),
        ("ledger publish unknown option", ["ledger", "publish", "--out", str(home / "m"),
                                           "--colour"], "--colour"),
        ("witness state unknown option", ["witness", "state", "--home", str(home / "w"),
                                          "--colour"], "--colour"),
    ]


EXPLICIT_COMMANDS = [
    ("credential", "template"), ("credential", "schema"), ("credential", "types"),
    ("credential", "find"), ("credential", "show"), ("credential", "revoke"),
    ("credential", "suspend"), ("credential", "reinstate"), ("accreditation", "revoke"),
    ("status-list", "create"), ("status-list", "publish"), ("status-list", "show"),
    ("lot", "show"), ("lot", "trace"), ("item", "show"), ("item", "trace"),
    ("participant", "show"), ("participant", "list"), ("participant", "revoke-key"),
    ("facility", "list"), ("facility", "add"), ("ledger", "info"), ("ledger", "checkpoint"),
    ("ledger", "settings"), ("ledger", "repair"), ("ledger", "verify"), ("init",), ("demo",),
    ("trust", "show"), ("trust", "init"), ("ledger", "publish"), ("witness", "state"),
]


def test_malformed_values_and_unknown_ids(demo_home: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    code, out, err = _run(["credential", "template", "--type", "IRMAAuditCredential"])
    assert code == 0, err
    (home / "subject.json").write_text(out, encoding="utf-8")
    failures = []
    for case, argv, needle in _explicit(home):
        code, _out, err = _run(["--home", str(home), *argv])
        try:
            _assert_contract(case, code, err, needle)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


# --- writes that fail: nothing half-written ---------------------------------------------------

CLI = [sys.executable, "-m", "batterytrace.api.cli"]


def _limited(limit: int) -> Any:
    def preexec() -> None:  # a real write error (EFBIG) on a real path, like a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _subprocess(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          **kwargs)


def _one_line(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, \
        result.stderr


@pytest.mark.parametrize("command", [
    ["bundle", "export", "--item", "https://id.example.com/items/pack-EBS80-000117",
     "--out", "{out}"],
    ["key", "new", "--out", "{out}"],
    ["trust", "init", "{out}", "--from-ledger"],
], ids=["bundle export", "key new", "trust init"])
def test_a_full_disk_leaves_no_file(demo_home: Path, tmp_path: Path,
                                    command: list[str]) -> None:
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    args = ["--home", str(demo_home), *[a.replace("{out}", str(out)) for a in command]]
    result = _subprocess(args, preexec_fn=_limited(64))
    _one_line(result)
    assert list(out.parent.iterdir()) == []


def test_a_full_stdout_is_one_line(demo_home: Path) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([*CLI, "--home", str(demo_home), "bundle", "export", "--item",
                                 "https://id.example.com/items/pack-EBS80-000117"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "No space left" in result.stderr


def test_a_missing_out_folder_is_refused_before_any_work(demo_home: Path,
                                                         tmp_path: Path) -> None:
    for args in (["key", "new", "--out", str(tmp_path / "no" / "k.json")],
                 ["bundle", "export", "--all", "--out", str(tmp_path / "no" / "b.jsonl")],
                 ["trust", "init", str(tmp_path / "no" / "trust.toml")]):
        code, _out, err = _run(["--home", str(demo_home), *args])
        _assert_contract(" ".join(args[:2]), code, err, "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only folder; "
                    "as another user a chmod is used below")
def test_a_read_only_home_as_root(demo_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    if subprocess.run(["mount", "--bind", str(demo_home), str(home)],
                      capture_output=True).returncode != 0:
        pytest.skip("mount --bind is not permitted here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(home)],
                          capture_output=True).returncode != 0:
            pytest.skip("a read-only remount is not permitted here")
        _read_only_checks(home, tmp_path)
    finally:
        subprocess.run(["umount", str(home)], capture_output=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a chmod")
def test_a_read_only_home(demo_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "ro"
    shutil.copytree(demo_home, home)
    modes = []
    for path in [home, *home.rglob("*")]:
        modes.append((path, path.stat().st_mode))
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        _read_only_checks(home, tmp_path)
    finally:
        for path, mode in reversed(modes):
            path.chmod(mode)


def _read_only_checks(home: Path, tmp_path: Path) -> None:
    key = str(home / "keys" / "mine-kolwezi.json")
    for args in (["participant", "add", "x", "--legal-name", "X", "--role", "miner",
                  "--country", "CD", "--key", key],
                 ["ledger", "checkpoint"],
                 ["trust", "init", str(home / "t.toml")]):
        result = _subprocess(["--home", str(home), *args], cwd=tmp_path)
        _one_line(result)
