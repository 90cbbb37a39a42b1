"""Writes in order behind one writer thread: what `POST /events` (and checkpoint signing) use.

The database serializes writers anyway (one locked sequencer row, SQLite's one writer lock).
A request that appended by itself would hold a pooled connection (and a worker thread) while
it waited for that lock: a few dozen concurrent appends exhausted the pool and reads starved
behind them. Here a request hands its submissions to a bounded queue and awaits a future; the
one writer thread of the app takes the jobs in arrival order and answers each future. A
waiting request holds no connection and no thread, so reads never wait for writes.

- The queue holds at most `max_waiting` jobs; one more is refused at once with
  `WriteQueueFullError` (HTTP 503 with `Retry-After`, nothing appended).
- Appends found waiting together are written as ONE ledger batch (at most `max_group`
  documents): one transaction instead of one each. Should the combined batch fail for any
  reason, nothing of it was written (a batch is atomic) and each request is appended alone,
  in order, so each still gets exactly its own answer or error, as if appended by itself.
- A job whose request went away (client disconnected) before the writer reached it is
  skipped: nothing is appended for it.
- `run(fn)` runs any other write (checkpoint signing) in the same order, on the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from batterytrace.credentials.errors import InputError

if TYPE_CHECKING:
    from batterytrace.ledger.log import Ledger

T = TypeVar("T")
log = logging.getLogger("batterytrace.api")

DEFAULT_MAX_WAITING = 256
DEFAULT_MAX_GROUP = 1000
RETRY_AFTER_SECONDS = 1


class WriteQueueFullError(InputError):
    """Too many writes are already waiting: retry after `Retry-After` seconds."""

    code = "WRITE_QUEUE_FULL"
    title = "Too many writes waiting"
    http_status = 503


class WriterStoppedError(InputError):
    """The service is shutting down and takes no more writes."""

    code = "SERVICE_STOPPING"
    title = "Service is shutting down"
    http_status = 503


@dataclass
class _Job:
    """One request's write: `submissions` to append, or `fn` to run; answered on `future`."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    submissions: Sequence[Any] | None = None
    fn: Callable[[], Any] | None = None
    settled: bool = field(default=False)
    counted: bool = False  # counted against `max_waiting` (requests; not internal jobs)

    def wanted(self) -> bool:
        return not self.future.cancelled()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.settled:
            return
        self.settled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(_resolve, self.future, result, error)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled: the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_STOP = object()


class WriteQueue:
    """The one writer of an app: `append` and `run` from the event loop, in arrival order."""

    def __init__(self, ledger: Ledger, *, max_waiting: int = DEFAULT_MAX_WAITING,
                 max_group: int = DEFAULT_MAX_GROUP) -> None:
        if max_waiting < 1 or max_group < 1:
            raise ValueError("max_waiting and max_group must be at least 1")
        self.ledger = ledger
        self.max_waiting = max_waiting
        self.max_group = max_group
        # Unbounded itself: the bound is `max_waiting`, counted on submission of the bounded
        # jobs (internal jobs, `run(..., bounded=False)`, are never refused nor counted: a
        # checkpoint queued behind the requests takes no request's place).
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._waiting = 0
        # Writes done (ledger calls returned, failed or not), counted before their caller is
        # answered: the read cache (api/read_cache.py) re-reads the log when it moved.
        self.writes = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="batterytrace-writer",
                                        daemon=True)
        self._thread.start()

    # --- the event loop's side ----------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Requests (bounded jobs) queued and not yet taken by the writer."""
        return self._waiting

    async def append(self, submissions: Sequence[Any]) -> list[Any]:
        """`Ledger.append(submissions)` on the writer thread (one atomic batch): its
        AppendResults, or its error raised here."""
        return await self._submit(_Job(asyncio.get_running_loop(),
                                       asyncio.get_running_loop().create_future(),
                                       submissions=list(submissions)), bounded=True)

    async def run(self, fn: Callable[[], T], *, bounded: bool = True) -> T:
        """`fn()` on the writer thread, after every write queued before it."""
        loop = asyncio.get_running_loop()
        result: T = await self._submit(_Job(loop, loop.create_future(), fn=fn), bounded)
        return result

    async def _submit(self, job: _Job, bounded: bool) -> Any:
        with self._lock:
            if self._closed:
                raise WriterStoppedError("the service is shutting down: retry shortly")
            if bounded and self._waiting >= self.max_waiting:
                raise WriteQueueFullError(
                    f"{self._waiting} writes are waiting (at most {self.max_waiting}): "
                    f"retry in {RETRY_AFTER_SECONDS} s", retry_after=RETRY_AFTER_SECONDS)
            if bounded:
                job.counted = True
                self._waiting += 1
            self._jobs.put(job)
        return await job.future

    def close(self, timeout: float | None = 30.0) -> None:
        """Take no more jobs, finish those queued, stop the thread (blocks up to `timeout`)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(_STOP)
        self._thread.join(timeout)

    # --- the writer thread --------------------------------------------------------------------

    def _take(self, block: bool) -> Any:
        item = self._jobs.get(block=block)
        if item is not _STOP and item.counted:
            with self._lock:
                self._waiting -= 1
        return item

    def _work(self) -> None:
        carry: Any = None
        while True:
            item = carry if carry is not None else self._take(block=True)
            carry = None
            if item is _STOP:
                return
            if item.fn is not None:
                self._run(item)
                continue
            group = [item]
            size = len(item.submissions)
            while size < self.max_group:  # every append already waiting joins this batch
                try:
                    nxt = self._take(block=False)
                except queue.Empty:
                    break
                if nxt is _STOP or nxt.fn is not None or (
                        size + len(nxt.submissions) > self.max_group):
                    carry = nxt  # written after this group, in order
                    break
                group.append(nxt)
                size += len(nxt.submissions)
            self._append(group)

    def _run(self, job: _Job) -> None:
        if not job.wanted():
            return
        assert job.fn is not None
        try:
            result = job.fn()
        except Exception as error:  # answered to the awaiting request, never lost
            self.writes += 1
            job.settle(error=error)
        else:
            self.writes += 1
            job.settle(result)

    def _append(self, group: list[_Job]) -> None:
        group = [job for job in group if job.wanted()]
        if len(group) > 1:
            try:
                results = self.ledger.append(
                    [sub for job in group for sub in job.submissions or ()])
            except Exception:  # nothing of the batch was written: each alone, below
                pass
            else:
                self.writes += 1
                start = 0
                for job in group:
                    count = len(job.submissions or ())
                    job.settle(results[start:start + count])
                    start += count
                return
        for job in group:
            if not job.wanted():
                continue
            try:
                results = self.ledger.append(job.submissions)
            except Exception as error:  # answered to the awaiting request
                self.writes += 1
                job.settle(error=error)
            else:
                self.writes += 1
                job.settle(results)

