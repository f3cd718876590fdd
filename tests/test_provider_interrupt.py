"""Interrupted, never orphaned: the provider, hosted as the engine hosts it, against the emulator
(docs/decisions.md, "Interrupted, never orphaned").

Each test interrupts a create while it confirms the task (the emulator's query is slowed, so the
create sits there after Agora's start), the way the engine's end reaches a provider: the engine
gone (``kill -9`` of the CLI: calls cancelled, stdin closed), the SIGINT the CLI sends its plugins,
or the provider process itself killed. Then it checks what runs at the emulator and what the task
journal holds, and that the next create recovers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.provider_settings import provider_config
from support.sessions import session_inputs
from support.waiting import wait_for

from snapshot_resources.journal import Phase, SqliteTaskJournal, TaskKey, default_journal_path
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle, RawAgora, snapshot_request
from snapshot_resources.testing.provider_host import (
    HostedResource,
    ProviderError,
    ProviderHost,
)

SLOW_QUERY_MS = 4000  # the create sits in its confirmation this long


def _host(emulator: EmulatorHandle, **extra: str) -> ProviderHost:
    host = ProviderHost(call_timeout=60).start()
    host.configure(provider_config(emulator, **extra), secret_keys=("agora:customerSecret",))
    return host


def _running(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [t for t in emulator.admin.tasks() if t.get("state") in ("running", "failover")]


def _starts(emulator: EmulatorHandle) -> int:
    return sum(1 for r in emulator.admin.request_log() if str(r.get("path", "")).endswith("/start"))


def _journal() -> SqliteTaskJournal:
    return SqliteTaskJournal(default_journal_path())


@pytest.fixture
def hosts(emulator: EmulatorHandle) -> Iterator[list[ProviderHost]]:
    started: list[ProviderHost] = []
    yield started
    for host in started:
        host.stop()


def _create_in_background(resource: HostedResource) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(resource.create())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _sitting_in_confirmation(emulator: EmulatorHandle, hosts: list[ProviderHost],
                             **inputs: Any) -> tuple[ProviderHost, HostedResource]:
    """A create that Agora has started and that now waits for its slowed query."""
    emulator.admin.join("lobby", "1001", video=True)
    emulator.admin.set_faults(rate=0.0, operations=["query"], latency_ms=SLOW_QUERY_MS)
    host = _host(emulator)
    hosts.append(host)
    resource = host.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id, **inputs))
    _create_in_background(resource)
    wait_for(lambda: len(_running(emulator)) == 1, timeout=30)
    time.sleep(0.3)  # inside the first (slow) query
    return host, resource


def test_engine_gone_mid_create_stops_the_task_and_the_provider_exits(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    host, _ = _sitting_in_confirmation(emulator, hosts)
    host.drop_engine()  # kill -9 of the CLI: calls cancelled, stdin closed
    wait_for(lambda: _running(emulator) == [], timeout=30)
    wait_for(lambda: host.process.poll() is not None, timeout=30)
    assert host.process.returncode == 0
    assert "the task was stopped, nothing is left running" in host.stderr_text()
    (stop,) = [e for e in _journal().entries()]
    assert stop.phase is Phase.STOPPED


def test_sigint_mid_create_stops_the_task_within_the_engines_five_seconds(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    host, _ = _sitting_in_confirmation(emulator, hosts)
    emulator.admin.clear_faults()
    sent = time.monotonic()
    host.process.send_signal(signal.SIGINT)  # what the CLI sends its plugins on shutdown
    host.process.wait(30)
    assert time.monotonic() - sent < 5.0, "the engine kills a plugin 5 s after its SIGINT"
    assert _running(emulator) == []
    assert "nothing is left running" in host.stderr_text()


def test_provider_killed_mid_create_is_adopted_by_the_next_create(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    host, _ = _sitting_in_confirmation(emulator, hosts)
    os.kill(host.process.pid, signal.SIGKILL)  # the whole process tree killed
    host.process.wait(30)
    (orphan,) = _running(emulator)
    (entry,) = _journal().holders(TaskKey(emulator.app_id, "lobby", "527841"))
    assert (entry.phase, entry.sid) == (Phase.STARTED, orphan["sid"])
    emulator.admin.clear_faults()
    starts = _starts(emulator)

    again = _host(emulator)
    hosts.append(again)
    resource = again.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id))
    created = resource.create()

    assert created.id == orphan["sid"], "the running task was adopted"
    assert _starts(emulator) == starts, "no second start"
    assert [t["sid"] for t in _running(emulator)] == [orphan["sid"]]
    wait_for(lambda: "adopted task" in again.stderr_text())
    resource.diff(session_inputs(emulator.app_id))  # the engine now holds it
    assert _journal().holders(TaskKey(emulator.app_id, "lobby", "527841")) == []


def test_an_orphan_with_another_configuration_is_stopped_and_replaced(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    host, _ = _sitting_in_confirmation(emulator, hosts)
    os.kill(host.process.pid, signal.SIGKILL)
    host.process.wait(30)
    (orphan,) = _running(emulator)
    emulator.admin.clear_faults()

    again = _host(emulator, **{"agora:exitTimeout": "10"})
    hosts.append(again)
    resource = again.resource(SnapshotSessionProvider(), name="lobby")
    edited = session_inputs(emulator.app_id,
                            snapshotConfig={"captureInterval": 10, "fileType": ["jpg"]})
    resource.check(edited)
    created = resource.create()

    assert created.id != orphan["sid"]
    wait_for(lambda: [t["sid"] for t in _running(emulator)] == [created.id], timeout=30)
    wait_for(lambda: "another configuration" in again.stderr_text())


def test_a_foreign_53_names_the_channel_and_uid_without_a_traceback(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    emulator.admin.join("lobby", "1001", video=True)
    raw = RawAgora(emulator)
    raw.begin("lobby", "527841", snapshot_request(vendor=2, region=3, bucket="snaps"))
    raw.close()
    host = _host(emulator)
    hosts.append(host)
    resource = host.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id))
    with pytest.raises(ProviderError) as info:
        resource.create()
    message = str(info.value)
    assert "Traceback" not in message
    assert "channel 'lobby', recorder uid 527841" in message
    assert "code 53" in message
    assert "another `uid`" in message
    assert "No task this machine's task journal knows holds it" in message


def test_a_stop_the_engine_never_recorded_makes_diff_replace(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    emulator.admin.join("lobby", "1001", video=True)
    host = _host(emulator)
    hosts.append(host)
    resource = host.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id))
    resource.create()
    state = dict(resource.outputs)
    resource.delete()  # a destroy whose end the engine never wrote down
    resource.id, resource.outputs = state["sid"], state
    diff = resource.diff(session_inputs(emulator.app_id))
    assert diff.replaces == ["sid"]
    wait_for(lambda: "`pulumi up` replaces it" in host.stderr_text())


def test_an_unparsable_resource_id_is_dropped_with_true_words(
    emulator: EmulatorHandle, hosts: list[ProviderHost]
) -> None:
    emulator.admin.join("lobby", "1001", video=True)
    host = _host(emulator)
    hosts.append(host)
    resource = host.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id))
    created = resource.create()
    unparsable = {**resource.outputs, "resourceId": "not-a-resource-id-of-this-agora"}
    resource.outputs = unparsable
    read = resource.read()
    assert read.id == "", "refresh drops it; the next `pulumi up` starts a new one"
    wait_for(lambda: "code 1001" in host.stderr_text())
    assert "expired" not in host.stderr_text()
    resource.id, resource.outputs = created.id, unparsable
    resource.delete()  # succeeds, saying the task cannot be stopped through it
    wait_for(lambda: "it is removed from the state" in host.stderr_text())


def test_refused_credentials_on_refresh_say_where_they_come_from(
    emulator: EmulatorHandle, hosts: list[ProviderHost], tmp_path: Path
) -> None:
    emulator.admin.join("lobby", "1001", video=True)
    host = _host(emulator)
    hosts.append(host)
    resource = host.resource(SnapshotSessionProvider(), name="lobby")
    resource.check(session_inputs(emulator.app_id))
    resource.create()
    stale = _host(emulator, **{"agora:customerSecret": "rotated-away-secret"})
    hosts.append(stale)
    old = stale.resource(SnapshotSessionProvider(), name="lobby")
    old.id, old.outputs, old.inputs = resource.id, resource.outputs, resource.inputs
    with pytest.raises(ProviderError) as info:
        old.read()
    message = str(info.value)
    assert "401" in message
    assert "`pulumi up` first" in message
    assert "--run-program" in message
    assert "rotated-away-secret" not in message
    assert "Traceback" not in message


def test_a_thread_that_served_an_answered_call_is_not_cancelled_by_its_end() -> None:
    """The first call's end is known only from gRPC's callback, in another thread; the thread
    that served it may already serve a call that reached the server before the interceptor did
    (measured: a destroy of 14 sessions with PULUMI_PARALLEL=24 failed two deletes with "Delete
    was cancelled" while they waited for the request budget)."""
    from snapshot_resources import provider_process

    answered = provider_process.Operation("Delete", None)
    provider_process._state.operation = answered
    try:
        provider_process._done(answered)  # as gRPC's callback runs it, marked answered first
        answered.cancelled.set()
        provider_process._state.operation = answered  # still named by the serving thread
        assert provider_process.current() is None
        provider_process.sleep(0.01)  # no OperationCancelled: that call has ended
        provider_process.check_cancelled()
        running = provider_process.Operation("Delete", None)
        provider_process._state.operation = running
        running.cancelled.set()
        with pytest.raises(provider_process.OperationCancelled):
            provider_process.sleep(0.01)
    finally:
        provider_process._state.operation = None
