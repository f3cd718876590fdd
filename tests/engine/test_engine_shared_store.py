"""Beyond one machine, under the real engine: the shared store (a real redis-server on loopback,
with a password), the emulator enforcing Agora's 10 requests/s per App ID.

* Stacks deployed at once by several processes share one request budget: no 429 (the full
  measurement, four stacks of 50 sessions beside the status quo, is benchmarks/shared_store.py).
* A `pulumi up` killed (its process group and its provider) on one working directory is
  recovered from a fresh copy of the project with another Pulumi home: nothing orphaned.
* Two reconciler replicas behind one endpoint, notifications alternating between them, one
  killed with kill -9 during a round: every ended session restarted once, none into an empty
  channel, no duplicate task.
* The store stopped during a deploy: the deploy completes, one warning, nothing orphaned, and the
  restarted store is used again.

The store's password is distinctive: no output, log or state holds it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
import requests
from support.engine_stack import (
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    NCS_SECRET,
    PROJECT,
    REPO,
    ExampleStack,
    Run,
    running_tasks,
)
from support.interruption import (
    RUNNER,
    SLOW_MS,
    Running,
    interrupt_when,
    nothing_orphaned,
)
from support.waiting import wait_for

from snapshot_resources.shared_store import KEY_PREFIX
from snapshot_resources.testing.offline import OfflinePulumi
from snapshot_resources.testing.redis import RedisServer, redis_server_binary, run_redis

PASSWORD: Final = "shared-store-pw-4e9b21c7"
STORE_FAILED: Final = "the shared store"


@pytest.fixture
def store() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        message = "no redis-server on PATH (`make test` installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set: engine tests may not skip")
        pytest.skip(message)
    with run_redis(password=PASSWORD) as server:
        yield server


def _use_store(example: ExampleStack, store: RedisServer) -> None:
    """``agora:sharedStore`` as a user sets it: a secret (it holds the password)."""
    example.secrets["agora:sharedStore"] = store.url


def _no_password_anywhere(example: ExampleStack, *texts: str) -> None:
    assert PASSWORD not in example.offline.state_text(example.stack)
    for text in texts:
        assert PASSWORD not in text


def _rooms(example: ExampleStack, count: int, first: int = 0) -> dict[str, Any]:
    """``count`` sessions like the example's lobby, each on a channel of its own with a user
    publishing video."""
    # Pulumi.example.yaml writes its sessions without a namespace (the project's own keys).
    template = example.example["sessions"]["lobby"]
    rooms = {}
    for n in range(first, first + count):
        session = copy.deepcopy(template)
        session.update(cname=f"room-{n}", uid=str(920000 + n), fileNamePrefix=[f"room{n}"])
        rooms[f"room-{n}"] = session
        example.agora.admin.join(f"room-{n}", "1001", video=True)
    return rooms


def _many(example: ExampleStack, count: int, first: int = 0) -> None:
    example.sessions.update(_rooms(example, count, first))


# -- (b) an up killed on one runner, recovered on another ---------------------------------------


def test_an_up_killed_on_one_runner_is_recovered_from_another_runners_fresh_copy(
    example: ExampleStack, store: RedisServer, tmp_path: Path
) -> None:
    _use_store(example, store)
    example.sessions = {"lobby": example.sessions["lobby"]}
    _many(example, 3)
    example.publish()
    example.apply()
    example.agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=SLOW_MS)
    # the CI runner's kill
    running = interrupt_when(example, "up", lambda: len(running_tasks(example.agora)) >= 3, "kill-tree",
                             tmp_path)
    left = {t["sid"] for t in running_tasks(example.agora)}
    unheld = left - set(example.sids_in_state().values())
    assert unheld, "the kill left tasks no state holds"

    # Another runner: a fresh copy of the project and its stack file, another Pulumi home (so
    # another local journal), the same backend and passphrase.
    other = OfflinePulumi(example.offline.cli, root=tmp_path / "runner-b")
    other.env.update({key: example.offline.env[key]
                      for key in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE")})
    project = other.project(REPO)
    stack_file = f"Pulumi.{example.stack.name}.yaml"
    shutil.copy(example.project_dir / stack_file, project / stack_file)
    with other:
        if any(other.backend_dir.rglob("locks/**/*.json")) or any(
                example.offline.backend_dir.rglob("locks/**/*.json")):
            other.run("cancel", "--yes", "--stack", example.stack.name, cwd=project)
        stack = other.stack(project, example.stack.name, create=False)
        out: list[str] = []
        stack.up(color="never", on_output=out.append)
    terminal = "\n".join(out)
    assert "adopted" in terminal, terminal  # the tasks the kill left, found in the store
    adopted = len({line[line.index("adopted"):] for line in terminal.splitlines()
                   if "snapshot-resources: adopted" in line})
    nothing_orphaned(example)
    assert set(example.sids_in_state()) == set(example.sessions)
    _no_password_anywhere(example, terminal, running.log.read_text())
    print(f"\n[shared store measured] runner killed with {len(left)} tasks running, "
          f"{len(unheld)} held by no state; the other "
          f"runner adopted {adopted}; orphans after: 0", flush=True)
    assert example.destroy().ok
    wait_for(lambda: running_tasks(example.agora) == [], timeout=30)


# -- (d) the store stopped during a deploy ------------------------------------------------------


def _warnings(run: Run) -> set[str]:
    """The provider's lines about a failed store (the engine shows each diagnostic while it
    runs and again in its summary: each message counts once)."""
    marker = "snapshot-resources: "
    return {line[line.index(marker):] for line in run.terminal.splitlines()
            if marker in line and STORE_FAILED in line and "failed" in line}


def test_a_deploy_completes_when_the_store_stops_and_the_store_is_used_again(
    example: ExampleStack, store: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_store(example, store)
    example.sessions = {}
    _many(example, 12)
    example.apply()
    monkeypatch.setenv("PULUMI_PARALLEL", "24")
    # Slow confirmations: the store stops while creates are in flight.
    example.agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=2000)
    result: list[Run] = []
    deploy = threading.Thread(target=lambda: result.append(example.up()))
    began = time.monotonic()
    deploy.start()
    try:
        wait_for(lambda: len(running_tasks(example.agora)) >= 3, timeout=90)
        store.stop()
        stopped_with = len(running_tasks(example.agora))
    finally:
        deploy.join(300)
        example.agora.admin.clear_faults()
    (up,) = result
    took = time.monotonic() - began
    assert up.ok, up.terminal
    assert stopped_with < len(example.sessions), "the store stopped during the deploy"
    assert len(_warnings(up)) == 1, _warnings(up)  # said once, naming the fallbacks
    assert "task journal" in next(iter(_warnings(up)))
    nothing_orphaned(example)
    assert set(example.sids_in_state()) == set(example.sessions)
    assert example.agora.admin.counters()["rateLimited"] == 0

    store.start()  # the same server, its data kept
    _many(example, 2, first=12)
    example.apply()
    again = example.up()
    assert again.ok, again.terminal
    assert _warnings(again) == set()
    with store.client() as client:
        entries = client.keys(f"{KEY_PREFIX}{{journal}}:e:*")
        members = client.keys(f"{KEY_PREFIX}{{budget:*}}:members")
    assert entries, "the journal is on the store again"
    assert members, "the request budget is on the store again"
    nothing_orphaned(example)
    _no_password_anywhere(example, up.terminal, again.terminal)
    print(f"\n[shared store measured] store stopped with {stopped_with} of 12 tasks started; "
          f"the up took {took:.1f} s, said it {len(_warnings(up))} time, 0 answers 429; the next "
          f"up used the restarted store ({len(entries)} journal entries there)", flush=True)
    destroy = example.destroy()
    assert destroy.ok, destroy.terminal
    wait_for(lambda: running_tasks(example.agora) == [], timeout=30)


# -- (a, bounded) stacks deployed at once share the budget --------------------------------------


def test_stacks_deployed_at_once_share_one_budget_without_429(
    example: ExampleStack, store: RedisServer, tmp_path: Path
) -> None:
    """Three stacks of 6 sessions on one App ID, each deployed by its own `pulumi up` process at
    the same moment: the emulator never answers 429."""
    _use_store(example, store)
    processes = []
    stacks = []
    for index in range(3):
        stack = example.offline.stack(example.project_dir, f"shard-{index}")
        config = {**example.config(), f"{PROJECT}:sessions": _rooms(example, 6, index * 6)}
        example.offline.write_config(stack, config, example.secrets)
        stacks.append(stack)
    for stack in stacks:
        processes.append(_start_stack(example, stack.name, tmp_path))
    for running in processes:
        assert running.process.wait(300) == 0, running.log.read_text()
    counters = example.agora.admin.counters()
    assert counters["rateLimited"] == 0, counters
    assert counters["maxRequestsPerSecond"][example.agora.app_id] <= 10
    for stack in stacks:
        stack.destroy(color="never")
    for running in processes:
        _no_password_anywhere(example, running.log.read_text())


def _start_stack(example: ExampleStack, stack: str, tmp_path: Path) -> Running:
    """``_start`` for another stack of the example's project."""
    request = tmp_path / f"{stack}-up.json"
    log = tmp_path / f"{stack}-up.log"
    request.write_text(json.dumps({
        "operation": "up", "cli": str(example.offline.cli.bin_dir),
        "cwd": str(example.project_dir), "stack": stack, "env": example.offline.env,
        "log": str(log)}))
    process = subprocess.Popen([sys.executable, str(RUNNER), str(request)],
                               env={**os.environ, **example.offline.env},
                               start_new_session=True)
    return Running(process, log)


