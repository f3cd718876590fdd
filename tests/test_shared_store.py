"""The shared store (docs/shared-store.md) on a real redis-server: its URL and password, one
request budget per App ID across processes, the journal's owners on other machines, and what
each does when the store fails and comes back."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pytest
from support.waiting import wait_for

from snapshot_resources.agora.shared_budget import SharedBudget
from snapshot_resources.journal import Phase, SqliteTaskJournal, TaskKey
from snapshot_resources.journal_redis import RedisTaskJournal, SharedTaskJournal
from snapshot_resources.shared_store import (
    SharedStore,
    SharedStoreConfigError,
    StoreUnavailable,
    redact,
)
from snapshot_resources.testing.emulator import run_emulator
from snapshot_resources.testing.redis import RedisServer, run_redis

WORKER: Final = Path(__file__).parent / "support" / "budget_worker.py"
PASSWORD: Final = "store-pw-7c1e55d0"  # distinctive: searched for in every message
KEY: Final = TaskKey("app-1", "lobby", "527841")
URN: Final = "urn:pulumi:dev::agora-snapshots::pulumi-python:dynamic/agora:SnapshotSession::lobby"


def test_a_url_is_shown_without_its_password() -> None:
    assert redact(f"rediss://default:{PASSWORD}@cache.example:6380/2") == \
        "rediss://default:***@cache.example:6380/2"
    assert redact(f"redis://:{PASSWORD}@10.0.0.5") == "redis://:***@10.0.0.5"
    assert PASSWORD not in redact(f"redis://h:1/0?password={PASSWORD}")
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("url", [f"http://:{PASSWORD}@cache:6379", f"redis://:{PASSWORD}@:6379",
                                 f"redis://:{PASSWORD}@cache:port"])
def test_a_url_that_is_not_a_store_is_refused_naming_it_redacted(url: str) -> None:
    with pytest.raises(SharedStoreConfigError) as raised:
        SharedStore(url)
    assert "agora:sharedStore" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_store_that_fails_is_said_once_without_its_password() -> None:
    with run_redis(password=PASSWORD) as server:
        said: list[str] = []
        store = SharedStore(server.url, say=said.append, retry_after=0.2)
        assert store.run("test", lambda client: client.ping())
        server.stop()
        for _ in range(3):
            with pytest.raises(StoreUnavailable) as raised:
                store.run("test", lambda client: client.ping())
            assert PASSWORD not in str(raised.value)
            time.sleep(0.25)
        assert len(said) == 1, said
        assert PASSWORD not in said[0]
        assert "redis://:***@127.0.0.1" in said[0]
        assert store.status().outages == 1
        server.start()
        time.sleep(0.25)
        assert store.run("test", lambda client: client.ping())
        assert store.status().up


def test_a_wrong_password_fails_without_showing_it() -> None:
    with run_redis(password=PASSWORD) as server:
        said: list[str] = []
        wrong = server.url.replace(PASSWORD, PASSWORD[::-1])
        store = SharedStore(wrong, say=said.append)
        with pytest.raises(StoreUnavailable) as raised:
            store.run("test", lambda client: client.ping())
        for text in (str(raised.value), *said):
            assert PASSWORD not in text, text
            assert PASSWORD[::-1] not in text, text


def test_a_slow_store_never_holds_a_caller_longer_than_its_timeout(
        redis_server: RedisServer) -> None:
    store = SharedStore(redis_server.url, say=lambda line: None, timeout=0.3)
    budget = SharedBudget(store, "app-slow", "scope", 10)
    assert budget.acquire(time.monotonic() + 5, held=True)
    budget.release()
    redis_server.freeze()
    try:
        began = time.monotonic()
        assert budget.acquire(time.monotonic() + 5, held=True), "the share of this process"
        budget.release()
        # The store's timeout, then one window: the store's last window may have been spent.
        assert time.monotonic() - began < 0.3 + 1.0 + 0.5
        assert budget.fallback_rate() == 10, "one member was seen: the whole budget"
    finally:
        redis_server.thaw()


def _workers(tmp_path: Path, emulator: Any, store: str | None, processes: int, calls: int
             ) -> list[dict[str, Any]]:
    go = tmp_path / "go"
    started = []
    for index in range(processes):
        request = tmp_path / f"worker-{index}.json"
        request.write_text(json.dumps({
            "endpoint": emulator.url, "app_id": emulator.app_id,
            "customer_id": emulator.customer_id, "customer_secret": emulator.customer_secret,
            "store": store, "calls": calls, "threads": 6, "go": str(go)}))
        started.append(subprocess.Popen([sys.executable, str(WORKER), str(request)],
                                        stdout=subprocess.PIPE, text=True))
    time.sleep(1.5)  # every interpreter is up and waiting
    go.touch()
    results = []
    for process in started:
        out, _ = process.communicate(timeout=120)
        results.append(json.loads(out.strip().splitlines()[-1]))
    go.unlink()
    return results


def test_processes_on_the_store_share_one_budget_and_never_get_429(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """Four processes of six threads each: with the store, the emulator (10 requests/s per App
    ID) never answers 429 and the calls take about calls / 10 s; each process alone collects
    429s (the status quo, which proves the emulator would tell)."""
    processes, calls = 4, 12
    with run_emulator(qps=10, storage_dir=tmp_path / "emulator") as emulator:
        results = _workers(tmp_path, emulator, redis_server.url, processes, calls)
        shared = emulator.admin.counters()
        assert all(r["failed"] == 0 for r in results), results
        assert shared["rateLimited"] == 0, shared
        assert shared["maxRequestsPerSecond"][emulator.app_id] <= 10
        longest = max(r["seconds"] for r in results)
        bound = processes * calls / 10
        assert bound - 1.1 <= longest, f"{longest:.1f} s: faster than one budget allows"
        _workers(tmp_path, emulator, None, processes, calls)
        alone = emulator.admin.counters()
        assert alone["rateLimited"] > 0, "each process alone exceeds the App ID's limit"


_HOLDER: Final = """
import sys, time
from snapshot_resources.shared_store import SharedStore
from snapshot_resources.agora.shared_budget import SharedBudget
budget = SharedBudget(SharedStore(sys.argv[1]), "app-lease", "scope", 10)
for _ in range(10):
    assert budget.acquire(time.monotonic() + 5, held=True, lease=1.0)
