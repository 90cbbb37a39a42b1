"""A small HTTP/1.1 load generator for bench/bench_http_reads.py, run in its own process.

`python -m bench.http_client [--realtime] steady|saturated PORT SECONDS PATH [PATH...]`
prints JSON. `--realtime` runs it at the lowest real-time priority where permitted (the
bench's isolated run: see bench/bench_http_reads.py).

One thread, non-blocking sockets and epoll; CLIENTS keep-alive connections with TCP_NODELAY.
Every response's arrival is the kernel's receive timestamp of its last bytes (SO_TIMESTAMPNS,
taken when loopback delivered them), so the time this process takes to get round to reading
a socket never counts as the server's. For each request the client records four instants:
- `due`: when the schedule says it is sent (steady) or when it could be sent (saturated);
- `sent`: when it was written to its socket (a late client shows as `sent - due`; taken
  just before the write, so a pause of the client between the two counts as the server's);
- `arrived`: the kernel's timestamp of the answer's last bytes;
- `read`: when this process read them (`read - arrived` is the client's own lag).
Latency is `arrived - due`: from the scheduled time, so a late send counts against the
server, never hidden (no coordinated omission), and the same for every path.

steady (open loop): RATE requests per second in all on a fixed schedule; request i is due at
start + i / RATE, goes out on connection i % CLIENTS (one request every CLIENTS / RATE seconds
per connection) and asks for PATHS[i % len(PATHS)], so several paths interleave through the
same moments of the host. A connection still waiting for its previous answer sends when that
answer is in (its latency still counts from `due`). The wait for the next due time is
epoll's (millisecond steps) then a precise sleep for the rest, never a busy loop.

saturated (closed loop): each connection sends its next request as soon as its answer is
read, PATHS[0] only; requests per second and the same per-request instants.

The server's `Server-Timing` header (`batterytrace serve --server-timing`), when present, is
recorded per request too: `app` (time in the application), `gc` (collector time meanwhile).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import socket
import struct
import sys
import time

CLIENTS = 50
RATE = 200.0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


class _Connection:
    __slots__ = ("buffer", "busy", "index", "port", "slot", "sock")

    def __init__(self, port: int, slot: int) -> None:
        self.slot = slot
        self.port = port
        self.connect()

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.buffer = b""
        self.index = -1  # the request in flight, -1 when idle
        self.busy = False


def _now() -> int:
    return time.time_ns()  # the clock of the kernel's SO_TIMESTAMPNS (CLOCK_REALTIME)


def _complete(buffer: bytes) -> tuple[int, int, bytes] | None:
    """(status, bytes used, head) when `buffer` holds a whole response, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    used = end + 4 + length
    if len(buffer) < used:
        return None
    return int(head[9:12]), used, head


def _server_timing(head: bytes) -> tuple[float, float]:
    """(app ms, gc ms) from a Server-Timing header; (-1, -1) without one."""
    app_ms = gc_ms = -1.0
    for line in head.split(b"\r\n")[1:]:
        if line[:14].lower() == b"server-timing:":
            for metric in line[14:].decode().split(","):
                name, _, params = metric.strip().partition(";")
                for param in params.split(";"):
                    key, _, value = param.strip().partition("=")
                    if key == "dur":
                        if name == "app":
                            app_ms = float(value)
                        elif name == "gc":
                            gc_ms = float(value)
    return app_ms, gc_ms


