"""Issue #4 acceptance: fifty sessions through the provider host's four workers, no errors.

Fifty ``SnapshotSession`` resources are created, then deleted, through ``ProviderHost`` (the SDK's
own ``python -m pulumi.dynamic`` server, four worker threads) against an emulator with 100 ms
latency on every REST call and Agora's default limit of 10 requests/s per App ID, the RPCs sent
from as many threads as the engine uses (4 x GOMAXPROCS).  The whole cycle runs once per module;
each test asserts one outcome of it.  Nothing here is timed: the client's own rate limiter must keep
every request under the limit however the threads interleave.

The emulator runs at 100x: a task is ready 0.02 s after start and gone 0.06 s after stop, so every
create costs acquire + start + one query and every delete stop + one query, and the run is bound
by the rate limit (about 250 requests at 10/s) rather than by waiting.  ``maxIdleTime`` is 30 days
so no task idles out on the fast clock before it is deleted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from support.provider_settings import provider_config
from support.sessions import session_inputs

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import run_emulator
from snapshot_resources.testing.provider_host import (
    HostedResource,
    ProviderError,
    ProviderHost,
    secret,
)

pytestmark = pytest.mark.slow

SESSIONS = 50
LATENCY_MS = 100
TIME_SCALE = 100.0
# The engine sends up to 4 * GOMAXPROCS resource steps at once; the host serves four at a time.
THREADS = max(8, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Cycle:
    """What one create-all, delete-all cycle left behind."""

    create_errors: list[str]
    created_ids: list[str]
    running_after_create: int
    delete_errors: list[str]
    running_after_delete: int
    live_tasks_after_delete: list[dict[str, Any]]
    counters: dict[str, Any]


def _inputs(app_id: str, index: int) -> dict[str, Any]:
    base = session_inputs(app_id)
    return {
        **base,
        "cname": f"scale-{index:02d}",
        "recordingConfig": {**base["recordingConfig"], "maxIdleTime": 2_592_000},
        "storage": secret(base["storage"]),
    }


def _each(resources: list[HostedResource], step: str) -> list[str]:
    def run(resource: HostedResource) -> str | None:
        try:
            getattr(resource, step)()
        except ProviderError as error:
            return f"{resource.urn}: {error.operation}: {error.last_line}"
        return None

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [error for error in pool.map(run, resources) if error is not None]


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cycle]:
    storage = tmp_path_factory.mktemp("scale") / "storage"
    with run_emulator(
        time_scale=TIME_SCALE, latency_ms=LATENCY_MS, storage_dir=storage
    ) as emulator, ProviderHost() as host:
        host.configure(
            provider_config(emulator, **{"agora:pollInterval": "0.05"}),
            secret_keys=("agora:customerSecret",),
        )
        provider = SnapshotSessionProvider()
        resources = [host.resource(provider, name=f"scale-{i:02d}") for i in range(SESSIONS)]
        for i, resource in enumerate(resources):
            assert resource.check(_inputs(emulator.app_id, i)).failures == []
        create_errors = _each(resources, "create")
        created_ids = [r.id for r in resources if r.id is not None]
        running_after_create = emulator.backend.snapshot_counters()["tasksRunning"]
        delete_errors = _each([r for r in resources if r.id is not None], "delete")
        yield Cycle(
            create_errors=create_errors,
            created_ids=created_ids,
            running_after_create=running_after_create,
            delete_errors=delete_errors,
            # Delete stops and returns (docs/decisions.md): a stopped task may still be leaving
            # the channel for a moment; none may still be running.
            running_after_delete=sum(
                1 for t in emulator.admin.tasks() if t["state"] in ("running", "failover")),
            live_tasks_after_delete=[
                t for t in emulator.admin.tasks() if t["state"] in ("running", "failover")
            ],
            counters=emulator.admin.counters(),
        )


def test_fifty_sessions_are_created_without_errors(cycle: Cycle) -> None:
    assert cycle.create_errors == []
    assert len(set(cycle.created_ids)) == SESSIONS
    assert cycle.running_after_create == SESSIONS


def test_all_fifty_are_deleted_without_errors(cycle: Cycle) -> None:
    assert cycle.delete_errors == []


def test_the_emulator_holds_no_running_task_after_the_deletes(cycle: Cycle) -> None:
    assert cycle.running_after_delete == 0
    assert cycle.live_tasks_after_delete == []


def test_the_client_rate_limiter_keeps_every_request_under_the_limit(cycle: Cycle) -> None:
    counters = cycle.counters
    assert counters["rateLimited"] == 0
    assert "429" not in counters["responses"]
    # The gateway's sliding one-second window never saw more than Agora's 10 (S8, S10).
    assert max(counters["maxRequestsPerSecond"].values()) <= 10
