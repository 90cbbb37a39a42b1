"""File modes of a ledger home under a permissive umask, and key files readable by others."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from batterytrace.api.cli import app
from batterytrace.credentials.keys import (
    Ed25519Key,
    InsecureKeyFileError,
    InsecureKeyFileWarning,
    load_key_file,
    write_key_file,
)
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_sets_modes_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["--home", str(home), "init"])
    assert result.exit_code == 0, result.output
    assert _mode(home) == 0o700
    assert _mode(home / "keys") == 0o700
    assert _mode(home / "keys" / "log.json") == 0o600
    assert _mode(home / "keys" / "admin.json") == 0o600
    assert _mode(home / "checkpoint.txt") == 0o644
    databases = sorted(home.glob("ledger.sqlite*"))
    assert databases
    for path in databases:
        assert _mode(path) == 0o600, path
    assert not list(home.glob(".*.tmp")) and not list((home / "keys").glob(".*"))


def test_write_key_file_is_atomic_and_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "k.json"
    path.write_text("old")
    os.chmod(path, 0o666)
    key = Ed25519Key.generate()
    write_key_file(key, path)
    assert _mode(path) == 0o600
    assert load_key_file(path).public_key == key.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_readable_key_file_warns_and_strict_refuses(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_key_file(Ed25519Key.generate(), path)
    os.chmod(path, 0o644)
    with pytest.warns(InsecureKeyFileWarning, match="readable by group or others"):
        load_key_file(path)
    with pytest.raises(InsecureKeyFileError) as info:
        load_key_file(path, strict=True)
    assert info.value.code == "INSECURE_KEY_FILE"
    assert info.value.exit_code == 2
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_key_file(path, strict=True)


def test_cli_strict_keys_refuses_readable_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert runner.invoke(app, ["--home", str(home), "init"]).exit_code == 0
    os.chmod(home / "keys" / "log.json", 0o640)
    # CliRunner bypasses main(), which turns typed errors into their exit code (2 here)
    result = runner.invoke(app, ["--home", str(home), "--strict-keys", "ledger", "checkpoint"])
    assert isinstance(result.exception, InsecureKeyFileError), result.output
    assert result.exception.exit_code == 2
    result = runner.invoke(
        app, ["--home", str(home), "ledger", "checkpoint"], env={"BATTERYTRACE_STRICT_KEYS": "1"}
    )
    assert isinstance(result.exception, InsecureKeyFileError), result.output
    with pytest.warns(InsecureKeyFileWarning):
        result = runner.invoke(app, ["--home", str(home), "ledger", "checkpoint"])
    assert result.exit_code == 0, result.output
