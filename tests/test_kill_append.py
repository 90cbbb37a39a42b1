"""`event append` killed (SIGKILL) at random moments of a long append: no worker of its pool
outlives it by more than a second, and the ledger holds whole batches only (issue 18)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    extraction,
    signed_credential,
    standard_registry_docs,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

EVENTS = 3000
BATCH = 500
SURVIVAL_BOUND = 1.0  # seconds a worker may outlive its parent (the bound)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has died)."""
    return _state(pid) not in (None, "Z", "X")


def _children(parent: int) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == parent:
                found.add(int(name))
    return found


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A ledger home with the standard registry, and a JSON Lines file of 3,000 events."""
    root = tmp_path_factory.mktemp("kill")
    home = root / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/kill", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    led.close()
    events = root / "events.jsonl"
    with events.open("w") as out:
        for n in range(EVENTS):
            doc = signed_credential("miner", [extraction("kolwezi-mine", f"ore-k{n}", 10,
                                                         {"Co": 0.3})])
            out.write(json.dumps(doc) + "\n")
    return home, events


@pytest.mark.parametrize("round_", range(3))
def test_a_killed_append_leaves_no_worker_and_whole_batches(prepared, tmp_path, round_):
    import shutil

    source, events = prepared
    home = tmp_path / "home"
    shutil.copytree(source, home)
    before = Ledger.open(home)
    size = before.size
    before.close()
    parent = subprocess.Popen(
        [sys.executable, "-m", "batterytrace.api.cli", "--home", str(home), "event", "append",
         str(events), "--batch", str(BATCH)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        # Wait for the event "the pool's workers run" (the append is under way), then let it
        # run a random while more: the kill lands at a different moment each round.
        deadline = time.monotonic() + 60
        while not workers and parent.poll() is None and time.monotonic() < deadline:
            workers = _children(parent.pid)
            time.sleep(0.005)
        assert workers, "the append ended before its pool started"
        time.sleep(random.Random(round_).uniform(0.0, 1.5))
        workers |= _children(parent.pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    killed = time.monotonic()
    while any(_alive(pid) for pid in workers) and time.monotonic() - killed < 30:
        time.sleep(0.01)  # polling the event (every worker gone), up to a generous deadline
    gone_after = time.monotonic() - killed
    assert not [pid for pid in workers if _alive(pid)]
    assert gone_after <= SURVIVAL_BOUND, f"workers outlived their parent by {gone_after:.2f} s"
    # Whole batches only, and a ledger that verifies.
    summary, _ = verify_ledger(home)
    assert (summary.size - size) % BATCH == 0
