"""Where create and delete spend their time (benchmarks/engine.py measures it against the peer):
delete does not wait for the task to leave, a replacement rides out the 53 its own predecessor
causes while any other 53 fails at once, and readiness is confirmed with about one query."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.provider_settings import provider_config
from support.sessions import session_inputs

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.provider_host import HostedResource, ProviderError, ProviderHost

# Agora's pace, 4x: ready 0.5 s after start, gone 1.5 s after stop (the emulator's model).
TIME_SCALE = 4.0


@pytest.fixture
def paced(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(time_scale=TIME_SCALE, storage_dir=tmp_path / "storage") as handle:
        handle.admin.join("lobby", "1001", video=True)
        yield handle


@contextmanager
def _host(emulator: EmulatorHandle, **settings: str) -> Iterator[ProviderHost]:
    """A provider process of its own (the engine starts one per `pulumi up`)."""
    with ProviderHost() as host:
        config = {**provider_config(emulator), "agora:pollInterval": "0.5",
                  "agora:retryDelayScale": "1", **settings}
        host.configure(config, secret_keys=("agora:customerSecret",))
        yield host


def _starts(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [r for r in emulator.admin.request_log() if r["path"].endswith("/start")]


def _create(session: HostedResource, emulator: EmulatorHandle, **overrides: Any) -> str:
    session.check(session_inputs(emulator.app_id, **overrides))
    created = session.create()
    return created.id


def test_delete_returns_while_the_stopped_task_is_still_leaving(paced: EmulatorHandle) -> None:
    with _host(paced) as host:
        session = host.resource(SnapshotSessionProvider(), name="lobby")
        sid = _create(session, paced)
        session.delete()
        [task] = [t for t in paced.admin.tasks() if t["sid"] == sid]
    assert task["state"] == "exiting"  # stopped; delete did not wait for it to be gone
    assert [r["operation"] for r in paced.admin.request_log()][-1] == "stop"


def test_a_replacement_rides_out_the_53_of_its_own_predecessor(paced: EmulatorHandle) -> None:
    with _host(paced) as host:
        old = host.resource(SnapshotSessionProvider(), name="lobby")
        first = _create(old, paced)
        old.delete()  # what the engine does first for a delete-before-replace
        new = host.resource(SnapshotSessionProvider(), name="lobby")
        second = _create(new, paced, snapshotConfig={"captureInterval": 10})

    assert second != first
    refused = [r for r in _starts(paced) if r["status"] == 400]
    assert refused, "the predecessor was still leaving: Agora answered 53 at least once"
    running = [t["sid"] for t in paced.admin.tasks() if t["state"] == "running"]
    assert running == [second]


def test_a_53_with_no_predecessor_here_fails_at_once(paced: EmulatorHandle) -> None:
    """Another resource's task holds the channel and uid (another stack, another session
    declared with the same channel and uid): not ours to wait for, nor to adopt."""
    with _host(paced) as host, _host(paced) as other_process:
        other = other_process.resource(SnapshotSessionProvider(), name="lobby-elsewhere")
        _create(other, paced)
        mine = host.resource(SnapshotSessionProvider(), name="lobby")
        started = time.monotonic()
        with pytest.raises(ProviderError, match="code 53"):
            _create(mine, paced)
        assert time.monotonic() - started < 5  # no ride-out: it was never ours
        other.delete()


def test_readiness_is_confirmed_with_one_or_two_queries_per_create(paced: EmulatorHandle) -> None:
    # A short pollInterval: the old fixed schedule queried every 0.1 s, 5 times per create here.
    with _host(paced, **{"agora:pollInterval": "0.1"}) as host:
        for index in range(6):
            session = host.resource(SnapshotSessionProvider(), name=f"s{index}")
            _create(session, paced, cname=f"room{index}")
    queries = [r for r in paced.admin.request_log() if r["operation"] == "query"]
    # The first query goes when the task is expected to be ready, learnt from the first create;
    # after it, one or two queries per create (the fixed schedule: 5 each, 30 in all).
    assert len(queries) <= 18
