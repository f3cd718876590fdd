"""Deploy and destroy N sessions through the real provider host, against the lower bound.

N ``SnapshotSession`` resources are created, then deleted, through ``ProviderHost`` (the SDK's own
``python -m pulumi.dynamic`` server, widened by ``provider_process`` from 4 RPCs at a time to
``DEFAULT_WORKERS``) against the emulator with
100 ms latency on every REST call and Agora's default rate limit (10 requests/s per App ID).
Creates and deletes are sent from ``--threads`` threads at once (default 4 x CPUs, as the engine
sends up to 4 * GOMAXPROCS step RPCs).  Target: each phase within 1.2x of its lower bound
(README, "Performance")::

    bound = max(calls / rate, sessions x per-session latency / W)

where W, the sessions in flight at once, is the client threads (at most the provider's workers).

``calls`` are the REST requests the emulator itself counted during the phase (its
``/_emulator/counters``, per operation); ``rate`` is Agora's documented 10/s.  The per-session
latency is the intrinsic one, what a single session cannot go below whatever the provider does:

* create = acquire + start + the confirming query (3 calls x 100 ms) + the emulator's readiness
  wait (``READY_SECONDS`` = 2 emulated s until status 4, S4/S10);
* delete = stop (100 ms): delete does not wait for the task to leave the channel (only a
  replacement needs that, and its create rides out the 53 instead).

The overall bound is the sum of the two phase bounds (a destroy starts after the deploy ends).
The column "waves bound" is ``ceil(N / W) x per-session latency``: what W in flight can do when
every session takes exactly the intrinsic latency.

Time scale.  The emulator runs at ``--time-scale 1`` (Agora's own pace): the 100 ms latency and
the 10/s limit are real-time quantities, so compressing emulated time would shrink the readiness
wait against them and turn a latency-bound deploy into a rate-bound one.  The provider runs with
its default settings unless ``--poll-interval`` is given (``agora:pollInterval``: the longest wait
between readiness queries; the first query goes when the task is expected to be ready).

Method: ``--rounds`` rounds for each N; figures are medians over rounds (calls too), the ratio is
the median of the per-round ratios.  Each round starts a fresh emulator and provider host, so the
provider's rate-limit budget starts full, as in a fresh ``pulumi up``.  Every session uses its own
channel.  ``maxIdleTime`` is 3600 s so no task idles out mid-run.  A round with any failed RPC, a
429 answer or a task left running is reported and counted as failed.

Run: ``.venv/bin/python benchmarks/deploy.py`` (prints the exact command with its options).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from snapshot_resources import rules
from snapshot_resources.emulator.models import EXIT_SECONDS, READY_SECONDS
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.provider_process import DEFAULT_WORKERS
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.provider_host import (
    HostedResource,
    ProviderError,
    ProviderHost,
    secret,
)

TARGET_RATIO: Final = 1.2
LATENCY_MS: Final = 100
# Calls the provider serves at once: the SDK's 4, widened by provider_process (the engine's
# --parallel is the limit); a round's own limit is its client threads.
WORKERS: Final = DEFAULT_WORKERS
RATE: Final = float(rules.QPS_PER_APP_ID)
OPERATIONS: Final = ("acquire", "start", "query", "stop")


def session_inputs(app_id: str, index: int) -> dict[str, Any]:
    """A valid session on its own channel, storage keys secret as a program sends them."""
    return {
        "appId": app_id,
        "cname": f"bench-{index:03d}",
        "uid": "527841",
        "resourceExpiredHour": 720,
        "recordingConfig": {
            "channelType": 1,
            "streamTypes": 2,
            "maxIdleTime": 3600,
            "subscribeVideoUids": ["#allstream#"],
            "subscribeUidGroup": 0,
        },
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storage": secret({
            "vendor": 2,
            "region": 3,
            "bucket": "snaps",
            "accessKey": "bench-access-key",
            "secretKey": "bench-secret-key",
            "fileNamePrefix": ["bench", f"s{index:03d}"],
        }),
    }


@dataclass(frozen=True)
class Phase:
    """One phase (create or delete) of one round."""

    name: str
    sessions: int
    seconds: float
    calls: Mapping[str, int]
    per_session: float  # intrinsic latency of one session, seconds
    durations: tuple[float, ...]  # each RPC's wall time, seconds
    errors: tuple[str, ...] = ()
    workers: int = WORKERS  # sessions in flight at once: min(client threads, provider workers)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def rate_bound(self) -> float:
        return self.total_calls / RATE

    @property
    def latency_bound(self) -> float:
        return self.sessions * self.per_session / self.workers

    @property
    def waves_bound(self) -> float:
        return math.ceil(self.sessions / self.workers) * self.per_session

    @property
    def bound(self) -> float:
        return max(self.rate_bound, self.latency_bound)

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound


@dataclass
class Round:
    sessions: int
    phases: list[Phase] = field(default_factory=list)
    rate_limited: int = 0
    left_running: int = 0

    @property
    def ok(self) -> bool:
        return (
            not any(p.errors for p in self.phases)
            and self.rate_limited == 0
            and self.left_running == 0
        )


def _requests(emulator: EmulatorHandle) -> dict[str, int]:
    counters = emulator.admin.counters()
    return {str(k): int(v) for k, v in counters["requests"].items()}


def _run_phase(
    name: str,
    sessions: int,
    per_session: float,
    emulator: EmulatorHandle,
    resources: Sequence[HostedResource],
    step: Callable[[HostedResource], object],
    threads: int,
) -> Phase:
    def timed(resource: HostedResource) -> tuple[float, str | None]:
        started = time.perf_counter()
        try:
            step(resource)
        except ProviderError as error:
            return time.perf_counter() - started, f"{resource.urn}: {error.last_line}"
        return time.perf_counter() - started, None

    before = _requests(emulator)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(timed, resources))
    seconds = time.perf_counter() - started
    after = _requests(emulator)
    calls = {op: after.get(op, 0) - before.get(op, 0) for op in sorted(after)}
    return Phase(
        name,
        sessions,
        seconds,
        {op: n for op, n in calls.items() if n},
        per_session,
        tuple(d for d, _ in results),
        tuple(e for _, e in results if e is not None),
        min(threads, WORKERS),
    )


def run_round(
    sessions: int, *, time_scale: float, poll_interval: float | None, threads: int, repo: Path,
    max_tasks: int = rules.MAX_CONCURRENT_TASKS,
) -> Round:
    latency = LATENCY_MS / 1000
    create_latency = 3 * latency + READY_SECONDS / time_scale
    delete_latency = latency  # stop; delete does not wait for the exit (EXIT_SECONDS)
    result = Round(sessions)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp, run_emulator(
        time_scale=time_scale, latency_ms=LATENCY_MS, storage_dir=Path(tmp),
        max_tasks=max(max_tasks, sessions)
    ) as emulator, ProviderHost(cwd=repo, task_journal=Path(tmp) / "task-journal.sqlite3") as host:
        host.configure(
            {
                "agora:customerId": emulator.customer_id,
                "agora:customerSecret": emulator.customer_secret,
                "agora:endpoint": emulator.url,
                **({} if poll_interval is None else {"agora:pollInterval": f"{poll_interval:g}"}),
            },
            secret_keys=("agora:customerSecret",),
        )
        provider = SnapshotSessionProvider()
        resources = [host.resource(provider, name=f"session-{i:03d}") for i in range(sessions)]
        for i, resource in enumerate(resources):  # Check is offline: outside the timings
            checked = resource.check(session_inputs(emulator.app_id, i))
            if checked.failures:
                raise SystemExit(f"benchmark inputs fail Check: {checked.failures}")
        create = _run_phase("create", sessions, create_latency, emulator, resources,
                            lambda r: r.create(), threads)
        result.phases.append(create)
        created = [r for r in resources if r.id is not None]
        delete = _run_phase("delete", len(created), delete_latency, emulator, created,
                            lambda r: r.delete(), threads)
        result.phases.append(delete)
        counters = emulator.admin.counters()
        result.rate_limited = int(counters["rateLimited"])
        # Stopped tasks may still be leaving the channel (delete does not wait): count only the
        # ones never stopped.
        result.left_running = sum(1 for t in emulator.admin.tasks()
                                  if t.get("state") in ("running", "failover"))
    return result


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(rounds_by_n: Mapping[int, Sequence[Round]]) -> str:
    lines = [
        "| sessions | phase | measured s | calls (acq/start/query/stop) | calls/rate s "
        "| N x lat / 4 s | bound s | waves bound s | ratio | target |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for n, rounds in rounds_by_n.items():
        names = [p.name for p in rounds[0].phases]
        for name in [*names, "overall"]:
            if name == "overall":
                seconds = [sum(p.seconds for p in r.phases) for r in rounds]
                bounds = [sum(p.bound for p in r.phases) for r in rounds]
                rate_b = [sum(p.rate_bound for p in r.phases) for r in rounds]
                lat_b = [sum(p.latency_bound for p in r.phases) for r in rounds]
                waves = [sum(p.waves_bound for p in r.phases) for r in rounds]
                calls = {op: _median([sum(p.calls.get(op, 0) for p in r.phases) for r in rounds])
                         for op in OPERATIONS}
            else:
                phases = [next(p for p in r.phases if p.name == name) for r in rounds]
                seconds = [p.seconds for p in phases]
                bounds = [p.bound for p in phases]
                rate_b = [p.rate_bound for p in phases]
                lat_b = [p.latency_bound for p in phases]
                waves = [p.waves_bound for p in phases]
                calls = {op: _median([p.calls.get(op, 0) for p in phases]) for op in OPERATIONS}
            ratio = _median([s / b for s, b in zip(seconds, bounds, strict=True)])
            verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
            shown = "/".join(f"{calls[op]:g}" for op in OPERATIONS)
            lines.append(
                f"| {n} | {name} | {_median(seconds):.2f} | {shown} | {_median(rate_b):.2f} "
                f"| {_median(lat_b):.2f} | {_median(bounds):.2f} | {_median(waves):.2f} "
                f"| {ratio:.2f}x | <= {TARGET_RATIO}x: {verdict} |"
            )
    return "\n".join(lines)


def timings(rounds_by_n: Mapping[int, Sequence[Round]]) -> str:
    """Where the time goes: the phase time per wave of W sessions (W in flight at once: the
    client threads, at most the provider's workers; the service time of one session when all take
    equally long) against the intrinsic latency; the rest of a ratio is the waves' rounding,
    ``ceil(N / W) / (N / W)``."""
    lines = [
        "| sessions | phase | intrinsic s | phase / waves s | excess per session | waves rounding "
        "| RPC median s (incl. waiting for a worker) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n, rounds in rounds_by_n.items():
        for name in [p.name for p in rounds[0].phases]:
            phases = [next(p for p in r.phases if p.name == name) for r in rounds]
            samples = [d for p in phases for d in p.durations]
            workers = phases[0].workers
            per_wave = _median([p.seconds / math.ceil(p.sessions / workers) for p in phases])
            intrinsic = phases[0].per_session
            rounding = math.ceil(n / workers) / (n / workers)
            lines.append(
                f"| {n} | {name} | {intrinsic:.2f} | {per_wave:.2f} "
                f"| {per_wave / intrinsic - 1:+.0%} | {rounding:.2f}x | {_median(samples):.2f} |"
            )
    return "\n".join(lines)


def _poll(poll_interval: float | None) -> str:
    return "the provider's default" if poll_interval is None else f"{poll_interval:g} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per N; figures are medians")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="emulated seconds per real second (see the docstring)")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="agora:pollInterval, seconds (default: the provider's default)")
    parser.add_argument("--threads", type=int, default=4 * (os.cpu_count() or 1),
                        help="concurrent RPCs sent to the host (engine: 4 x GOMAXPROCS)")
    args = parser.parse_args(argv)

    repo = Path(__file__).resolve().parents[1]
    load_before = os.getloadavg()
    started = time.perf_counter()
    rounds_by_n: dict[int, list[Round]] = {}
    for n in args.sessions:
        for _ in range(args.rounds):
            rounds_by_n.setdefault(n, []).append(run_round(
                n, time_scale=args.time_scale, poll_interval=args.poll_interval,
                threads=args.threads, repo=repo))
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    print(f"## deploy: N sessions created then deleted through ProviderHost "
          f"({args.rounds} rounds per N, {elapsed:.0f}s)\n")
    print(f"emulator: latency {LATENCY_MS} ms, qps {rules.QPS_PER_APP_ID}/s, time scale "
          f"{args.time_scale:g} (ready after {READY_SECONDS / args.time_scale:g} s, gone "
          f"{EXIT_SECONDS / args.time_scale:g} s after stop); provider: pollInterval "
          f"{_poll(args.poll_interval)}; {args.threads} client threads, {WORKERS} provider workers; "
          f"the emulator's task limit raised to N where N > {rules.MAX_CONCURRENT_TASKS}\n")
    print(table(rounds_by_n))
    print()
    print("Per session, where a latency-bound phase spends its time (when calls / rate is the "
          "bound, the excess is the wait for the rate limiter instead):\n")
    print(timings(rounds_by_n))
    print()
    for n, rounds in rounds_by_n.items():
        for i, r in enumerate(rounds):
            if not r.ok:
                errors = [e for p in r.phases for e in p.errors]
                print(f"round {i + 1} of N={n} FAILED: {len(errors)} RPC errors, "
                      f"{r.rate_limited} answers 429, {r.left_running} tasks left running")
                for error in errors[:5]:
                    print(f"  {error}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; python {platform.python_version()}, "
          f"pulumi {metadata.version('pulumi')}, grpcio {metadata.version('grpcio')}")
    sessions = " ".join(str(n) for n in args.sessions)
    poll = "" if args.poll_interval is None else f" --poll-interval {args.poll_interval:g}"
    print(f"reproduce: .venv/bin/python benchmarks/deploy.py --sessions {sessions} "
          f"--rounds {args.rounds} --time-scale {args.time_scale:g}{poll} --threads {args.threads}")
    return 0 if all(r.ok for rs in rounds_by_n.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