def run(mode: str, port: int, seconds: float, paths: list[str]) -> dict[str, object]:
    """The load (module docstring); per-request records as parallel lists (ns, ms)."""
    requests = [f"GET {p} HTTP/1.1\r\nHost: bench\r\n\r\n".encode() for p in paths]
    connections = [_Connection(port, slot) for slot in range(CLIENTS)]
    by_fd = {c.sock.fileno(): c for c in connections}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    steady = mode == "steady"
    total = int(seconds * RATE) if steady else 0
    interval_ns = int(1e9 / RATE)
    due: list[int] = []
    sent: list[int] = []
    arrived: list[int] = []
    read: list[int] = []
    status: list[int] = []
    path: list[int] = []
    app_ms: list[float] = []
    gc_ms: list[float] = []
    waiting: list[list[int]] = [[] for _ in connections]  # due requests behind a busy one
    gc.collect()
    gc.freeze()
    gc.disable()  # a few thousand small records: nothing for the collector to find
    start = _now() + 50_000_000
    end = start + int(seconds * 1e9)

    def send(conn: _Connection, index: int) -> None:
        conn.index = index
        conn.busy = True
        sent[index] = _now()  # just before: a pause of this process after it counts
        conn.sock.send(requests[path[index]])  # against the server, never for it

    def new_request(when: int, which: int) -> int:
        due.append(when)
        path.append(which)
        for column in (sent, arrived, read, status):
            column.append(0)
        app_ms.append(-1.0)
        gc_ms.append(-1.0)
        return len(due) - 1

    if not steady:
        for conn in connections:
            send(conn, new_request(_now(), 0))
    scheduled = 0
    outstanding = len(connections) if not steady else 0
    while True:
        now = _now()
        if steady:
            while scheduled < total and start + scheduled * interval_ns <= now:
                index = new_request(start + scheduled * interval_ns, scheduled % len(paths))
                slot = scheduled % CLIENTS
                conn = connections[slot]
                scheduled += 1
                outstanding += 1
                if conn.busy:
                    waiting[slot].append(index)
                else:
                    send(conn, index)
            if scheduled >= total and outstanding == 0:
                break
            wait_ns = (start + scheduled * interval_ns - now) if scheduled < total else 10**9
        else:
            if now >= end and outstanding == 0:
                break
            wait_ns = 10**9
        timeout = max(0.0, (wait_ns // 1_000_000) / 1000)  # epoll's whole milliseconds
        events = poller.poll(timeout)
        if not events and steady and scheduled < total:
            rest = start + scheduled * interval_ns - _now()
            if rest > 0:
                time.sleep(rest / 1e9)  # the sub-millisecond rest, precisely
            continue
        for fd, _ in events:
            conn = by_fd[fd]
            try:
                data, ancillary, _, _ = conn.sock.recvmsg(65536, _ANCILLARY)
            except BlockingIOError:
                continue
            if not data:
                if conn.busy:
                    raise RuntimeError("the server closed a connection with a request on it")
                # An idle connection past the server's keep-alive timeout: a new one.
                poller.unregister(fd)
                conn.sock.close()
                del by_fd[fd]
                conn.connect()
                by_fd[conn.sock.fileno()] = conn
                poller.register(conn.sock.fileno(), select.EPOLLIN)
                continue
            stamp = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds_part, nanos = _TIMESPEC.unpack(payload[:_TIMESPEC.size])
                    stamp = seconds_part * 1_000_000_000 + nanos
            conn.buffer += data
            done = _complete(conn.buffer)
            if done is None:
                continue
            code, used, head = done
            conn.buffer = conn.buffer[used:]
            index = conn.index
            read[index] = _now()
            arrived[index] = stamp or read[index]
            status[index] = code
            app_ms[index], gc_ms[index] = _server_timing(head)
            conn.busy = False
            outstanding -= 1
            queue = waiting[conn.slot] if steady else None
            if queue:
                send(conn, queue.pop(0))
            elif not steady and read[index] < end:
                send(conn, new_request(read[index], 0))
                outstanding += 1
    for conn in connections:
        conn.sock.close()
    gc.enable()
    return {"paths": paths, "due": due, "sent": sent, "arrived": arrived, "read": read,
            "status": status, "path": path, "app_ms": app_ms, "gc_ms": gc_ms}


def realtime(pid: int) -> bool:
    """Give every thread of process `pid` (0: this one) the lowest real-time priority
    (SCHED_FIFO 1): it runs as soon as it is woken, ahead of every ordinary process. False
    where that is not permitted (no CAP_SYS_NICE) or not Linux."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid or os.getpid()}/task")]
        for tid in tids:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    return True


def ordinary(pid: int) -> None:
    """Every thread of process `pid` back to the ordinary policy (after `realtime`)."""
    with contextlib.suppress(AttributeError, OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))


def main(argv: list[str]) -> int:
    """`[--realtime] steady|saturated PORT SECONDS PATH...`: the run's records as JSON, with
    `realtime` saying whether this process had the real-time priority it asked for."""
    asked = argv[:1] == ["--realtime"]
    mode, port, seconds, *paths = argv[1:] if asked else argv
    granted = realtime(0) if asked else False
    json.dump({**run(mode, int(port), float(seconds), paths), "realtime": granted},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
