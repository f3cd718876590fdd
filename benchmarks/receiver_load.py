"""The reconciler's receiver under load, with slow and abusive connections mixed in (loopback only,
bounded in count and time).

The receiver runs in a process of its own (``--serve``, started by this script): the real
``NotificationReceiver`` on waitress with its production ``ReceiverLimits``, a ``Controller`` on a
model stack (two sessions; stack operations cost nothing), and the reconciler's JSON log on
stderr.  The driver measures, from outside:

* ``--notifications`` (20,000) notifications posted by ``--senders`` (8) keep-alive connections:
  half signed with the NCS secret (snapshot events of the stack's sessions, RTC channel events,
  exits of tasks of other stacks; each with its own ``noticeId``), a quarter unsigned and a
  quarter signed with another secret.  Their answers are counted by status.
* ``/healthz``, on a new connection every 50 ms throughout: latency (the target: every answer
  within 100 ms).
* The server's resident memory and threads, sampled every 100 ms (``psutil``).
* Its log: every line must be one JSON object.

Two phases in one invocation: the **baseline** (the notifications alone), then the same
notifications with abusive clients running beside them for the whole phase: ``--slow`` (40)
connections trickling a header a second until the request deadline drops them, then opening
again; header floods (40 connections of 99 lines of 60 kB each, docs/reconcile.md, again and again),
clients that hang up with a reset before reading, requests with two ``Content-Length`` values,
bodies over the limit announced by their length, and idle keep-alive connections.  Abusive
connections open at once stay well under the connection limit (100), as the docs advise; what
happens beyond it is in docs/reconcile.md.

Run: ``.venv/bin/python benchmarks/receiver_load.py`` (about a minute; prints a table).  A small
bounded run is part of the suite (``tests/test_reconcile_receiver_limits.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

from snapshot_resources.events import sign_headers

SECRET: Final = "receiver-load-ncs-secret-5e1f"  # noqa: S105 - a test value
DEADLINE: Final = 300.0  # seconds: the whole run stops by then, whatever happens
HEALTHZ_TARGET_MS: Final = 100.0


# -- the server process ----------------------------------------------------------------------------


class _ModelStack:
    """Two deployed sessions; every stack operation is free (the load is on the receiver)."""

    stack = "load"
    project = "agora-snapshots"

    def export(self) -> Mapping[str, Any]:
        from snapshot_resources.reconcile.inventory import SESSION_TYPE, session_urn

        return {"deployment": {"resources": [
            {"type": "pulumi:pulumi:Stack"},
            *({"urn": session_urn("load", "agora-snapshots", name), "type": SESSION_TYPE,
               "outputs": {"sid": f"sid-{name}", "cname": name, "uid": "900001"}}
              for name in ("lobby", "stage"))]}}

    def refresh(self, urns: Sequence[str]) -> None:
        return None

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
        return None

    def forget(self, urns: Sequence[str]) -> None:
        return None


def serve(url_file: Path) -> int:
    """The receiver process: listens on a free loopback port, writes its URL to ``url_file``,
    serves until SIGTERM."""
    from snapshot_resources.commands.reconcile import _configure_logging
    from snapshot_resources.reconcile import Controller, ControllerSettings, NotificationReceiver

    _configure_logging("INFO", "json")
    controller = Controller(_ModelStack(), declared=lambda: frozenset({"lobby", "stage"}),
                            settings=ControllerSettings(interval=3600, batch_window=0.5))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with NotificationReceiver(controller, secret=SECRET) as receiver:
        worker = threading.Thread(target=controller.run, args=(stop,), name="reconcile")
        worker.start()
        url_file.write_text(receiver.url)
        stop.wait(DEADLINE)
        stop.set()
        controller.wake()
        worker.join()
    return 0


# -- the driver ------------------------------------------------------------------------------------


def notifications(count: int, phase: str) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` request bodies and headers (module docstring), each ``noticeId`` unique."""
    out = []
    now = int(time.time() * 1000)
    for i in range(count):
        kind = i % 4
        if i % 3 == 0:
            event: dict[str, Any] = {
                "noticeId": f"{phase}-{i}", "productId": 1, "eventType": 103 + i % 2,
                "notifyMs": now, "payload": {"channelName": "lobby", "uid": 3000 + i % 50,
                                             "clientSeq": i, "ts": now // 1000}}
        else:
            sid = ("sid-lobby", "sid-stage", f"elsewhere-{i % 97}")[i % 3]
            cname = "lobby" if sid == "sid-lobby" else "stage"
            event = {"noticeId": f"{phase}-{i}", "productId": 3, "eventType": 45,
                     "notifyMs": now, "payload": {
                         "cname": cname, "uid": "900001", "sid": sid, "sequence": i,
                         "sendts": now, "serviceType": 0,
                         "details": {"fileName": f"snaps/{sid}_{cname}__uid_s_2001__uid_e_video_"
                                                 f"{time.strftime('%Y%m%d%H%M%S')}000.jpg"}}}
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if kind in (0, 1):
            headers.update(sign_headers(body, SECRET))
        elif kind == 2:
            headers.update(sign_headers(body, "not-the-secret"))
        out.append((body, headers))
    return out


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    post_ms: list[float] = field(default_factory=list)
    healthz_ms: list[float] = field(default_factory=list)
    healthz_failures: int = 0
    rss: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    abusive: Counter[str] = field(default_factory=Counter)


def _send(address: tuple[str, int], work: Sequence[tuple[bytes, dict[str, str]]],
          phase: Phase, lock: threading.Lock, deadline: float) -> None:
    connection = http.client.HTTPConnection(*address, timeout=30)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for body, headers in work:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            connection.request("POST", "/ncs", body=body, headers=headers)
            answer = connection.getresponse()
            answer.read()
            statuses[answer.status] += 1
        except (OSError, http.client.HTTPException):
            statuses[0] += 1
            connection.close()
            connection = http.client.HTTPConnection(*address, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    with lock:
        phase.statuses.update(statuses)
        phase.post_ms += latencies


def _probe(address: tuple[str, int], phase: Phase, done: threading.Event) -> None:
    while not done.wait(0.05):
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection(*address, timeout=5)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            connection.close()
            if answer.status != 200:
                raise OSError(answer.status)
        except (OSError, http.client.HTTPException):
            phase.healthz_failures += 1
            continue
        phase.healthz_ms.append((time.perf_counter() - started) * 1000)


def _sample(pid: int, phase: Phase, done: threading.Event) -> None:
    process = psutil.Process(pid)
    while not done.wait(0.1):
        with contextlib.suppress(psutil.Error):
            phase.rss.append(process.memory_info().rss)
            phase.threads.append(process.num_threads())


def _abuse(address: tuple[str, int], phase: Phase, done: threading.Event, slow: int) -> None:
    """Abusive clients until ``done`` (module docstring), a bounded number open at once."""
    counts: Counter[str] = Counter()
    trickling: list[socket.socket] = []
    idle: list[socket.socket] = []
    flood = b"".join(b"X-Flood-%d: %s\r\n" % (i, b"f" * 60_000) for i in range(99))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_close_all, trickling, idle)
        for _ in range(10):  # idle keep-alive connections, dropped after the idle timeout
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(address, timeout=5))
                counts["idle"] += 1
        while not done.is_set():
            # Slow clients: keep `slow` open, each trickling one header line a second.
            trickling[:] = [s for s in trickling if _trickle(s)]
            while len(trickling) < slow:
                with contextlib.suppress(OSError):
                    sock = socket.create_connection(address, timeout=5)
                    sock.sendall(b"POST /ncs HTTP/1.1\r\nHost: x\r\n")
                    trickling.append(sock)
                    counts["slow"] += 1
            floods = [threading.Thread(target=_one_shot, args=(
                address, b"POST /ncs HTTP/1.1\r\nHost: x\r\n" + flood + b"\r\n"))
                for _ in range(40)]  # docs/reconcile.md: 40 at once, each 99 lines of 60 kB
            for thread in floods:
                thread.start()
            for thread in floods:
                thread.join()
            counts["header flood"] += len(floods)
            for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20,
                            b"POST /ncs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                            b"Content-Length: 30\r\n\r\nabcGET /metrics HTTP/1.1\r\n\r\n",
                            b"POST /ncs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
                for _ in range(5):
                    _hang_up(address, request)
                    counts["hang-up / malformed"] += 1
            done.wait(1.0)
    phase.abusive = counts


def _close_all(*groups: list[socket.socket]) -> None:
    for group in groups:
        for sock in group:
            sock.close()


def _trickle(sock: socket.socket) -> bool:
    try:
        sock.sendall(b"X-Slow: 1\r\n")
        return True
    except OSError:  # dropped at the request deadline: a new one takes its place
        sock.close()
        return False


def _one_shot(address: tuple[str, int], request: bytes) -> None:
    with contextlib.suppress(OSError), socket.create_connection(address, timeout=5) as sock:
        sock.sendall(request)
        sock.recv(1024)


def _hang_up(address: tuple[str, int], request: bytes) -> None:
    with contextlib.suppress(OSError):
        sock = socket.create_connection(address, timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(request)
        sock.close()


def run_phase(address: tuple[str, int], pid: int, name: str, *, count: int, senders: int,
              slow: int, abusive: bool, deadline: float) -> Phase:
    phase = Phase(name)
    work = notifications(count, name)
    done = threading.Event()
    lock = threading.Lock()
    helpers = [threading.Thread(target=_probe, args=(address, phase, done)),
               threading.Thread(target=_sample, args=(pid, phase, done))]
    if abusive:
        helpers.append(threading.Thread(target=_abuse, args=(address, phase, done, slow)))
    for helper in helpers:
        helper.start()
    time.sleep(1.0)  # the abusive clients settle in first
    started = time.perf_counter()
    threads = [threading.Thread(target=_send, args=(address, work[i::senders], phase, lock,
                                                    deadline)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    done.set()
    for helper in helpers:
        helper.join()
    return phase


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def server(log: Path) -> Iterator[tuple[tuple[str, int], int]]:
    url_file = log.with_suffix(".url")
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, __file__, "--serve", str(url_file)],
                                   stderr=stderr, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists() or not url_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        host, port = url_file.read_text().removeprefix("http://").rsplit(":", 1)
        yield (host, int(port)), process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(*, count: int, senders: int, slow: int, workdir: Path) -> dict[str, Any]:
    """Both phases against one receiver process; returns the figures (``report`` prints them)."""
    log = workdir / "receiver.log"
    deadline = time.monotonic() + DEADLINE
    with server(log) as (address, pid):
        phases = [run_phase(address, pid, "baseline", count=count, senders=senders, slow=slow,
                            abusive=False, deadline=deadline),
                  run_phase(address, pid, "abused", count=count, senders=senders, slow=slow,
                            abusive=True, deadline=deadline)]
    lines = log.read_text().splitlines()
    not_json = 0
    for line in lines:
        try:
            if not isinstance(json.loads(line), dict):
                not_json += 1
        except ValueError:
            not_json += 1
    return {"phases": phases, "log_lines": len(lines), "log_not_json": not_json,
            "tracebacks": sum("Traceback" in line for line in lines)}


def report(figures: Mapping[str, Any], count: int) -> None:
    phases: list[Phase] = figures["phases"]
    base = phases[0]
    print("| phase | notifications/s | POST p50 / p99 ms | /healthz p50 / p99 / max ms (n) | "
          "/healthz failed | RSS peak MiB | threads max | answers |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for phase in phases:
        rate = sum(phase.statuses.values()) / phase.seconds if phase.seconds else 0.0
        answers = ", ".join(f"{status or 'error'}: {n:,}" for status, n in
                            sorted(phase.statuses.items()))
        print(f"| {phase.name} | {rate:,.0f} ({rate / (sum(base.statuses.values()) / base.seconds):.2f}x) | "
              f"{_pct(phase.post_ms, 0.5):.2f} / {_pct(phase.post_ms, 0.99):.2f} | "
              f"{_pct(phase.healthz_ms, 0.5):.1f} / {_pct(phase.healthz_ms, 0.99):.1f} / "
              f"{max(phase.healthz_ms, default=float('nan')):.1f} ({len(phase.healthz_ms)}) | "
              f"{phase.healthz_failures} | {max(phase.rss, default=0) / 2**20:.1f} | "
              f"{max(phase.threads, default=0)} | {answers} |")
    abused = phases[-1]
    print("\nabusive clients in the second phase: "
          + ", ".join(f"{kind} {n:,}" for kind, n in sorted(abused.abusive.items())))
    print(f"log: {figures['log_lines']} lines, {figures['log_not_json']} not JSON, "
          f"{figures['tracebacks']} with a traceback")
    worst = max((max(p.healthz_ms, default=0.0) for p in phases), default=0.0)
    print(f"/healthz within {HEALTHZ_TARGET_MS:g} ms throughout: "
          f"{'met' if worst < HEALTHZ_TARGET_MS and not any(p.healthz_failures for p in phases) else 'NOT met'}"
          f" (max {worst:.1f} ms); {count:,} notifications per phase")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=Path, metavar="URL_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--slow", type=int, default=40)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)
    logging.basicConfig(level=logging.WARNING)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="receiver-load-") as tmp:
        began = time.perf_counter()
        figures = measure(count=args.notifications, senders=args.senders, slow=args.slow,
                          workdir=Path(tmp))
        print(f"## receiver load ({time.perf_counter() - began:.0f} s in all; "
              f"{os.cpu_count()} cores; {args.senders} senders, {args.slow} slow clients)\n")
        report(figures, args.notifications)
    print(f"\n.venv/bin/python benchmarks/receiver_load.py --notifications {args.notifications} "
          f"--senders {args.senders} --slow {args.slow}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
