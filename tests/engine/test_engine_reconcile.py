"""`snapshot-resources reconcile` under the real engine, the emulator on loopback posting signed
notifications to the reconciler's receiver, moto's S3 taking the snapshots.

The issue's acceptance points, one or more per test: an idle end restarts within 15 s of a
publisher's return and never loops on an empty channel; sessions are rotated before their tokens
expire with a capture gap under 10 s; a burst of 200 notifications makes at most 3 stack
operations, and bad, stale or repeated ones change nothing; a user's `pulumi up` during a
reconcile is waited for, never broken or undone; `kill -9` mid-run then a restart converges with
no orphaned or duplicated task; SIGTERM stops cleanly.  Figures are printed (`-s` shows them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml
from support.engine_stack import (
    APP_CERTIFICATE,
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    LOBBY_USER,
    NCS_SECRET,
    PROJECT,
    REPO,
    SESSION_TYPE,
    STAGE_USERS,
    TIME_SCALE,
    ExampleStack,
    Run,
    running_tasks,
)
from support.waiting import wait_for

from snapshot_resources.emulator.clock import ScaledClock
from snapshot_resources.events import sign_headers
from snapshot_resources.reconcile import (
    AutomationStackOps,
    Controller,
    ControllerSettings,
    NotificationReceiver,
    ReconcileMetrics,
)
from snapshot_resources.reconcile.inventory import declared_sessions
from snapshot_resources.testing.emulator import EmulatorHandle, S3Server, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

TOKEN_LIFETIME = 24 * 3600  # the provider builds 24-hour tokens from the App Certificate
STACK = "test"


@dataclass
class Reconciling:
    """A controller and its receiver, the emulator posting to it, and the stack."""

    example: ExampleStack
    controller: Controller
    receiver: NotificationReceiver
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def agora(self) -> EmulatorHandle:
        return self.example.agora

    @property
    def metrics(self) -> ReconcileMetrics:
        return self.controller.metrics

    def start(self) -> None:
        self._thread = threading.Thread(target=self.controller.run, args=(self._stop,),
                                        name="reconcile-test")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.controller.wake()
        if self._thread is not None:
            self._thread.join(timeout=300)
            assert not self._thread.is_alive(), "the controller did not stop"

    def restarts(self, cause: str) -> float:
        return self.metrics.value("snapshot_reconcile_restarts_total", cause=cause)

    def operations(self, operation: str, outcome: str = "ok") -> float:
        return self.metrics.value("snapshot_reconcile_engine_runs_total", operation=operation,
                                  outcome=outcome)

    def writes(self) -> float:
        """Stack operations that run the engine or write the state, whatever their outcome."""
        return self.metrics.engine_run_count("refresh", "up", "forget")

    def notifications(self, event: str) -> float:
        return sum(self.metrics.value("snapshot_reconcile_notifications_total",
                                      product="cloud_recording", event=event, outcome=outcome)
                   for outcome in ("accepted", "unmatched", "duplicate"))

    def settled(self) -> bool:
        status = self.controller.status()
        return not status["pending"] and not status["busy"] and status["failures"] == 0 \
            and status["lockWaits"] == 0


@pytest.fixture
def reconciling(
    offline: OfflinePulumi, s3: S3Server, tmp_path: Path
) -> Iterator[Callable[..., Reconciling]]:
    """Start the receiver, then the emulator posting to it, then the stack; on teardown stop the
    controller first, then destroy the stack, then stop the emulator and the receiver."""
    with contextlib.ExitStack() as stack:

        def start(*, clock: ScaledClock | None = None, time_scale: float = TIME_SCALE,
                  controller_clock: Callable[[], float] = time.time,
                  webhooks: bool = True, channel_events: bool = False,
                  exit_seconds: float = 6.0, token_lifetime: float | None = None,
                  **settings: Any) -> Reconciling:
            project_dir = offline.project(REPO)
            offline.stack(project_dir, STACK)  # created here, as `pulumi stack init` would
            ops = AutomationStackOps(offline.cli, project_dir, STACK, project=PROJECT,
                                     env=offline.env)
            options: dict[str, Any] = {"interval": 3600, "retry_delay": 0.5, **settings}
            controller = Controller(
                ops, declared=lambda: declared_sessions(project_dir, STACK),
                settings=ControllerSettings(**options), clock=controller_clock)
            # The emulator's clock, also for the receiver's replay window: emulated time may run
            # ahead of the wall clock, and so does every notifyMs (events.verify_signature).
            clock = clock or ScaledClock(time_scale)
            receiver = NotificationReceiver(controller, secret=NCS_SECRET, clock=clock.now)
            stack.enter_context(receiver)
            agora = stack.enter_context(run_emulator(
                time_scale=time_scale, clock=clock, storage_dir=tmp_path / "emulator",
                s3_endpoint=s3.endpoint_url, customer_id=CUSTOMER_ID,
                customer_secret=CUSTOMER_SECRET,
                webhook_url=f"{receiver.url}/ncs" if webhooks else None,
                webhook_secret=NCS_SECRET, channel_events=channel_events,
                exit_seconds=exit_seconds, token_lifetime=token_lifetime))
            example = ExampleStack(offline, agora, s3, STACK)
            running = Reconciling(example, controller, receiver)
            stack.callback(_destroy, example)
            stack.callback(running.stop)
            return running

        yield start


def _destroy(example: ExampleStack) -> None:
    if example.offline.resources(example.stack, SESSION_TYPE):
        example.agora.admin.clear_faults()
        example.destroy()


def snapshots(agora: EmulatorHandle, cname: str) -> list[tuple[str, float]]:
    """(sid, emulated Unix s) of every snapshot of channel ``cname`` the emulator uploaded
    (its 45 notifications), in order."""
    return [(e["payload"]["sid"], e["payload"]["sendts"] / 1000) for e in agora.admin.events()
            if e.get("productId") == 3 and e["eventType"] == 45
            and e["payload"]["cname"] == cname]


def starts(agora: EmulatorHandle, cname: str) -> int:
    """Tasks the emulator started on ``cname`` (running and gone)."""
    return len({t["sid"] for t in agora.admin.tasks() if t["cname"] == cname})


def report(line: str) -> None:
    print(f"\n[reconcile measured] {line}", flush=True)


# -- restart after token expiry, with a burst of notifications ---------------------------------


def test_a_burst_of_200_notifications_restarts_the_ended_sessions_in_at_most_3_runs(
    reconciling: Callable[..., Reconciling],
) -> None:
    # Emulated time runs at real speed, ahead by a day less token_left: each token the provider
    # builds (24 h, from the App Certificate) expires token_left s after it was built.  The
    # emulator posts nothing itself: the test delivers its notifications as one burst.
    token_left = 12.0
    clock = ScaledClock(1.0, start=time.time() + TOKEN_LIFETIME - token_left)
    run = reconciling(clock=clock, time_scale=1.0, exit_seconds=1.0, webhooks=False,
                      controller_clock=clock.now, rotate_before=0)
    example = run.example
    example.secrets["agora:appCertificate"] = APP_CERTIFICATE
    example.publish()
    example.apply()
    run.start()
    assert example.up().ok
    wait_for(run.settled, timeout=60)
    first = example.sids_in_state()
    wait_for(lambda: set(first.values()) <= {
        e["payload"]["sid"] for e in run.agora.admin.events() if e["eventType"] == 11},
        timeout=token_left + 30)
    before = run.writes()

    # 200 signed notifications for this stack: the two ended tasks' real ones (1 code 109, 41,
    # 11, and their snapshots), Agora's resends of them (same noticeId), the same events under
    # new noticeIds, channel events, and bad, stale and forged ones.
    exits = [e for e in run.agora.admin.events()
             if e.get("productId") == 3 and e["payload"]["sid"] in first.values()][:100]
    now_ms = int(clock.now() * 1000)
    bodies: list[tuple[bytes, str]] = []
    for event in exits:
        bodies.append((json.dumps(event).encode(), NCS_SECRET))
    while len(bodies) < 120:  # resends: the same noticeId
        bodies.append(bodies[len(bodies) % len(exits)])
    for i in range(40):  # the same events again under new noticeIds
        again = {**exits[i % len(exits)], "noticeId": f"again-{i}", "notifyMs": now_ms}
        bodies.append((json.dumps(again).encode(), NCS_SECRET))
    for i in range(20):  # someone joins and leaves a channel of another app
        channel = {"noticeId": f"ch-{i}", "productId": 1, "eventType": 103 + i % 2,
                   "notifyMs": now_ms, "payload": {"channelName": "elsewhere", "uid": 5000 + i,
                                                   "clientSeq": i, "ts": now_ms // 1000}}
        bodies.append((json.dumps(channel).encode(), NCS_SECRET))
    for i in range(20):  # forged, then stale
        forged = {**exits[-1], "noticeId": f"bad-{i}", "notifyMs": now_ms}
        if i % 2:
            forged["notifyMs"] = now_ms - 3_600_000
            bodies.append((json.dumps(forged).encode(), NCS_SECRET))
        else:
            bodies.append((json.dumps(forged).encode(), "not-the-ncs-secret"))
    assert len(bodies) == 200
    posted = time.monotonic()
    with requests.Session() as session:
        answers = [session.post(f"{run.receiver.url}/ncs", data=body, timeout=10,
                                headers={"Content-Type": "application/json",
                                         **sign_headers(body, secret)}).status_code
                   for body, secret in bodies]
    burst_seconds = time.monotonic() - posted

    wait_for(lambda: len(example.sids_in_state()) == 2
             and set(example.sids_in_state().values()).isdisjoint(first.values()), timeout=90)
    wait_for(run.settled, timeout=60)
    second = example.sids_in_state()
    wait_for(lambda: all(any(sid == second[n] for sid, _ in snapshots(
        run.agora, example.sessions[n]["cname"])) for n in second), timeout=60)
    restarted = time.monotonic() - posted
    time.sleep(2.0)  # anything still queued would run now
    writes = run.writes() - before

    assert answers.count(401) == 20
    assert answers.count(200) == 180
    assert writes <= 3, f"{writes:g} stack operations for one burst"
    assert run.operations("refresh") == 0  # known gone from the notifications: forgotten
    assert run.restarts("token_expired") == 2
    running = {t["sid"] for t in running_tasks(run.agora)}
    assert set(second.values()) <= running
    report(f"burst of 200 notifications (posted in {burst_seconds:.2f} s): {writes:g} stack "
           f"operations ({run.operations('forget'):g} state delete, "
           f"{run.operations('up'):g} up); both sessions' first new snapshots "
           f"{restarted:.1f} s after the burst began")


# -- idle end, no loop -------------------------------------------------------------------------


def test_an_idle_end_restarts_within_15_s_of_a_publishers_return_and_never_loops(
    reconciling: Callable[..., Reconciling],
) -> None:
    run = reconciling(channel_events=True)
    example = run.example
    example.sessions["lobby"]["recordingConfig"]["maxIdleTime"] = 30  # 1.5 s at TIME_SCALE 20
    for uid in STAGE_USERS:  # the stage has hosts: channel events reach the receiver
        run.agora.admin.join(example.sessions["stage"]["cname"], uid, video=True)
    run.agora.admin.join("lobby", LOBBY_USER, video=True)
    example.apply()
    run.start()
    assert example.up().ok
    wait_for(run.settled, timeout=60)
    first = example.sids_in_state()
    latencies: list[float] = []
    for _ in range(2):
        lobby = example.sids_in_state()["lobby"]
        started_before = starts(run.agora, "lobby")
        run.agora.admin.leave("lobby", LOBBY_USER)  # every user leaves: idle after maxIdleTime
        wait_for(lambda: run.controller.status()["held"] == ["lobby"], timeout=30)
        wait_for(run.settled, timeout=30)
        time.sleep(3.0)  # 60 emulated seconds, two idle timeouts: a loop would have started
        assert starts(run.agora, "lobby") == started_before  # no start into the empty channel
        assert "lobby" not in example.sids_in_state()  # forgotten while it waits

        known = {sid for sid, _ in snapshots(run.agora, "lobby")}
        assert lobby in known
        joined = time.monotonic()
        run.agora.admin.join("lobby", LOBBY_USER, video=True)  # a publisher returns

        def new_snapshot(known: set[str] = known) -> bool:
            return bool({sid for sid, _ in snapshots(run.agora, "lobby")} - known)

        wait_for(new_snapshot, timeout=60)
        latencies.append(time.monotonic() - joined)
        wait_for(run.settled, timeout=30)
        assert starts(run.agora, "lobby") == started_before + 1  # one start per return
    after = example.sids_in_state()
    assert after["stage"] == first["stage"]
    assert after["lobby"] in {t["sid"] for t in running_tasks(run.agora)}
    assert run.restarts("idle") == 2
    report("idle end: first snapshot of the new session "
           + ", ".join(f"{s:.1f} s" for s in latencies)
           + " (wall clock) after the publisher's join")
    assert max(latencies) < 15.0


# -- rotation ----------------------------------------------------------------------------------


def test_sessions_are_rotated_before_their_tokens_expire(
    reconciling: Callable[..., Reconciling],
) -> None:
    # The emulator runs 20x fast and ends every task `lifetime` emulated seconds after its start
    # (--token-lifetime): `lifetime / TIME_SCALE` wall seconds.  The provider writes
    # tokenExpiresAt = build time + 24 h, so the controller's clock runs a day less that ahead
    # of the wall clock: it sees each token end when the emulator ends it.
    lifetime_wall = 40.0
    rotate_before = 20.0
    run = reconciling(token_lifetime=lifetime_wall * TIME_SCALE,
                      controller_clock=lambda: time.time() + TOKEN_LIFETIME - lifetime_wall,
                      rotate_before=rotate_before)
    example = run.example
    example.secrets["agora:appCertificate"] = APP_CERTIFICATE
    example.publish()
    example.apply()
    run.start()
    assert example.up().ok
    first = example.sids_in_state()

    wait_for(lambda: run.metrics.value("snapshot_reconcile_rotations_total",
                                       cause="token") >= 2, timeout=lifetime_wall + 30)
    second = example.sids_in_state()
    assert set(second.values()).isdisjoint(first.values())
    gaps = {}
    for name, old in first.items():
        cname = example.sessions[name]["cname"]

        def landed(cname: str = cname, sid: str = second[name]) -> bool:
            return any(s == sid for s, _ in snapshots(run.agora, cname))

        wait_for(landed, timeout=30)
        taken = snapshots(run.agora, cname)
        last_old = max(t for sid, t in taken if sid == old)
        first_new = min(t for sid, t in taken if sid == second[name])
        gaps[name] = (first_new - last_old) / TIME_SCALE  # wall seconds
    counters = run.agora.admin.counters()
    expired = {e["payload"]["sid"] for e in run.agora.admin.events()
               if e["eventType"] == 1 and e["payload"]["details"].get("errorCode") == 109}
    assert expired.isdisjoint(first.values()), "a task reached its token's expiry"
    assert counters["tokenExpiries"] == 0
    assert run.metrics.value("snapshot_reconcile_rotations_total", cause="token") >= 2
    assert run.restarts("token_expired") == 0
    report("rotation gap (last snapshot of the old task -> first of the new, wall clock, "
           "emulator at 20x): " + ", ".join(f"{n} {g:.1f} s" for n, g in sorted(gaps.items())))
    assert max(gaps.values()) < 10.0


# -- a person's `pulumi up` --------------------------------------------------------------------


def test_a_persons_up_during_a_reconcile_is_waited_for_and_not_undone(
    reconciling: Callable[..., Reconciling], offline: OfflinePulumi,
) -> None:
    run = reconciling()
    example = run.example
    example.sessions["lobby"]["recordingConfig"]["maxIdleTime"] = 30  # 1.5 s at TIME_SCALE 20
    example.publish()
    example.apply()
    run.start()
    assert example.up().ok
    wait_for(run.settled, timeout=60)
    first = example.sids_in_state()

    # The person replaces the stage session; its stop takes 5 s at Agora, so their update holds
    # the stack's lock while the lobby session ends on idle.
    example.sessions["stage"]["snapshotConfig"]["captureInterval"] = 20
    example.apply()
    run.agora.admin.set_faults(rate=0.0, operations=["stop"], latency_ms=5000)
    result: list[Run] = []
    person = threading.Thread(target=lambda: result.append(example.up()))
    person.start()
    wait_for(lambda: any(offline.backend_dir.rglob("locks/**/*.json")), timeout=30)
    run.agora.admin.leave("lobby", LOBBY_USER)
    wait_for(lambda: first["lobby"] not in {t["sid"] for t in running_tasks(run.agora)},
             timeout=30)
    assert person.is_alive()  # the lobby session ended while the person's update ran
    run.agora.admin.join("lobby", LOBBY_USER, video=True)  # back before the restart
    person.join(timeout=120)
    run.agora.admin.clear_faults()

    [persons] = result
    assert persons.ok, persons.terminal
    wait_for(lambda: example.sids_in_state().get("lobby") not in (None, first["lobby"]),
             timeout=60)
    wait_for(run.settled, timeout=60)
    new = example.sids_in_state()
    assert run.operations("forget", "busy") + run.operations("export", "busy") \
        + run.operations("up", "busy") >= 1, "the reconciler never met the person's lock"
    assert new["stage"] == persons.outputs["sessions"]["stage"]["sid"] != first["stage"]
    stage_tasks = [t for t in running_tasks(run.agora) if t["cname"] == "main-stage"]
    assert [t["sid"] for t in stage_tasks] == [new["stage"]]
    assert stage_tasks[0]["captureInterval"] == 20  # the person's change stands
    assert run.restarts("idle") == 1
    assert sum(run.restarts(c) for c in ("stopped", "exited", "dropped", "missing")) == 0

    exits_before = run.notifications("11")
    destroyed = example.destroy()

    assert destroyed.ok, destroyed.terminal
    wait_for(lambda: run.notifications("11") >= exits_before + 2, timeout=30)
    run.controller.request_sweep()
    wait_for(lambda: run.controller.status()["deployed"] is False and run.settled(), timeout=60)
    assert example.sessions_in_state() == {}
    assert running_tasks(run.agora) == []


# -- a fresh process; kill -9; SIGTERM ----------------------------------------------------------


def test_reconcile_once_in_a_fresh_process_restarts_what_ended(
    example: ExampleStack, offline: OfflinePulumi, agora: EmulatorHandle
) -> None:
    # No notifications at all: what a fresh process (or one restarted after a crash) has is the
    # state, and Agora's answers to the refresh.
    for uid in STAGE_USERS:
        agora.admin.join(example.sessions["stage"]["cname"], uid, video=True)
    example.sessions["lobby"]["recordingConfig"]["maxIdleTime"] = 30
    example.apply()
    assert example.up().ok
    first = example.sids_in_state()
    wait_for(lambda: first["lobby"] not in {t["sid"] for t in running_tasks(agora)},
             timeout=30)
    # A publisher is back before the sweep: the restarted task has someone to record, so it is
    # still running when checked (in an empty channel it would end again after 1.5 s).
    agora.admin.join("lobby", LOBBY_USER, video=True)

    done = subprocess.run(
        [sys.executable, "-m", "snapshot_resources.cli", "reconcile", "--once", "--stack",
         example.stack.name, "--cwd", str(example.project_dir), "--log-level", "WARNING"],
        env={**os.environ, **offline.env}, capture_output=True, text=True, timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stack {example.stack.name}: 2 sessions in the state" in done.stdout
    after = example.sids_in_state()
    assert after["stage"] == first["stage"]
    assert after["lobby"] != first["lobby"]
    assert after["lobby"] in {t["sid"] for t in running_tasks(agora)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _descendants(pid: int) -> list[str]:
    """Command lines of the processes descending from ``pid``."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            found.append(" ".join(child.cmdline()))
    return found