print("held", flush=True)
time.sleep(60)
"""


def test_the_tokens_of_a_killed_process_return_after_their_lease(
        redis_server: RedisServer) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, redis_server.url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        budget = SharedBudget(SharedStore(redis_server.url), "app-lease", "scope", 10)
        began = time.monotonic()
        assert not budget.acquire(began + 0.5, held=True), "all ten are held"
        assert budget.acquire(began + 5, held=True)
        waited = time.monotonic() - began
        # Each returns a window after its 1 s lease ended, counted from the moment it was taken.
        assert 0.5 <= waited <= 2.6, waited
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_confirming_queries_yield_to_work_waiting_in_another_process(
        redis_server: RedisServer) -> None:
    import threading

    budget = SharedBudget(SharedStore(redis_server.url), "app-yield", "scope", 1)
    other = SharedBudget(SharedStore(redis_server.url), "app-yield", "scope", 1)  # elsewhere
    assert budget.acquire(time.monotonic() + 2, held=True)
    got: list[bool] = []
    finish = threading.Event()

    def work() -> None:  # the other process's start: its token is held until its answer
        got.append(other.acquire(time.monotonic() + 5, held=True))
        finish.wait(10)
        other.release()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(functools.partial(_waiting, redis_server, budget, 1), timeout=5)
    budget.release()  # the token returns in a second: the waiting work takes it
    assert not budget.acquire(time.monotonic() + 1.5, confirming=True, held=True), \
        "a query waits while work waits"
    wait_for(lambda: got == [True], timeout=5)  # the work took the token that returned
    finish.set()
    worker.join(5)
    assert budget.acquire(time.monotonic() + 2.5, confirming=True, held=True)
    budget.release()


def test_callers_are_served_in_order_of_arrival_across_processes(
        redis_server: RedisServer) -> None:
    """First come, first served: with four tokens a second, twelve callers of two "processes"
    get them four by four in the order they asked, none starving."""
    import threading

    budgets = [SharedBudget(SharedStore(redis_server.url), "app-fifo", "scope", 4)
               for _ in range(2)]
    for _ in range(4):
        assert budgets[0].acquire(time.monotonic() + 2, held=True)
    order: list[int] = []
    threads = []
    for index in range(12):
        budget = budgets[index % 2]

        def take(index: int = index, budget: SharedBudget = budget) -> None:
            assert budget.acquire(time.monotonic() + 10, held=True)
            order.append(index)
            budget.release()

        threads.append(threading.Thread(target=take))
        threads[-1].start()
        wait_for(functools.partial(_waiting, redis_server, budgets[0], index + 1), timeout=5)
    for _ in range(4):
        budgets[0].release()
    for thread in threads:
        thread.join(15)
    assert [set(order[i:i + 4]) for i in (0, 4, 8)] == [{0, 1, 2, 3}, {4, 5, 6, 7},
                                                         {8, 9, 10, 11}]


def _waiting(server: RedisServer, budget: SharedBudget, count: int) -> bool:
    with server.client() as client:
        return int(client.zcard(budget._keys[2])) == count


def test_an_owner_on_another_machine_lives_by_its_heartbeat(redis_server: RedisServer) -> None:
    store = SharedStore(redis_server.url)
    elsewhere = RedisTaskJournal(store)
    elsewhere._owner = "another-runner/4242/1700000000.000"  # as that machine writes it
    entry = elsewhere.begin(KEY, "rid-1", URN, "d1")
    here = RedisTaskJournal(store)
    (found,) = here.holders(KEY)
    assert not found.abandoned(), "its heartbeat is there"
    assert not here.claim(entry, None), "owned: not taken"
    store.client.delete(store.key("{journal}", "owner:" + elsewhere.owner))
    (found,) = here.holders(KEY)
    assert found.abandoned(), "no heartbeat: its process is gone"
    assert here.claim(entry, found.owner)
    assert not elsewhere.claim(entry, found.owner), "taken once"


def test_the_journal_keeps_every_task_while_the_store_is_down(
        redis_server: RedisServer, tmp_path: Path) -> None:
    store = SharedStore(redis_server.url, say=lambda line: None, retry_after=0.2)
    journal = SharedTaskJournal(RedisTaskJournal(store), SqliteTaskJournal(tmp_path / "j"))
    before = journal.begin(KEY, "rid-1", URN, "d1")
    assert before > 0, "on the store"
    redis_server.stop()
    journal.started(before, "sid-1")  # the store fails: the entry is written into the file
    during = journal.begin(TaskKey("app-1", "annex", "527841"), "rid-2", URN, "d2")
    assert during < 0, "in the file"
    (copy,) = [e for e in journal.holders(KEY)]
    assert (copy.sid, copy.phase, copy.id < 0) == ("sid-1", Phase.STARTED, True)
    journal.returned(before)
    assert journal.holders(KEY)[0].phase is Phase.RETURNED
    redis_server.start()
    time.sleep(0.25)
    phases = {e.phase for e in journal.holders(KEY)}
    assert phases == {Phase.STARTING, Phase.RETURNED}, "the store's entry is read again"
    journal.recorded("app-1", "sid-1")
    assert [e.phase for e in journal.holders(KEY)] == [Phase.STARTING]
