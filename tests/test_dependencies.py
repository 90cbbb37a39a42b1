"""Every third-party package the code imports is a declared dependency (pyproject.toml).

The imports are read with `ast` (module level and inside functions, since a lazy import is as
needed as any other), mapped to distributions with importlib.metadata, and looked up in the
dependency group the folder may use: credentials/, ledger/ and verifier/ only the core
dependencies (a plain `pip install batterytrace` must run them), api/ the core and the
`server` extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PROJECT = PYPROJECT["project"]
FIRST_PARTY = {"batterytrace"}
# Which dependency groups each folder may rely on.
GROUPS = {
    "credentials": ("core",),
    "ledger": ("core",),
    "verifier": ("core",),
    "api": ("core", "server"),
}


def _normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _normalize(match.group(1))


def _declared(group: str) -> set[str]:
    """Distributions of a group; `core` is [project].dependencies; extras that name the
    project itself (`batterytrace[postgres,server]`) are expanded."""
    requirements = (
        PROJECT["dependencies"] if group == "core" else PROJECT["optional-dependencies"][group]
    )
    names: set[str] = set()
    for requirement in requirements:
        name = _requirement_name(requirement)
        if name == "batterytrace":
            extras = re.search(r"\[([^\]]*)\]", requirement)
            assert extras, requirement
            for extra in extras.group(1).split(","):
                names |= _declared(extra.strip())
        else:
            names.add(name)
    return names


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Top-level names of the absolute imports of a file, with their line."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


def _third_party_imports(folder: str) -> dict[str, list[str]]:
    """Import name -> the places (file:line) that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name, line in _imports(path):
            if name in sys.stdlib_module_names or name in FIRST_PARTY:
                continue
            found.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


@pytest.mark.parametrize("folder", sorted(GROUPS))
def test_every_imported_package_is_declared(folder: str) -> None:
    distributions = importlib.metadata.packages_distributions()
    allowed = set().union(*(_declared(group) for group in GROUPS[folder]))
    problems = []
    for name, places in sorted(_third_party_imports(folder).items()):
        owners = {_normalize(d) for d in distributions.get(name, [])}
        if not owners:
            problems.append(f"{name} (not installed; imported at {places[0]})")
        elif not owners & allowed:
            problems.append(
                f"{name} -> {'/'.join(sorted(owners))} is not declared for {folder}/ "
                f"(groups {', '.join(GROUPS[folder])}; imported at {places[0]})"
            )
    assert not problems, "\n".join(problems)


def test_dev_pulls_the_extras_that_make_demo_and_make_test_need() -> None:
    dev = _declared("dev")
    assert _declared("server") <= dev and _declared("postgres") <= dev
    assert {"mypy", "import-linter", "ruff", "httpx"} <= dev


def test_server_and_postgres_pieces_are_not_core() -> None:
    core = _declared("core")
    assert not core & {"fastapi", "starlette", "uvicorn", "jinja2", "segno", "psycopg", "httpx"}


def test_pyld_is_bounded_below_its_next_major() -> None:
    """credentials/rdfc.py subclasses PyLD internals: a new major must be checked first."""
    (pyld,) = [r for r in PROJECT["dependencies"] if _requirement_name(r) == "pyld"]
    upper = re.search(r"<\s*(\d+)", pyld)
    assert upper, pyld
    installed_major = int(importlib.metadata.version("pyld").split(".")[0])
    assert installed_major < int(upper.group(1))


def test_typed_packages_ship_py_typed() -> None:
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for folder in ("credentials", "ledger", "verifier"):
        assert (ROOT / folder / "py.typed").is_file()
        assert "py.typed" in package_data[f"batterytrace.{folder}"]
