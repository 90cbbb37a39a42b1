"""One engine: the event check and the replay exist once (ledger/engine.py), and a second
implementation of either makes this test fail.

Read as lint rules over the source (ast): who may call the signature verifier, who may apply
the registry, custody and anchor rules, who may resolve keys in the registry, and where the
event check's own rule (one proof, by a key of the issuer) is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("credentials", "ledger", "verifier", "api")

# Callers allowed for each guarded function, file -> why. Anything else is a second path.
ALLOWED: dict[str, dict[str, str]] = {
    "verify_proofs": {
        "ledger/engine.py": "the event, registry and settings checks",
        "ledger/anchors.py": "an anchor's signature, part of the engine's anchor rule",
        "ledger/log_verify.py": "the genesis entry's self-signature",
        "ledger/credential_store.py": "a credential's proof when it is stored (not an entry)",
        "verifier/credential_check.py": "a credential's proof (credentials are not entries)",
        "verifier/bundle_credentials.py": "an accreditation credential's proof",
        "verifier/bundle_verify.py": "the holder's presentation of a bundle",
        "verifier/status.py": "a status list credential's proof",
        "api/passport_access.py": "access grants and requests to the passport",
        "credentials/vc.py": "the credential library itself",
        "credentials/presentation.py": "the credential library itself",
    },
    "apply_credential": {
        "ledger/engine.py": "the engine applies the custody rules after its checks",
        "verifier/bundle_replay.py": "a closure bundle's projection of an event the engine "
                                     "checked (verified_event) onto the lots in the closure",
    },
    "apply_registry": {
        "ledger/engine.py": "the engine applies the registry rules after its checks",
        "api/demo_network.py": "rule tests with a signer list taken as given (no proof)",
    },
    "check_anchor": {
        "ledger/engine.py": "the replay",
        "ledger/anchor_store.py": "the append validator of anchor entries (stored book)",
        "ledger/anchors.py": "replay_anchors, the engine's anchor rule over a list",
    },
    "check_event_documents": {
        "ledger/engine.py": "defined and used there",
        "ledger/event_precheck.py": "the worker pool runs it for append batches and replays",
        "verifier/bundle_windows.py": "windows of bundle lines, checked in workers",
    },
}

ONE_PROOF_RULE = "carries one proof, by a key of its issuer"


def _sources() -> list[tuple[str, ast.Module, str]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text("utf-8")
            found.append((path.relative_to(ROOT).as_posix(), ast.parse(text), text))
    return found


def _called_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


SOURCES = _sources()


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_guarded_functions_are_called_only_where_allowed(function):
    callers = {path for path, tree, _ in SOURCES if function in _called_names(tree)}
    unexpected = callers - set(ALLOWED[function])
    assert not unexpected, (
        f"{function} is called from {sorted(unexpected)}: a second path around the engine "
        "(call ledger.engine instead, or add the caller to ALLOWED with the reason)")
    assert callers == set(ALLOWED[function]), "ALLOWED names a caller that is gone"


def test_the_event_rule_is_written_once():
    holders = [path for path, _, text in SOURCES if ONE_PROOF_RULE in text]
    assert holders == ["ledger/engine.py"]


def test_one_replay_class_and_no_private_replays():
    """Classes that replay entries by kind (an `apply`-like method dispatching on "registry"
    and "event") exist only in the engine; the bundle replay delegates to it."""
    dispatchers = []
    for path, tree, _ in SOURCES:
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            kinds = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)
                     and c.value in ("registry", "event", "settings", "anchor")}
            compares = any(isinstance(c, ast.Compare) for c in ast.walk(node))
            if {"registry", "event", "settings"} <= kinds and compares:
                dispatchers.append(f"{path}:{node.name}")
    assert dispatchers == ["ledger/engine.py:apply"], dispatchers


def test_engine_and_verifier_stay_pure():
    """The engine imports no storage, process or network module (so every path can run it,
    a worker process included)."""
    banned = ("sqlalchemy", "sqlmodel", "multiprocessing", "concurrent", "socket", "httpx",
              "fastapi")
    tree = next(tree for path, tree, _ in SOURCES if path == "ledger/engine.py")
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if m.split(".")[0] in banned]
