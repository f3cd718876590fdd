"""At Agora's pace, under the real engine: the provider serves more than four engine calls at
once (the SDK's dynamic-provider server has four threads; `provider_process` widens it), and
sessions that ended on their own are not waited for one after another.

These tests fail when an SDK upgrade breaks the widening, so it fails CI, not a user's deploy.
"""

from __future__ import annotations

import copy
from typing import Final

import pytest
from support.engine_stack import ExampleStack

SESSIONS: Final = 10
SLOW_QUERY_MS: Final = 10_000  # longer than the engine takes to send all the creates, even loaded


def _many(example: ExampleStack, count: int) -> None:
    template = example.sessions["lobby"]
    example.sessions = {}
    for n in range(count):
        session = copy.deepcopy(template)
        session.update(cname=f"room-{n}", uid=str(920000 + n), fileNamePrefix=[f"room{n}"])
        example.sessions[f"room-{n}"] = session
        example.agora.admin.join(f"room-{n}", "1001", video=True)


def test_more_than_four_creates_run_at_once(
    example: ExampleStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many(example, SESSIONS)
    example.apply()
    # Each create's confirmation takes at least SLOW_QUERY_MS: with the SDK's four threads, the
    # fifth start could only follow a finished create, so after a query's answer.
    example.agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=SLOW_QUERY_MS)
    monkeypatch.setenv("PULUMI_PARALLEL", str(2 * SESSIONS))  # not this machine's CPU count
    try:
        up = example.up()
    finally:
        example.agora.admin.clear_faults()
    assert up.ok, up.terminal
    log = [r["operation"] for r in example.agora.admin.request_log()]
    starts = [index for index, operation in enumerate(log) if operation == "start"]
    queries = [index for index, operation in enumerate(log) if operation == "query"]
    assert len(starts) == SESSIONS
    # With four threads at most four creates can have started before any confirmation
    # answered (a fifth needs a finished create).
    at_once = sum(index < min(queries) for index in starts)
    assert at_once > 4, f"only {at_once} creates ran at once"
    assert example.destroy().ok


def test_the_sdk_server_is_left_alone_when_switched_off(
    example: ExampleStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented switch: `SNAPSHOT_RESOURCES_PROVIDER_ADAPTER=off` restores the SDK's four
    threads (and its tracebacks); the deploy still works."""
    _many(example, 6)
    example.apply()
    example.agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=1500)
    monkeypatch.setenv("SNAPSHOT_RESOURCES_PROVIDER_ADAPTER", "off")
    monkeypatch.setenv("PULUMI_PARALLEL", "12")
    try:
        up = example.up()
    finally:
        example.agora.admin.clear_faults()
    assert up.ok, up.terminal
    log = [r["operation"] for r in example.agora.admin.request_log()]
    starts = [index for index, operation in enumerate(log) if operation == "start"]
    queries = [index for index, operation in enumerate(log) if operation == "query"]
    at_once = sum(index < min(queries) for index in starts)
    assert at_once <= 4, "four at a time: later starts waited for a confirmation"
    assert example.destroy().ok