def _running_up(pid: int) -> bool:
    """Whether a `pulumi up` started by the reconciler ``pid`` runs (in its worker)."""
    return any("pulumi" in cmd and " up " in f" {cmd} " for cmd in _descendants(pid))


@dataclass
class Reconciler:
    """`snapshot-resources reconcile` in a process of its own."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def health(self) -> Mapping[str, Any]:
        answer: Mapping[str, Any] = requests.get(f"{self.url}/healthz", timeout=5).json()
        return answer

    def converged(self, declared: set[str]) -> bool:
        try:
            status = self.health()
        except requests.RequestException:
            return False
        return (set(status["sessions"]) == declared and not status["pending"]
                and not status["busy"] and status["failures"] == 0
                and status["lockWaits"] == 0 and status["lastSweep"] is not None)

    def decisions(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def _converged_at_agora(example: ExampleStack, names: set[str]) -> None:
    """Every declared session is in the state once and runs at Agora once; nothing else runs."""
    sids = example.sids_in_state()
    assert set(sids) == names
    tasks = running_tasks(example.agora)
    per_channel: dict[tuple[str, str], int] = {}
    for task in tasks:
        key = (task["cname"], task["uid"])
        per_channel[key] = per_channel.get(key, 0) + 1
    assert all(count == 1 for count in per_channel.values()), per_channel  # no duplicate
    assert {t["sid"] for t in tasks} == set(sids.values())  # no orphan, none missing


def test_kill_9_mid_run_then_a_restart_converges_and_sigterm_stops_cleanly(
    example: ExampleStack, offline: OfflinePulumi, tmp_path: Path
) -> None:
    example.publish()
    foyer = {**example.sessions["lobby"], "cname": "foyer", "uid": "900003",
             "fileNamePrefix": ["foyer"]}
    example.agora.admin.join("foyer", "3001", video=True)
    example.apply()
    assert example.up().ok
    port = _free_port()
    env = {**os.environ, **offline.env, "AGORA_NCS_SECRET": NCS_SECRET}

    def reconciler(name: str, *extra: str) -> Reconciler:
        log = tmp_path / f"{name}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "snapshot_resources.cli", "reconcile", "--stack",
                 example.stack.name, "--cwd", str(example.project_dir),
                 "--listen", f"127.0.0.1:{port}", *extra],
                env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        process.stdout.close()  # nothing more is printed there
        assert line.startswith("listening on http://127.0.0.1:"), log.read_text()
        return Reconciler(process, line.split()[-1], log)

    # A session added to the stack file: the reconciler's first sweep creates it.  It is
    # killed while that `pulumi up` runs.
    example.sessions["foyer"] = foyer
    example.apply()
    first = reconciler("first")
    try:
        wait_for(lambda: _running_up(first.process.pid), timeout=120)
        first.process.kill()
        assert first.process.wait(10) == -signal.SIGKILL
    finally:
        if first.process.poll() is None:
            first.process.kill()
            first.process.wait(10)

    second = reconciler("second")
    try:
        wait_for(lambda: second.converged({"lobby", "stage", "foyer"}), timeout=180)
        _converged_at_agora(example, {"lobby", "stage", "foyer"})

        def sweeps() -> int:
            return sum(d.get("what") == "sweep" for d in second.decisions())

        before = sweeps()
        second.process.send_signal(signal.SIGHUP)  # `systemctl reload`: a sweep now
        wait_for(lambda: sweeps() == before + 1, timeout=120)
        assert any(d.get("what") == "sweep_requested" for d in second.decisions())
        second.process.send_signal(signal.SIGTERM)  # idle: stops at once
        assert second.process.wait(30) == 0
    finally:
        if second.process.poll() is None:
            second.process.kill()
            second.process.wait(10)
    assert "reconcile stopped" in second.log.read_text()

    # SIGTERM during a `pulumi up`, with no time to finish: the CLI is interrupted, cancels
    # gracefully and releases the lock; the state stays usable and the next run converges.
    example.sessions["annex"] = {**foyer, "cname": "annex", "uid": "900004",
                                 "fileNamePrefix": ["annex"]}
    example.agora.admin.join("annex", "4001", video=True)
    example.apply()
    third = reconciler("third", "--stop-timeout", "0")
    try:
        wait_for(lambda: _running_up(third.process.pid), timeout=120)
        third.process.send_signal(signal.SIGTERM)
        assert third.process.wait(120) == 0
    finally:
        if third.process.poll() is None:
            third.process.kill()
            third.process.wait(10)
    stops = [d for d in third.decisions() if d.get("what") == "stop"]
    assert len(stops) == 2, stops  # asked to stop, then interrupted the run
    assert not any(offline.backend_dir.rglob("locks/**/*.json")), "a lock was left behind"
    fourth = reconciler("fourth")
    try:
        wait_for(lambda: fourth.converged({"lobby", "stage", "foyer", "annex"}), timeout=180)
        _converged_at_agora(example, {"lobby", "stage", "foyer", "annex"})
    finally:
        fourth.process.send_signal(signal.SIGTERM)
        assert fourth.process.wait(60) == 0
    assert all(isinstance(d.get("what"), str) and d.get("why") for d in fourth.decisions()
               if "what" in d)
    plain = yaml.safe_dump(example.sessions_in_state())
    assert NCS_SECRET not in plain + "".join(r.log.read_text()
                                              for r in (first, second, third, fourth))
