"""The one worker pool (ledger/pool.py): ordered results on any number of processes, workers
that die with their parent, the process-wide settings of bulk work (restored on every exit,
main thread only), and the rule that no other module starts processes, pickles or touches
the collector."""

from __future__ import annotations

import ast
import dataclasses
import gc
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from batterytrace.ledger import pool

ROOT = Path(__file__).resolve().parent.parent


# --- bulk work: the collector ---------------------------------------------------------------


def test_paused_inside_and_restored_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), pool.bulk_work():
        assert not gc.isenabled()
        with pool.bulk_work():  # nested: still paused, and not re-enabled early
            pass
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_other_threads_leave_the_collector_alone():
    seen = []

    def work():
        with pool.bulk_work():
            seen.append(gc.isenabled())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [True] and gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with pool.bulk_work():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_young_collections_only_inside_bulk_work_on_its_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: calls.append(generation))
    pool.collect_young()
    with pool.bulk_work():
        pool.collect_young()
        thread = threading.Thread(target=pool.collect_young)
        thread.start()
        thread.join()
    pool.collect_young()
    assert calls == [1]


def test_an_append_leaves_the_collector_enabled(tmp_path):
    from batterytrace.ledger.errors import EntryFormatError
    from batterytrace.ledger.log import Ledger, Submission

    led = Ledger.init(tmp_path / "h", None, "example.org/log")
    led.append([Submission("event", {"n": 1})])
    with pytest.raises(EntryFormatError):
        led.append([Submission("event", ["not", "an", "object"])])
    assert gc.isenabled()
    led.close()


# --- ordered map ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Square:
    n: int
    square: int


def squares(numbers: list[int], offset: int = 0) -> list[object]:
    """A chunk's results: a dataclass per number, an error value for a negative one, and a
    chunk holding -13 fails (not a value: the caller redoes it and raises)."""
    if -13 in numbers:
        raise RuntimeError("thirteen")
    return [Square(n, n * n + offset) if n >= 0 else ValueError(n) for n in numbers]


def _plain(results):
    return [(type(r).__name__, r.n, r.square) if isinstance(r, Square) else repr(r)
            for r in results]


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_ordered_map_gives_the_in_process_results_in_order(processes):
    numbers = list(range(-3, 200))
    expected = _plain(squares(numbers, 1))
    assert _plain(pool.ordered_map(squares, numbers, processes, chunk=7, args=(1,))) == expected
    # Several runs open at once, taken interleaved, on one pool.
    runs = [pool.ordered_map(squares, numbers, processes, chunk=5, args=(i,)) for i in range(3)]
    taken = [[], [], []]
    for _ in numbers:
        for i, run in enumerate(runs):
            taken[i].append(next(run))
    assert [_plain(t) for t in taken] == [_plain(squares(numbers, i)) for i in range(3)]


def test_a_chunk_that_fails_in_a_worker_fails_here():
    with pytest.raises(RuntimeError, match="thirteen"):
        list(pool.ordered_map(squares, list(range(-20, 100)), 2, chunk=4))


def test_items_that_do_not_pickle_are_mapped_here():
    items = [threading.Lock()] * 5
    assert list(pool.ordered_map(lambda chunk: [1 for _ in chunk], items, 2, chunk=2)) == [1] * 5


def test_plain_dataclasses_cross_by_their_state():
    value = Square(3, 9)
    assert pickle.loads(pool._dumps([value, ValueError(3), {"a": (1, b"x")}]))[0] == value
    assert pool._REDUCERS[Square](value)[2] == {"n": 3, "square": 9}
    with pytest.raises(KeyError):
        pool._REDUCERS[ValueError]