# -- (c) two reconciler replicas ----------------------------------------------------------------


class _Alternating(ThreadingHTTPServer):
    """A load balancer for the test: each POST goes to the next replica in turn; a replica that
    does not answer is skipped (its health check failed). Counts what each got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.targets: list[str] = []
        self.counts: dict[str, int] = {}
        self.turn = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Forward(BaseHTTPRequestHandler):
    server: _Alternating

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items() if k.lower().startswith(("agora",
                                                                                  "content-t"))}
        with self.server.lock:
            order = list(self.server.targets)
            self.server.turn += 1
            start = self.server.turn % max(1, len(order))
        status = 502
        for target in order[start:] + order[:start]:
            try:
                answer = requests.post(f"{target}/ncs", data=body, headers=headers, timeout=5)
            except requests.RequestException:
                continue
            status = answer.status_code
            with self.server.lock:
                self.server.counts[target] = self.server.counts.get(target, 0) + 1
            break
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _reconciler(example: ExampleStack, store: RedisServer, log: Path, env: dict[str, str]
                ) -> tuple[subprocess.Popen[str], str]:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "snapshot_resources.cli", "reconcile", "--stack",
             example.stack.name, "--cwd", str(example.project_dir), "--listen", "127.0.0.1:0",
             "--shared-store", store.url, "--interval", "3600"],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    process.stdout.close()
    assert line.startswith("listening on http://127.0.0.1:"), log.read_text()
    return process, line.split()[-1]


def _health(url: str) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = requests.get(f"{url}/healthz", timeout=5).json()
    except requests.RequestException:
        return {}
    return answer


def _running_up(pid: int) -> bool:
    import psutil

    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "pulumi" and "up" in child.cmdline():
                return True
    return False


def _starts(example: ExampleStack, cname: str) -> int:
    return len({t["sid"] for t in example.agora.admin.tasks() if t["cname"] == cname})


def test_two_replicas_restart_every_ended_session_once_when_one_is_killed_mid_round(
    offline: OfflinePulumi, s3: Any, store: RedisServer, tmp_path: Path
) -> None:
    from snapshot_resources.testing.emulator import run_emulator

    balancer = _Alternating()
    threading.Thread(target=balancer.serve_forever, daemon=True).start()
    replicas: list[subprocess.Popen[str]] = []
    # Real time: the replicas check each notification's notifyMs against their own clock.
    with run_emulator(time_scale=1.0, storage_dir=tmp_path / "emulator",
                      s3_endpoint=s3.endpoint_url, customer_id=CUSTOMER_ID,
                      customer_secret=CUSTOMER_SECRET, webhook_url=f"{balancer.url}/ncs",
                      webhook_secret=NCS_SECRET, channel_events=True, exit_seconds=1.0) as agora:
        example = ExampleStack(offline, agora, s3)
        try:
            _use_store(example, store)
            ended = ["lobby", "room-0", "room-1"]
            _many(example, 2)
            for name in ended:
                example.sessions[name]["recordingConfig"]["maxIdleTime"] = 5  # the least (S3)
            example.publish()
            example.apply()
            assert example.up().ok
            first = example.sids_in_state()
            env = {**os.environ, **offline.env, "AGORA_NCS_SECRET": NCS_SECRET}
            a, a_url = _reconciler(example, store, tmp_path / "replica-a.log", env)
            replicas.append(a)
            wait_for(lambda: _health(a_url).get("replica", {}).get("role") == "leader",
                     timeout=60)
            b, b_url = _reconciler(example, store, tmp_path / "replica-b.log", env)
            replicas.append(b)
            balancer.targets = [a_url, b_url]
            wait_for(lambda: all(_health(u).get("lastSweep") or u == b_url
                                 for u in (a_url, b_url)), timeout=120)
            assert _health(b_url)["replica"]["role"] == "follower"
            assert _health(b_url)["replica"]["leaseHolder"] == _health(a_url)["replica"][
                "replica"]

            # Every user of three channels leaves: their sessions end on idle and are held
            # (forgotten, not started into the empty channel) by both replicas.
            before = {name: _starts(example, example.sessions[name]["cname"]) for name in ended}
            for name in ended:
                cname = example.sessions[name]["cname"]
                user = "2001" if name == "lobby" else "1001"
                agora.admin.leave(cname, user)
            def holds_all(url: str) -> bool:
                return sorted(_health(url).get("held", [])) == sorted(ended)

            for url in (a_url, b_url):  # presence: each replica saw part of the channel events
                wait_for(functools.partial(holds_all, url), timeout=60)
            wait_for(lambda: not set(ended) & set(example.sids_in_state()), timeout=60)
            time.sleep(6.0)  # past maxIdleTime: a start into an empty channel would show
            assert {n: _starts(example, example.sessions[n]["cname"]) for n in ended} == before

            # The users return; the leader's `pulumi up` restarting them is killed (kill -9 of
            # the replica: the CLI it started finishes under Pulumi's lock). Slow confirmations
            # keep that up running long enough to be caught.
            agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=2000)
            for name in ended:
                cname = example.sessions[name]["cname"]
                agora.admin.join(cname, "2001" if name == "lobby" else "1001", video=True)
            wait_for(lambda: _running_up(a.pid), timeout=60)
            a.kill()
            killed = time.monotonic()
            assert a.wait(10) == -signal.SIGKILL
            wait_for(lambda: _health(b_url).get("replica", {}).get("role") == "leader",
                     timeout=60)
            takeover = time.monotonic() - killed
            agora.admin.clear_faults()
            wait_for(lambda: set(example.sids_in_state()) == set(example.sessions), timeout=120)
            wait_for(lambda: not _health(b_url).get("pending") and not _health(b_url)["busy"],
                     timeout=120)
            time.sleep(3.0)  # anything still queued would run now
            after = example.sids_in_state()
            for name in ended:
                assert after[name] != first[name]
                assert _starts(example, example.sessions[name]["cname"]) == before[name] + 1, \
                    f"{name}: restarted exactly once"
            nothing_orphaned(example)
            counts = sorted(balancer.counts.values())
            assert len(counts) == 2
            assert counts[0] >= 0.3 * sum(counts), counts  # each saw part of the events
            b.send_signal(signal.SIGTERM)
            assert b.wait(60) == 0
            logs = (tmp_path / "replica-b.log").read_text()
            decisions = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
            assert any(d.get("what") == "lead" for d in decisions), "b took the lease over"
            _no_password_anywhere(example, logs, (tmp_path / "replica-a.log").read_text())
            print(f"\n[shared store measured] replicas: notifications per replica {counts}; "
                  f"b led {takeover:.1f} s after a's kill -9 (lease {15:g} s); starts per "
                  f"ended channel {[_starts(example, example.sessions[n]['cname']) - before[n] for n in ended]}",
                  flush=True)
        finally:
            for process in replicas:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            balancer.shutdown()
            balancer.server_close()
            if example.offline.resources(example.stack, "pulumi-python:dynamic/agora:"
                                                        "SnapshotSession"):
                example.destroy()

