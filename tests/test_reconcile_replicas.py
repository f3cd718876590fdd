"""Reconciler replicas on a real redis-server (``reconcile.replicas``): a notification taken once
across replicas and seen by all, one replica acting under the lease, a takeover when the holder
dies, and each replica acting alone while the store fails. The engine test
(tests/engine/test_engine_shared_store.py) runs replicas as processes under the real engine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support.fake_stack import NOW, Clock, FakeStack, exit_event
from support.waiting import wait_for

from snapshot_resources.events import RecordingEvent, build_event, sign_headers
from snapshot_resources.reconcile import Controller, ControllerSettings, NotificationReceiver
from snapshot_resources.reconcile.replicas import ReplicaSet, Role
from snapshot_resources.shared_store import SharedStore
from snapshot_resources.testing.redis import RedisServer

SECRET = "replica-ncs-secret-0b7a"
STACK = "agora-snapshots/dev"


def _replica(server: RedisServer, name: str, ttl: float = 1.0) -> ReplicaSet:
    store = SharedStore(server.url, say=lambda line: None, retry_after=0.3, timeout=0.5)
    return ReplicaSet(store, STACK, replica=name, lease_ttl=ttl)


def _crash(replica: ReplicaSet) -> None:
    """As kill -9 leaves it: its threads stop, its lease is not given up."""
    replica._stop.set()
    for thread in replica._threads:
        thread.join(5)


def _body(notice_id: str) -> bytes:
    event = build_event(RecordingEvent.SESSION_EXIT, {"cname": "ch-lobby", "uid": "900001", "sid": "s1", "sequence": 0,
                             "sendts": 1, "serviceType": 0, "details": {"exitStatus": 0}},
                        notice_id=notice_id, notify_ms=int(time.time() * 1000))
    return json.dumps(event).encode()


def _post(receiver: NotificationReceiver, body: bytes) -> int:
    headers = {"Content-Type": "application/json", **sign_headers(body, SECRET)}
    return requests.post(f"{receiver.url}/ncs", data=body, headers=headers,
                         timeout=10).status_code


def _controller(stack: FakeStack, replicas: ReplicaSet) -> Controller:
    return Controller(stack, declared=lambda: frozenset({"lobby", "stage"}), clock=Clock(),
                      replicas=replicas,
                      settings=ControllerSettings(interval=600, batch_window=0, retry_delay=5))


@pytest.fixture
def pair(redis_server: RedisServer) -> Iterator[tuple[ReplicaSet, ReplicaSet]]:
    a, b = _replica(redis_server, "replica-a"), _replica(redis_server, "replica-b")
    a.start()
    b.start()
    yield a, b
    for replica in (a, b):
        replica.stop()


def test_one_replica_holds_the_lease_and_another_takes_over_when_it_dies(
        pair: tuple[ReplicaSet, ReplicaSet]) -> None:
    a, b = pair
    assert (a.role, b.role) == (Role.LEADER, Role.FOLLOWER)
    assert a.holder == b.holder == "replica-a"
    _crash(a)
    began = time.monotonic()
    wait_for(lambda: b.role is Role.LEADER, timeout=5)
    assert time.monotonic() - began <= b.lease_ttl + 0.6, "within the lease's life"
    assert b.status()["leaseHolder"] == "replica-b"


def test_a_replica_that_stops_gives_the_lease_up_at_once(
        pair: tuple[ReplicaSet, ReplicaSet]) -> None:
    a, b = pair
    a.stop()
    b._renew()
    assert b.role is Role.LEADER


def test_a_notification_is_taken_once_and_every_replica_hears_it(
        pair: tuple[ReplicaSet, ReplicaSet]) -> None:
    heard: dict[str, list[Any]] = {"a": [], "b": []}
    receivers = []
    for name, replica in zip("ab", pair, strict=True):
        stack = FakeStack({"lobby": "s1", "stage": "s2"})
        controller = _controller(stack, replica)

        def notify(notice: Any, name: str = name) -> str:
            heard[name].append(notice)
            return "accepted"

        controller.notify = notify  # type: ignore[method-assign]
        controller.exported.set()  # the state was read: follow the stream
        receivers.append(NotificationReceiver(controller, secret=SECRET, replicas=replica))
    with receivers[0], receivers[1]:
        body = _body("n-1")
        assert _post(receivers[0], body) == 200
        assert _post(receivers[1], body) == 200  # Agora's redelivery, to the other replica
        assert _post(receivers[1], _body("n-2")) == 200
        wait_for(lambda: len(heard["a"]) == 2 and len(heard["b"]) == 2, timeout=10)
        time.sleep(0.5)
        for name in "ab":
            assert [n.notice_id for n in heard[name]] == ["n-1", "n-2"]
        duplicates = receivers[1].controller.metrics.value(
            "snapshot_reconcile_notifications_total", product="cloud_recording", event="11",
            outcome="duplicate")
        assert duplicates == 1


def test_only_the_leader_acts_on_an_end_that_the_follower_received(
        pair: tuple[ReplicaSet, ReplicaSet]) -> None:
    a, b = pair
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    leader, follower = _controller(stack, a), _controller(stack, b)
    leader.step()  # the first round: a sweep
    follower.step()  # reads the state, acts on nothing
    assert stack.ops("refresh") == [("refresh", ("lobby", "stage"))]
    stack.calls.clear()
    for notice in exit_event("s1", "ch-lobby"):
        leader.notify(notice)  # as the stream hands it to both
        follower.notify(notice)
    follower.step()
    assert stack.ops("forget", "up") == []
    leader.step()
    assert stack.ops("forget", "up") == [("forget", ("lobby",)), ("up", ("lobby",))]
    assert follower.status()["replica"]["role"] == "follower"
    # The follower takes over: its queued restart is for a task already replaced.
    _crash(a)
    wait_for(lambda: b.role is Role.LEADER, timeout=5)
    stack.calls.clear()
    follower.step()
    assert stack.ops("forget", "up") == [], "restarted once"


def test_each_replica_acts_alone_while_the_store_fails_and_rejoins_after(
        pair: tuple[ReplicaSet, ReplicaSet], redis_server: RedisServer) -> None:
    a, b = pair
    redis_server.freeze()
    try:
        wait_for(lambda: a.role is Role.ALONE and b.role is Role.ALONE, timeout=5)
        assert a.may_act()
        assert b.may_act()
        metrics = a.collector()
        values = {(s.name, tuple(s.labels.values())): s.value
                  for family in metrics.collect() for s in family.samples}
        assert values[("snapshot_reconcile_shared_store_up", ())] == 0.0
        assert values[("snapshot_reconcile_replica_role", ("replica-a", "alone"))] == 1.0
    finally:
        redis_server.thaw()
    wait_for(lambda: {a.role, b.role} == {Role.LEADER, Role.FOLLOWER}, timeout=5)


def test_the_new_leader_sweeps_on_the_schedule_of_the_last_sweep(
        pair: tuple[ReplicaSet, ReplicaSet]) -> None:
    a, b = pair
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    leader, follower = _controller(stack, a), _controller(stack, b)
    leader.step()
    assert b.last_sweep() == NOW
    _crash(a)
    wait_for(lambda: b.role is Role.LEADER, timeout=5)
    stack.calls.clear()
    follower.step()
    assert stack.ops("refresh") == [], "the last sweep was moments ago"
