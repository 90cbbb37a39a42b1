"""Process-wide settings changed around bulk work (the collector, the GIL switch interval):
restored on every exit, main thread only."""

import gc
import sys
import threading

import pytest
from batterytrace.ledger.collector import automatic_collection_paused


def test_paused_inside_and_restored_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), automatic_collection_paused():
        assert not gc.isenabled()
        with automatic_collection_paused():  # nested: still paused, and not re-enabled early
            pass
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_other_threads_leave_the_collector_alone():
    seen = []

    def work():
        with automatic_collection_paused():
            seen.append(gc.isenabled())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [True] and gc.isenabled()


def test_an_append_leaves_the_collector_enabled(tmp_path):
    from batterytrace.ledger.errors import EntryFormatError
    from batterytrace.ledger.log import Ledger, Submission

    led = Ledger.init(tmp_path / "h", None, "example.org/log")
    led.append([Submission("event", {"n": 1})])
    with pytest.raises(EntryFormatError):
        led.append([Submission("event", ["not", "an", "object"])])
    assert gc.isenabled()
    led.close()


def test_quick_thread_switches_is_restored_and_main_thread_only():
    from batterytrace.ledger.switch_interval import quick_thread_switches

    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), quick_thread_switches(0.0005):
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == before
    seen = []

    def work():
        with quick_thread_switches(0.0005):
            seen.append(sys.getswitchinterval())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before]
