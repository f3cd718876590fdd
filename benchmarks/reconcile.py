"""`snapshot-resources reconcile`: how long a declared session stays down when it ends on its own.

Everything runs under the real engine (``OfflinePulumi``: this repository's project, a ``file://``
backend), the emulator on loopback posting signed notifications to the reconciler's receiver.
Each figure is set beside a baseline measured in the same invocation.

**Idle end** (``--idle-rounds``, default 3).  The emulator runs ``--time-scale`` (20) times fast
and posts RTC channel events; one session, ``maxIdleTime`` 30 s (emulated).  Each round: the only
publisher leaves, the task ends on idle (the reconciler holds the session: nothing starts in the
empty channel), the publisher joins again.  ``restart`` is, in wall-clock seconds, from that join
to the first snapshot of the new task (its NCS 45, the emulator's record).  Baseline: the same
from the start of the first ``pulumi up`` to that task's first snapshot (a person deploying the
session by hand at the moment the publisher returns, with no wait to notice).  Also counted:
tasks started into the empty channel (must be 0) and starts per return (must be 1).

**Rotation** (``--rotations``, default 2 sessions).  The emulator ends every task
``--token-lifetime`` wall seconds after its start (``token_lifetime``, as a token expiry), and the
controller's clock runs ahead so that it sees the provider's 24-hour ``tokenExpiresAt`` at that
moment; ``--rotate-before`` (20 s) is the margin.  ``gap`` is, per session, from the last snapshot
of the old task to the first of the new one, wall clock.  Baseline: the capture interval itself
(the gap between two snapshots of one task), so ``gap / interval`` 1.0 means no capture lost.

**Token expiry without rotation** (``--sessions``, default 1).  Emulated time at real speed, ahead
of the wall clock by a day less 20 s: every token ends 20 s after it is built and the emulator ends
the task (NCS 1 code 109, 41, 11).  Driven by notifications (the reconciler running) versus one
sweep (``reconcile --once``, what the scheduled ``pulumi refresh`` + ``pulumi up`` workflow does)
after every task has exited: ``down`` is from the old task's ``session_exit`` to its successor's
start.  The sweep's refresh waits out ``agora:failoverGrace`` (``--failover-grace``, 90 s, the
provider's default) for each ended session (docs/engine.md item 8); the wait for the schedule to
fire comes on top and is not measured.

**Receiver throughput.**  ``--notifications`` (2,000) signed notifications, each with its own
``noticeId``, posted one after the other on one keep-alive connection: notifications per second
and the latency of one POST (verify both signatures and the replay window, parse, deduplicate,
queue).

Run: ``.venv/bin/python benchmarks/reconcile.py`` (it prints the command that reproduces it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import requests
from pulumi import automation as auto

from snapshot_resources import engine
from snapshot_resources.emulator.clock import ScaledClock
from snapshot_resources.emulator.defaults import DEFAULT_CUSTOMER_ID, DEFAULT_CUSTOMER_SECRET
from snapshot_resources.events import build_event, sign_headers
from snapshot_resources.reconcile import (
    AutomationStackOps,
    Controller,
    ControllerSettings,
    NotificationReceiver,
)
from snapshot_resources.reconcile.inventory import declared_sessions
from snapshot_resources.session import SESSION_TYPE
from snapshot_resources.spec import PROJECT
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

REPO: Final = Path(__file__).resolve().parents[1]
STACK: Final = "bench"
NCS_SECRET: Final = "bench-ncs-secret"  # noqa: S105 - a local test value
APP_CERTIFICATE: Final = "c0ffee00d15ea5e5ba5eba11deadbeef"
TOKEN_LIFETIME: Final = 24 * 3600  # what the provider builds from the App Certificate
PUBLISHER: Final = "1001"
STORAGE_SECRETS: Final = {
    f"{PROJECT}:storage.main.accessKey": "bench-access-key",
    f"{PROJECT}:storage.main.secretKey": "bench-secret-key",
}


def stack_config(url: str, app_id: str, sessions: int, *, failover_grace: float,
                 capture_interval: int = 60, max_idle_time: int = 3600) -> dict[str, Any]:
    """N sessions ``s000``..., each on its own channel ``bench-000``..., bring-your-own storage
    (the emulator writes vendor 2 uploads to its storage directory)."""
    return {
        "agora:appId": app_id,
        "agora:endpoint": url,
        "agora:pollInterval": "0.2",
        "agora:failoverGrace": f"{failover_grace:g}",
        "agora:exitTimeout": "10",
        f"{PROJECT}:storage": {"main": {
            "vendor": "alibaba", "region": "cn-hangzhou", "bucket": "bench-snapshots",
            "fileNamePrefix": ["bench"]}},
        f"{PROJECT}:sessions": {
            f"s{i:03d}": {
                "cname": channel(i), "uid": "527841", "storage": "main",
                "fileNamePrefix": [f"s{i:03d}"],
                "recordingConfig": {"channelType": 1, "maxIdleTime": max_idle_time,
                                    "subscribeVideoUids": ["#allstream#"]},
                "snapshotConfig": {"captureInterval": capture_interval},
            } for i in range(sessions)
        },
    }


def channel(index: int) -> str:
    return f"bench-{index:03d}"


@dataclass
class Bench:
    """A deployed-or-not stack, the emulator and a running reconciler."""

    offline: OfflinePulumi
    stack: auto.Stack
    emulator: EmulatorHandle
    controller: Controller
    receiver: NotificationReceiver

    def sids(self) -> dict[str, str]:
        return {r["urn"].rsplit("::", 1)[1]: r["outputs"]["sid"]
                for r in self.offline.resources(self.stack, SESSION_TYPE)}

    def snapshots(self, cname: str) -> list[tuple[str, float]]:
        """(sid, emulated Unix s) of each snapshot the emulator uploaded for ``cname``."""
        return [(e["payload"]["sid"], e["payload"]["sendts"] / 1000)
                for e in self.emulator.admin.events()
                if e.get("productId") == 3 and e["eventType"] == 45
                and e["payload"]["cname"] == cname]

    def starts(self, cname: str) -> int:
        return len({t["sid"] for t in self.emulator.admin.tasks() if t["cname"] == cname})

    def settled(self) -> bool:
        status = self.controller.status()
        return not status["pending"] and not status["busy"] and not status["failures"]


@contextlib.contextmanager
def bench(cli: engine.PulumiCli, *, clock: ScaledClock, sessions: int, failover_grace: float,
          controller_clock: Callable[[], float] = time.time, notifications: bool = True,
          run_controller: bool = True, capture_interval: int = 60, max_idle_time: int = 3600,
          **emulator: Any) -> Iterator[Bench]:
    """Receiver, emulator (posting to it), stack file and controller; the controller thread runs
    when ``run_controller``.  On exit: controller stopped, stack destroyed."""
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        root = Path(tmp)
        # The stack copies its environment when made: the emulator's (default) credentials now.
        env = {"AGORA_APP_CERTIFICATE": APP_CERTIFICATE, "AGORA_CUSTOMER_ID": DEFAULT_CUSTOMER_ID,
               "AGORA_CUSTOMER_SECRET": DEFAULT_CUSTOMER_SECRET}
        with OfflinePulumi(cli, root=root / "pulumi", env=env) as offline:
            project = offline.project(REPO)
            stack = offline.stack(project, STACK)
            ops = AutomationStackOps(cli, project, STACK, project=PROJECT, env=offline.env)
            controller = Controller(
                ops, declared=lambda: declared_sessions(project, STACK), clock=controller_clock,
                settings=ControllerSettings(**{"interval": 86400, "retry_delay": 0.5,
                                               **emulator.pop("settings", {})}))
            with NotificationReceiver(controller, secret=NCS_SECRET, clock=clock.now) as receiver, \
                    run_emulator(clock=clock, time_scale=clock.time_scale,
                                 storage_dir=root / "storage",
                                 webhook_url=f"{receiver.url}/ncs" if notifications else None,
                                 webhook_secret=NCS_SECRET, **emulator) as agora:
                offline.write_config(stack, stack_config(
                    agora.url, agora.app_id, sessions, failover_grace=failover_grace,
                    capture_interval=capture_interval, max_idle_time=max_idle_time),
                    STORAGE_SECRETS)
                for i in range(sessions):
                    agora.admin.join(channel(i), PUBLISHER, video=True)
                stop = threading.Event()
                worker = threading.Thread(target=controller.run, args=(stop,))
                if run_controller:
                    worker.start()
                try:
                    yield Bench(offline, stack, agora, controller, receiver)
                finally:
                    stop.set()
                    controller.wake()
                    if worker.is_alive():
                        worker.join()
                    if offline.resources(stack, SESSION_TYPE):
                        stack.destroy(color="never")


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _first_new_snapshot(run: Bench, cname: str, known: set[str], timeout: float) -> float:
    """Wait for a snapshot of a task not in ``known``; returns the wall-clock second it was seen."""
    _wait(lambda: bool({sid for sid, _ in run.snapshots(cname)} - known), timeout,
          f"a snapshot of a new task on {cname}")
    return time.monotonic()


# -- idle end -----------------------------------------------------------------------------------


@dataclass
class Idle:
    baseline: float  # pulumi up started -> first snapshot, wall s
    restarts: list[float]  # publisher's join -> first snapshot of the new task, wall s
    empty_starts: int  # tasks started while the channel was empty
    starts_per_return: list[int]


def idle_round(cli: engine.PulumiCli, rounds: int, *, time_scale: float) -> Idle:
    clock = ScaledClock(time_scale)
    cname = channel(0)
    with bench(cli, clock=clock, sessions=1, failover_grace=3, channel_events=True,
               max_idle_time=30, exit_seconds=6.0) as run:
        began = time.monotonic()
        run.stack.up(color="never")
        baseline = _first_new_snapshot(run, cname, set(), 60) - began
        _wait(run.settled, 60, "the first sweep")
        restarts, empty_starts, per_return = [], 0, []
        for _ in range(rounds):
            before = run.starts(cname)
            run.emulator.admin.leave(cname, PUBLISHER)
            _wait(lambda: run.controller.status()["held"] == ["s000"], 60, "the idle end")
            _wait(run.settled, 60, "the hold")
            time.sleep(3 * 30 / time_scale)  # three idle timeouts: a loop would start tasks
            empty_starts += run.starts(cname) - before
            known = {sid for sid, _ in run.snapshots(cname)}
            joined = time.monotonic()
            run.emulator.admin.join(cname, PUBLISHER, video=True)
            restarts.append(_first_new_snapshot(run, cname, known, 60) - joined)
            _wait(run.settled, 60, "the restart")
            per_return.append(run.starts(cname) - before)
    return Idle(baseline, restarts, empty_starts, per_return)


# -- rotation -----------------------------------------------------------------------------------


@dataclass
class Rotations:
    gaps: list[float]  # last snapshot of the old task -> first of the new, wall s
    interval: float  # the capture interval, wall s
    expired: int  # tasks that reached their token's end


def rotation_round(cli: engine.PulumiCli, sessions: int, *, time_scale: float,
                   lifetime: float, rotate_before: float) -> Rotations:
    clock = ScaledClock(time_scale)
    capture_interval = 60
    with bench(cli, clock=clock, sessions=sessions, failover_grace=3,
               token_lifetime=lifetime * time_scale, exit_seconds=6.0,
               capture_interval=capture_interval,
               controller_clock=lambda: time.time() + TOKEN_LIFETIME - lifetime,
               settings={"rotate_before": rotate_before}) as run:
        run.stack.up(color="never")
        first = run.sids()
        _wait(lambda: set(run.sids().values()).isdisjoint(first.values())
              and len(run.sids()) == sessions, lifetime + 60, "the rotations")
        second = run.sids()
        gaps = []
        for name, old in first.items():
            cname = channel(int(name[1:]))
            _first_new_snapshot(run, cname, {old}, 60)
            taken = run.snapshots(cname)
            last_old = max(t for sid, t in taken if sid == old)
            first_new = min(t for sid, t in taken if sid == second[name])
            gaps.append((first_new - last_old) / time_scale)
        expired = run.emulator.admin.counters()["tokenExpiries"]
    return Rotations(gaps, capture_interval / time_scale, expired)


# -- token expiry: notifications versus a sweep -------------------------------------------------


@dataclass
class Restarts:
    gaps: list[float]
    restart_seconds: float  # mean of the controller's metric
    operations: dict[str, int]


def _exits(emulator: EmulatorHandle) -> dict[str, float]:
    """sid -> emulated Unix seconds of its session_exit."""
    return {e["payload"]["sid"]: e["payload"]["sendts"] / 1000 for e in emulator.admin.events()
            if e.get("productId") == 3 and e["eventType"] == 11}


def _started(emulator: EmulatorHandle) -> dict[str, float]:
    """sid -> emulated Unix seconds of its start."""
    return {t["sid"]: t["startedAtMs"] / 1000 for t in emulator.admin.tasks()
            if "startedAtMs" in t}


def expiry_round(cli: engine.PulumiCli, sessions: int, *, token_left: float,
                 failover_grace: float, notifications: bool) -> Restarts:
    clock = ScaledClock(1.0, start=time.time() + TOKEN_LIFETIME - token_left)
    with bench(cli, clock=clock, sessions=sessions, failover_grace=failover_grace,
               notifications=notifications, run_controller=notifications, exit_seconds=1.0,
               controller_clock=clock.now, settings={"rotate_before": 0}) as run:
        run.stack.up(color="never")
        first = run.sids()
        _wait(lambda: set(first.values()) <= set(_exits(run.emulator)), token_left + 60,
              "the tokens to expire")
        if not notifications and not run.controller.sweep_once():
            raise SystemExit(f"sweep failed: {run.controller.status()['lastError']}")
        _wait(lambda: len(run.sids()) == sessions
              and set(run.sids().values()).isdisjoint(first.values()) and run.settled(),
              600, "the restarts")
        second = run.sids()
        exits, starts = _exits(run.emulator), _started(run.emulator)
        gaps = [starts[second[name]] - exits[sid] for name, sid in first.items()]
        value = run.controller.metrics.value
        causes = ("token_expired", "dropped")
        count = sum(value("snapshot_reconcile_restart_seconds_count", cause=c) for c in causes)
        total = sum(value("snapshot_reconcile_restart_seconds_sum", cause=c) for c in causes)
        operations = {op: int(value("snapshot_reconcile_engine_runs_total", operation=op,
                                    outcome="ok")) for op in ("refresh", "forget", "up")}
    return Restarts(gaps, total / count if count else float("nan"), operations)


# -- receiver -------------------------------------------------------------------------------------


class _Null:
    """A stack the receiver benchmark never operates on."""

    stack = STACK
    project = PROJECT

    def export(self) -> Mapping[str, Any]:
        return {}

    def refresh(self, urns: Sequence[str]) -> None:
        return None

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
        return None

    def forget(self, urns: Sequence[str]) -> None:
        return None


def receiver_round(count: int) -> dict[str, float]:
    controller = Controller(_Null(), declared=frozenset)
    bodies = []
    now_ms = int(time.time() * 1000)
    for i in range(count):
        event = build_event(45, {"cname": "bench", "uid": "527841", "sid": f"sid{i % 50}",
                                 "sequence": i, "sendts": now_ms, "serviceType": 1,
                                 "details": {"fileName": f"bench/x{i}.jpg"}},
                            notice_id=f"notice-{i:06d}", notify_ms=now_ms)
        body = json.dumps(event).encode()
        bodies.append((body, {"Content-Type": "application/json",
                              **sign_headers(body, NCS_SECRET)}))
    latencies = []
    with NotificationReceiver(controller, secret=NCS_SECRET) as receiver, \
            requests.Session() as session:
        url = f"{receiver.url}/ncs"
        started = time.perf_counter()
        for body, headers in bodies:
            one = time.perf_counter()
            answer = session.post(url, data=body, headers=headers, timeout=10)
            latencies.append(time.perf_counter() - one)
            if answer.status_code != 200:
                raise SystemExit(f"receiver answered {answer.status_code}")
        seconds = time.perf_counter() - started
    taken = controller.metrics.value("snapshot_reconcile_notifications_total",
                                     product="cloud_recording", event="45", outcome="unmatched")
    if taken != count:
        raise SystemExit(f"the controller got {taken:g} of {count} notifications")
    latencies.sort()
    return {"rate": count / seconds, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


# -- main -----------------------------------------------------------------------------------------


def _list(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle-rounds", type=int, default=3)
    parser.add_argument("--rotations", type=int, default=2, metavar="SESSIONS")
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--token-lifetime", type=float, default=40.0, metavar="SECONDS")
    parser.add_argument("--rotate-before", type=float, default=20.0, metavar="SECONDS")
    parser.add_argument("--sessions", type=int, nargs="*", default=[1])
    parser.add_argument("--token-left", type=float, default=20.0)
    parser.add_argument("--failover-grace", type=float, default=90.0)
    parser.add_argument("--notifications", type=int, default=2000)
    args = parser.parse_args(argv)
    # The decisions are the figures' cause, not the figures: keep the table readable.
    logging.getLogger("snapshot_resources.reconcile").setLevel(logging.ERROR)
    cli = engine.find_cli(REPO)
    if cli is None:
        print(engine.cli_missing_message(), file=sys.stderr)
        return 2
    began = time.perf_counter()
    idle = idle_round(cli, args.idle_rounds, time_scale=args.time_scale) \
        if args.idle_rounds else None
    rotation = rotation_round(cli, args.rotations, time_scale=args.time_scale,
                              lifetime=args.token_lifetime, rotate_before=args.rotate_before) \
        if args.rotations else None
    rows = []
    for sessions in args.sessions:
        for notifications in (True, False):
            run = expiry_round(cli, sessions, token_left=args.token_left,
                               failover_grace=args.failover_grace, notifications=notifications)
            ops = run.operations
            rows.append(
                f"| {sessions} | {'notifications' if notifications else 'one sweep (--once)'} "
                f"| {statistics.median(run.gaps):.1f} / {max(run.gaps):.1f} "
                f"| {run.restart_seconds:.1f} | {ops['refresh']} / {ops['forget']} / {ops['up']} |")
    receiver = receiver_round(args.notifications)
    print(f"## reconcile ({time.perf_counter() - began:.0f} s in all)\n")
    if idle is not None:
        mean = statistics.mean(idle.restarts)
        print(f"idle end, emulator {args.time_scale:g}x, {args.idle_rounds} rounds "
              "(wall clock s):\n")
        print("| measure | s | vs baseline |")
        print("|---|---:|---:|")
        print(f"| baseline: `pulumi up` started -> first snapshot | {idle.baseline:.1f} | 1.00 |")
        print(f"| publisher's join -> first snapshot of the restarted session "
              f"({_list(idle.restarts)}) | {mean:.1f} (max {max(idle.restarts):.1f}) "
              f"| {mean / idle.baseline:.2f} |")
        print(f"\ntasks started into the empty channel: {idle.empty_starts}; starts per "
              f"publisher return: {', '.join(map(str, idle.starts_per_return))}\n")
    if rotation is not None:
        mean = statistics.mean(rotation.gaps)
        print(f"rotation, emulator {args.time_scale:g}x, tokens ending "
              f"{args.token_lifetime:g} s (wall) after the start, --rotate-before "
              f"{args.rotate_before:g}:\n")
        print("| measure | s | vs baseline |")
        print("|---|---:|---:|")
        print(f"| baseline: capture interval | {rotation.interval:.1f} | 1.00 |")
        print(f"| last snapshot of the old task -> first of the new ({_list(rotation.gaps)}) "
              f"| {mean:.1f} (max {max(rotation.gaps):.1f}) "
              f"| {mean / rotation.interval:.2f} |")
        print(f"\ntasks that reached their token's end: {rotation.expired}\n")
    if rows:
        print(f"token expiry with rotation off, emulator at real speed, tokens ending "
              f"{args.token_left:g} s after they are built, agora:failoverGrace "
              f"{args.failover_grace:g} s:\n")
        print("| sessions | driven by | down s: exit -> successor's start, median / max "
              "| restart metric mean s | refresh / state delete / up |")
        print("|---:|---|---:|---:|---|")
        print("\n".join(rows))
        print()
    print(f"receiver: {args.notifications} signed notifications on one keep-alive connection: "
          f"{receiver['rate']:.0f}/s, POST p50 {receiver['p50']:.2f} ms, "
          f"p99 {receiver['p99']:.2f} ms\n")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f}; python "
          f"{platform.python_version()}, pulumi CLI {cli.version}, prometheus-client "
          f"{metadata.version('prometheus-client')}")
    sessions_arg = " ".join(str(n) for n in args.sessions)
    print(f"reproduce: .venv/bin/python benchmarks/reconcile.py --idle-rounds {args.idle_rounds} "
          f"--rotations {args.rotations} --time-scale {args.time_scale:g} "
          f"--token-lifetime {args.token_lifetime:g} --rotate-before {args.rotate_before:g} "
          f"--sessions {sessions_arg} --token-left {args.token_left:g} "
          f"--failover-grace {args.failover_grace:g} --notifications {args.notifications}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
