"""The rules of the house (DESIGN.md): dependencies point one way, the verifier stays offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FORBIDDEN_FOR_VERIFIER = ("sqlmodel", "sqlalchemy", "fastapi", "httpx", "requests", "uvicorn")

_PROBE = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    forbidden = {forbidden!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in forbidden:
                raise ImportError(f"{{name}} must not be imported here")
            return None

    sys.meta_path.insert(0, Block())
    import batterytrace.{package} as pkg
    for info in pkgutil.walk_packages(pkg.__path__, "batterytrace.{package}."):
        importlib.import_module(info.name)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
    assert not loaded, loaded
    print("ok")
    """
)


def _probe(package: str, forbidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    code = _PROBE.format(package=package, forbidden=forbidden)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_verifier_imports_no_storage_web_or_network_library():
    result = _probe("verifier", FORBIDDEN_FOR_VERIFIER)
    assert result.returncode == 0, result.stderr


def test_credentials_know_nothing_of_the_ledger_or_storage():
    result = _probe("credentials", ("sqlmodel", "sqlalchemy", "fastapi", "httpx"))
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import pkgutil, importlib, sys, batterytrace.credentials as p\n"
         "[importlib.import_module(i.name) for i in pkgutil.walk_packages(p.__path__, "
         "'batterytrace.credentials.')]\n"
         "bad = [m for m in sys.modules if m.startswith(('batterytrace.ledger', "
         "'batterytrace.verifier', 'batterytrace.api'))]\nassert not bad, bad"],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stderr
