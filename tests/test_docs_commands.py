"""Docs as tests: every shell block of README.md and docs/*.md runs against a demo home.

Each logical line of a ```sh block (backslash continuations joined) runs with bash in one
working folder per document, where `./docs` is the repository's docs and the README's first
command builds the demo home `./demo`; a line whose comment says "exits N" must exit N, every
other line 0. A block preceded by `<!-- docs-test: skip (reason) -->` is not run; the list of
skipped blocks stays short and each names its reason (SKIPPED below keeps it honest).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- docs-test: skip \(([^)]*)\) -->\n)?```(?:sh|bash|shell)\n(.*?)```",
                   re.S)
# Every skipped block, by document, with its reason. A new skip must be added here.
SKIPPED = {
    "README.md": ["creates .venv and runs the whole suite: the tests run the demo itself",
                  "serve runs until interrupted; PostgreSQL needs a server"],
    "operations.md": ["needs a PostgreSQL server and a dump"],
    "performance.md": ["the benchmarks take minutes and build a large ledger"],
}


def shell_blocks(path: Path) -> list[tuple[str | None, list[str]]]:
    """(skip reason or None, logical command lines) of each shell block of a document."""
    blocks = []
    for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
        text = match.group(2).replace("\\\n", " ")
        lines = [line.strip() for line in text.splitlines() if line.strip()
                 and not line.strip().startswith("#")]
        blocks.append((match.group(1), lines))
    return blocks


def test_skipped_blocks_are_few_and_justified() -> None:
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for reason, _lines in shell_blocks(path):
            if reason is not None:
                found.setdefault(path.name, []).append(reason)
    assert found == SKIPPED


def _expected_exit(line: str) -> int:
    found = re.search(r"#.*\bexits (\d)", line)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("docs")
    (work / "docs").symlink_to(ROOT / "docs")
    return work


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    env.pop("BATTERYTRACE_HOME", None)
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


RUNNABLE = [p for p in DOCS if any(reason is None for reason, _ in shell_blocks(p))]


def test_the_readme_and_operations_have_blocks_to_run() -> None:
    assert {p.name for p in RUNNABLE} >= {"README.md", "operations.md"}


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_every_shell_block_runs(path: Path, workdir: Path) -> None:
    blocks = [lines for reason, lines in shell_blocks(path) if reason is None]
    if not (workdir / "demo" / "checkpoint.txt").exists() and path.name != "README.md":
        assert _run("batterytrace demo --demo-home ./demo --replace", workdir).returncode == 0
    for lines in blocks:
        for line in lines:
            result = _run(line, workdir)
            expected = _expected_exit(line)
            assert result.returncode == expected, (line, result.stdout[-2000:], result.stderr)
            assert "Traceback" not in result.stderr, (line, result.stderr)
