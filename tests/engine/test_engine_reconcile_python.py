"""`snapshot-resources reconcile` on a project that declares its sessions in Python only (issue 24).

The program (written below into the project) makes three sessions in code, none in the stack
file: ``lobby``, ``a::b`` (a name with ``::``) and ``hall`` (a child of a component, so its URN
carries the parent's type).  A session ended out of band is restarted by ``reconcile --once`` in
a fresh process (with the stack named fully qualified, ``organization/<project>/<stack>``) and by
the running reconciler; a validly signed exit notification for a task that still runs is checked
with Agora and changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from support.engine_stack import (
    BUCKET,
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    PROJECT,
    SESSION_TYPE,
    TIME_SCALE,
    running_tasks,
)
from support.waiting import wait_for

from snapshot_resources.emulator.clock import ScaledClock
from snapshot_resources.events import RecordingEvent, build_event, sign_headers
from snapshot_resources.reconcile import (
    AutomationStackOps,
    Controller,
    ControllerSettings,
    NotificationReceiver,
)
from snapshot_resources.reconcile.confirm import AgoraTaskQuery
from snapshot_resources.reconcile.declared import ProgramSessions
from snapshot_resources.reconcile.inventory import urn_name
from snapshot_resources.storage.policies import aws_upload_policy
from snapshot_resources.testing.emulator import EmulatorHandle, S3Server, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

NCS_SECRET = "python-program-ncs-secret-0b9e"
STACK = "pyprog"
CHANNELS = {"lobby": ("lobby", "900001", "2001"), "a::b": ("ab-room", "900005", "2005"),
            "hall": ("hall", "900006", "2006")}  # session -> (cname, recorder uid, publisher)

PROGRAM = '''\
"""Sessions declared in Python only: none in the stack file."""
import pulumi

from snapshot_resources import SnapshotSession, SnapshotSessionArgs, bring_your_own

config = pulumi.Config()
bucket = bring_your_own("main", vendor="aws", region="us-east-1", bucket=config.require("bucket"),
                        access_key=config.require_secret("accessKey"),
                        secret_key=config.require_secret("secretKey"),
                        file_name_prefix=["snapshots"])


def session(name, cname, uid, opts=None):
    return SnapshotSession(name, SnapshotSessionArgs(
        cname=cname, uid=uid, storage=bucket.target,
        recording_config={"channelType": 1, "maxIdleTime": 30,
                          "subscribeVideoUids": ["#allstream#"]},
        snapshot_config={"captureInterval": 5}), opts=opts)


class Hall(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("acme:venue:Hall", name)
        session("hall", "hall", "900006", pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


session("lobby", "lobby", "900001")
session("a::b", "ab-room", "900005")
Hall("venue")
'''


@pytest.fixture
def project(offline: OfflinePulumi, s3: S3Server) -> tuple[Path, Any]:
    """The Python-only project and its stack, and an upload key for its bucket."""
    project_dir = offline.projects_dir / "python-only"
    project_dir.mkdir(parents=True)
    # This repository's project name and runtime, without its stack-file schema.
    (project_dir / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\n")
    (project_dir / "__main__.py").write_text(PROGRAM)
    stack = offline.stack(project_dir, STACK)
    key = s3.create_user("agora-uploader", aws_upload_policy(BUCKET, "snapshots/"))
    return project_dir, (stack, key)


def _configure(offline: OfflinePulumi, stack: Any, key: Any, agora: EmulatorHandle) -> None:
    offline.write_config(stack, {
        "agora:appId": agora.app_id, "agora:endpoint": agora.url,
        "agora:pollInterval": "0.1", "agora:startTimeout": "15", "agora:failoverGrace": "3",
        "agora:retryDelayScale": "0.05", "agora:exitTimeout": "5",
        f"{PROJECT}:bucket": BUCKET,
    }, {"agora:customerId": CUSTOMER_ID, "agora:customerSecret": CUSTOMER_SECRET,
        f"{PROJECT}:accessKey": key.access_key_id,
        f"{PROJECT}:secretKey": key.secret_access_key})


def _sessions(offline: OfflinePulumi, stack: Any) -> dict[str, dict[str, Any]]:
    return {urn_name(r["urn"]): r for r in offline.resources(stack, SESSION_TYPE)}


def _sids(offline: OfflinePulumi, stack: Any) -> dict[str, str]:
    return {name: r["outputs"]["sid"] for name, r in _sessions(offline, stack).items()}


def _destroy(offline: OfflinePulumi, stack: Any) -> None:
    if offline.resources(stack, SESSION_TYPE):
        stack.destroy(color="never")


def _end_out_of_band(agora: EmulatorHandle, name: str, sid: str) -> None:
    """Its publisher leaves: the task ends after maxIdleTime (1.5 s here); then they return, so
    that a restarted task has someone to record."""
    cname, _, user = CHANNELS[name]
    agora.admin.leave(cname, user)
    wait_for(lambda: sid not in {t["sid"] for t in running_tasks(agora)}, timeout=30)
    agora.admin.join(cname, user, video=True)


def test_a_python_only_program_is_reconciled(
    offline: OfflinePulumi, s3: S3Server, project: tuple[Path, Any], tmp_path: Path,
) -> None:
    project_dir, (stack, key) = project
    with contextlib.ExitStack() as running:
        # The receiver first, so that the emulator can post to it.
        ops = AutomationStackOps(offline.cli, project_dir, STACK, project=PROJECT,
                                 env=offline.env)
        declared = ProgramSessions(ops.preview, project_dir, STACK)
        controller = Controller(ops, declared=declared,
                                tasks=AgoraTaskQuery(offline.cli, project_dir, STACK,
                                                     env=offline.env),
                                settings=ControllerSettings(interval=3600, retry_delay=0.5))
        # The emulator's clock, also for the receiver's replay window: emulated time runs ahead
        # of the wall clock, and so does every notifyMs.
        clock = ScaledClock(TIME_SCALE)
        receiver = running.enter_context(NotificationReceiver(controller, secret=NCS_SECRET,
                                                              clock=clock.now))
        agora = running.enter_context(run_emulator(
            clock=clock, time_scale=TIME_SCALE, storage_dir=tmp_path / "emulator",
            s3_endpoint=s3.endpoint_url, customer_id=CUSTOMER_ID,
            customer_secret=CUSTOMER_SECRET, webhook_url=f"{receiver.url}/ncs",
            webhook_secret=NCS_SECRET, exit_seconds=1.0))
        running.callback(_destroy, offline, stack)  # before the emulator stops
        for cname, _, user in CHANNELS.values():
            agora.admin.join(cname, user, video=True)
        _configure(offline, stack, key, agora)
        stack.up(color="never")
        first = _sids(offline, stack)
        assert set(first) == set(CHANNELS)
        assert _sessions(offline, stack)["hall"]["urn"].count("$") == 1  # under its parent

        # 1. `reconcile --once` in a fresh process, the stack named fully qualified: the
        # session `a::b` ended while nothing listened.
        _end_out_of_band(agora, "a::b", first["a::b"])
        done = subprocess.run(
            [sys.executable, "-m", "snapshot_resources.cli", "reconcile", "--once",
             "--stack", f"organization/{PROJECT}/{STACK}", "--cwd", str(project_dir),
             "--log-level", "WARNING"],
            env={**os.environ, **offline.env}, capture_output=True, text=True, timeout=300,
            check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"stack organization/{PROJECT}/{STACK}: 3 sessions in the state" in done.stdout
        second = _sids(offline, stack)
        assert second["a::b"] != first["a::b"]
        assert {k: v for k, v in second.items() if k != "a::b"} == \
            {k: v for k, v in first.items() if k != "a::b"}
        assert second["a::b"] in {t["sid"] for t in running_tasks(agora)}

        # 2. The running reconciler: its declared sessions come from the program.
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), name="reconcile-test")
        thread.start()
        running.callback(thread.join, 300)
        running.callback(controller.wake)
        running.callback(stop.set)

        def settled() -> bool:
            status = controller.status()
            return status["lastSweep"] is not None and not status["pending"] \
                and not status["busy"] and status["failures"] == 0

        wait_for(settled, timeout=120)
        assert controller.status()["declared"] == sorted(CHANNELS)
        assert controller.metrics.value("snapshot_reconcile_sessions", state="running") == 3
        assert declared.previews >= 1

        # A validly signed exit (11) for a task that still runs: Agora is asked, nothing is
        # forgotten.
        forgets = controller.metrics.engine_run_count("forget")
        now = int(clock.now() * 1000)
        cname, uid, _ = CHANNELS["lobby"]
        body = json.dumps(build_event(RecordingEvent.SESSION_EXIT, {
            "cname": cname, "uid": uid, "sid": second["lobby"], "sequence": 9, "sendts": now,
            "serviceType": 0, "details": {"exitStatus": 0}}, notice_id="not-really-gone",
            notify_ms=now)).encode()
        answer = requests.post(f"{receiver.url}/ncs", data=body, timeout=10, headers={
            **sign_headers(body, NCS_SECRET), "Content-Type": "application/json"})
        assert answer.status_code == 200
        wait_for(lambda: controller.metrics.value("snapshot_reconcile_exit_checks_total",
                                                  outcome="running") == 1, timeout=60)
        wait_for(settled, timeout=60)
        assert controller.metrics.engine_run_count("forget") == forgets
        assert _sids(offline, stack)["lobby"] == second["lobby"]

        # The session under a component ends out of band: restarted from Agora's notifications.
        _end_out_of_band(agora, "hall", second["hall"])
        wait_for(lambda: _sids(offline, stack).get("hall") not in (None, second["hall"]),
                 timeout=90)
        wait_for(settled, timeout=60)
        third = _sids(offline, stack)
        assert third["hall"] in {t["sid"] for t in running_tasks(agora)}
        assert controller.metrics.value("snapshot_reconcile_exit_checks_total",
                                        outcome="gone") >= 1
        assert controller.metrics.value("snapshot_reconcile_restarts_total", cause="idle") \
            + controller.metrics.value("snapshot_reconcile_restarts_total", cause="exited") == 1
        assert {third["lobby"], third["a::b"]} == {second["lobby"], second["a::b"]}
