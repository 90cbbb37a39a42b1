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


# --- storage behind one interface; no imports hidden in functions ---------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STORAGE_LIBRARIES = ("sqlalchemy", "sqlmodel")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _storage_uses(path: Path) -> list[str]:
    """Where a module imports a storage library, builds SQL text or reaches an engine."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names
                      if a.name.split(".")[0] in STORAGE_LIBRARIES]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in STORAGE_LIBRARIES:
                found.append(f"{where} from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "text":
            found.append(f"{where} text(...)")
        elif isinstance(node, ast.Attribute) and node.attr == "engine" \
                and isinstance(node.value, ast.Attribute) and node.value.attr == "storage":
            found.append(f"{where} .storage.engine")
    return found


def test_the_api_never_touches_an_engine_or_writes_sql():
    """api/ reads and writes through the ledger (`ledger.queries`, `ledger.service`, the
    stores), never through SQLAlchemy, SQLModel or an engine of its own."""
    found = [use for path in _modules("api") for use in _storage_uses(path)]
    assert not found, found


def _function_level_imports(path: Path) -> list[str]:
    """Imports of project modules placed inside a function (to dodge an import circle)."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if in_function and isinstance(child, ast.ImportFrom):
                if child.level or (child.module or "").startswith("batterytrace"):
                    found.append(f"{path.relative_to(ROOT)}:{child.lineno}")
            elif in_function and isinstance(child, ast.Import):
                if any(a.name.startswith("batterytrace") for a in child.names):
                    found.append(f"{path.relative_to(ROOT)}:{child.lineno}")
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_no_project_import_is_hidden_in_a_function():
    """No module of ledger/, verifier/ or credentials/ imports a project module inside a
    function (the way an import circle hides)."""
    found = [use for path in _modules("ledger", "verifier", "credentials")
             for use in _function_level_imports(path)]
    assert not found, found
