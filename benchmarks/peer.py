"""The peer: what a user writes without this product, to start and stop N snapshot sessions.

A plain concurrent script on ``requests`` (Agora's community Python client resolves Agora's real
domains, so it cannot be pointed at a loopback emulator): ``--threads`` threads share one token
bucket of ``--rate`` requests per second (under Agora's 10 per App ID, S10); each session is
acquire + start, then a query every 1 s until status 4 or 5; stopping is one stop per session,
without waiting for the task to leave. A 429 is retried after 1 s (at most ``RETRIES_429`` times)
and counted: a bucket that spaces requests as they are sent still lets Agora's window see more
than 10 when answers bunch (slow answers on a busy machine). This is the baseline ``benchmarks/deploy.py`` and
``benchmarks/engine.py`` run beside the product, against the same kind of emulator, so every
figure is a ratio measured side by side.

Run alone: ``.venv/bin/python benchmarks/peer.py --sessions 50`` (prints its own table).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests

from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator, snapshot_request

LATENCY_MS: Final = 100
THREADS: Final = 16
RATE: Final = 9.0  # one under Agora's 10 per App ID: a careful user leaves room (S10)
QUERY_EVERY: Final = 1.0
TIMEOUT: Final = 30.0
RETRIES_429: Final = 5


class _Bucket:
    """A shared rate limit: at most ``rate`` requests started per second."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self._gap
        time.sleep(max(0.0, at - now))


@dataclass
class PeerRun:
    """Seconds to start all sessions (ready) and to stop them all, and what Agora was sent."""

    create_seconds: float
    stop_seconds: float
    requests: int
    failures: int
    rate_limited: int = 0
    """429 answers the peer retried."""


def run_peer(emulator: EmulatorHandle, sessions: int, *, threads: int = THREADS,
             rate: float = RATE) -> PeerRun:
    """Start ``sessions`` snapshot sessions (one channel each) and stop them, as the peer does."""
    bucket = _Bucket(rate)
    base = f"{emulator.url}/v1/apps/{emulator.app_id}/cloud_recording"
    local = threading.local()
    sent = [0]
    limited = [0]
    count_lock = threading.Lock()

    def call(method: str, url: str, body: Any = None) -> dict[str, Any]:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.auth = emulator.auth
        for _ in range(RETRIES_429):
            bucket.take()
            with count_lock:
                sent[0] += 1
            answer = local.http.request(method, url, json=body, timeout=TIMEOUT,
                                        headers={"Content-Type": "application/json;charset=utf-8"})
            if answer.status_code != 429:
                break
            with count_lock:
                limited[0] += 1
            time.sleep(1.0)
        answer.raise_for_status()
        payload: dict[str, Any] = answer.json()
        return payload

    def start(index: int) -> tuple[str, str, str]:
        cname, uid = f"peer-{index:03d}", "527841"
        rid = call("POST", f"{base}/acquire", {"cname": cname, "uid": uid, "clientRequest": {}})[
            "resourceId"]
        request = snapshot_request(bucket="peer", vendor=2, region=3, max_idle_time=3600)
        sid = call("POST", f"{base}/resourceid/{rid}/mode/individual/start",
                   {"cname": cname, "uid": uid, "clientRequest": request})["sid"]
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(QUERY_EVERY)
            status = call("GET", f"{base}/resourceid/{rid}/sid/{sid}/mode/individual/query")[
                "serverResponse"]["status"]
            if status in (4, 5):
                break
        return cname, rid, sid

    def stop(task: tuple[str, str, str]) -> None:
        cname, rid, sid = task
        call("POST", f"{base}/resourceid/{rid}/sid/{sid}/mode/individual/stop",
             {"cname": cname, "uid": "527841", "clientRequest": {}})

    failures = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(_catching(start), range(sessions)))
    create_seconds = time.perf_counter() - started
    tasks = [o for o in outcomes if isinstance(o, tuple)]
    failures += len(outcomes) - len(tasks)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        stopped = list(pool.map(_catching(stop), tasks))
    stop_seconds = time.perf_counter() - started
    failures += sum(1 for o in stopped if isinstance(o, Exception))
    return PeerRun(create_seconds, stop_seconds, sent[0], failures, limited[0])


def _catching(step: Any) -> Any:
    def run(arg: Any) -> Any:
        try:
            return step(arg)
        except (requests.RequestException, KeyError) as exc:
            return exc

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args(argv)
    print("| sessions | peer create s | peer stop s | requests | failures | 429s retried |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sessions:
        with tempfile.TemporaryDirectory() as tmp, run_emulator(
            time_scale=1.0, latency_ms=LATENCY_MS, storage_dir=Path(tmp)
        ) as emulator:
            run = run_peer(emulator, n)
        print(f"| {n} | {run.create_seconds:.1f} | {run.stop_seconds:.1f} | {run.requests} "
              f"| {run.failures} | {run.rate_limited} |")
    print(f"reproduce: .venv/bin/python benchmarks/peer.py --sessions "
          f"{' '.join(str(n) for n in args.sessions)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