def test_a_dead_worker_costs_speed_not_results():
    numbers = list(range(500))
    expected = _plain(squares(numbers))
    assert _plain(pool.ordered_map(squares, numbers, 2, chunk=3)) == expected
    workers = pool.get_pool(1)
    for process in workers.processes:
        process.kill()
        process.join()
    assert _plain(pool.ordered_map(squares, numbers, 2, chunk=3)) == expected
    assert _plain(pool.ordered_map(squares, numbers, 2, chunk=3)) == expected  # a new pool
    assert pool.get_pool(1) is not workers


# --- workers die with their parent ----------------------------------------------------------

_PARENT = textwrap.dedent("""
    import sys, threading
    from batterytrace.ledger import pool
    made = []
    if sys.argv[1] == "thread":  # no PDEATHSIG: the pipe and parent checks end the workers
        thread = threading.Thread(target=lambda: made.append(pool.get_pool(2)))
        thread.start()
        thread.join()
    else:
        made.append(pool.get_pool(2))
    print(" ".join(map(str, made[0].pids)), flush=True)
    sys.stdin.read()
""")


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("creator", ["main", "thread"])
def test_workers_die_with_their_parent(creator):
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, creator],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the event (the workers gone), up to the deadline
    assert not [pid for pid in pids if _alive(pid)]


_SERVER_LIKE = textwrap.dedent("""
    import signal, sys
    from batterytrace.ledger import pool
    signal.signal(signal.SIGTERM, lambda *_: None)  # a server's handler, inherited by a fork
    print(" ".join(map(str, pool.get_pool(2).pids)), flush=True)
    sys.stdin.read()
""")


def _sigterm_default(pid: int) -> bool:
    """Whether the process no longer catches SIGTERM (its `SigCgt` mask in /proc)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(line for line in status if line.startswith("SigCgt:"))
    return not int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_on_sigterm_whatever_handler_their_parent_had():
    """multiprocessing ends daemon workers with SIGTERM when the parent exits (a server
    stopped with Ctrl-C): a worker that kept the parent's handler would hang that exit."""
    parent = subprocess.Popen([sys.executable, "-c", _SERVER_LIKE],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        deadline = time.monotonic() + 30
        while not all(_sigterm_default(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)  # a worker resets its handlers first thing: wait for that
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the event (the workers gone), up to the deadline
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        parent.kill()
        parent.wait()


# --- the rule: only the pool starts processes, pickles, or touches the collector ------------

_FORBIDDEN_MODULES = {"multiprocessing", "concurrent", "pickle", "_pickle", "copyreg", "gc"}
_FORBIDDEN_CALLS = {("sys", "setswitchinterval")}
_ALLOWED: dict[str, set[str]] = {"ledger/pool.py": {"*"}}  # file -> what it may use


def _uses(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in _FORBIDDEN_MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in _FORBIDDEN_MODULES:
                found.add(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "gc" or (func.value.id, func.attr) in _FORBIDDEN_CALLS:
                    found.add(f"{func.value.id}.{func.attr}()")
            elif isinstance(func, ast.Name) and func.id in {"__import__", "import_module"}:
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                found |= {str(a) for a in args if str(a).split(".")[0] in _FORBIDDEN_MODULES}
    return found


def test_only_the_pool_starts_processes_pickles_or_touches_the_collector():
    offenders = {}
    for folder in ("ledger", "verifier", "api"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if "*" in _ALLOWED.get(name, set()):
                continue
            uses = _uses(ast.parse(path.read_text(), name)) - _ALLOWED.get(name, set())
            if uses:
                offenders[name] = sorted(uses)
    assert offenders == {}


def test_the_rule_sees_what_it_forbids():
    source = ("import multiprocessing\nfrom concurrent.futures import Executor\nimport pickle\n"
              "import gc\ngc.collect(1)\nimport sys\nsys.setswitchinterval(0.001)\n")
    assert _uses(ast.parse(source)) == {"multiprocessing", "concurrent.futures", "pickle", "gc",
                                        "gc.collect()", "sys.setswitchinterval()"}
    assert os.path.exists(ROOT / "ledger" / "pool.py")
