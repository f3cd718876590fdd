"""A create that has seen a sid never loses it (docs/decisions.md "A failed create").

Create fails only when the task is known not to be running: it exited, it stayed gone past the
failover grace, or it never reached status 4/5 and was stopped. Every other failure after start
(query answers lost to 429, 5xx or the network) records the session, with a warning, so that
refresh and destroy can manage it; before, create failed and left the task billing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from support.agora_stub import Reply, StubAgora, run_stub
from support.provider_settings import provider_config
from support.sessions import APP_ID, session_inputs
from support.waiting import wait_for

from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.provider import CreateFailedError, SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle

FAST = {
    "agora:pollInterval": "0.01", "agora:startTimeout": "0.3", "agora:failoverGrace": "0.2",
    "agora:retryDelayScale": "0.001",
}


def _provider(endpoint: str, **settings: str) -> SnapshotSessionProvider:
    reset_registry()
    provider = SnapshotSessionProvider()
    raw = {"agora:customerId": "cid", "agora:customerSecret": "csecret",
           "agora:endpoint": endpoint, **FAST, **settings}
    provider.configure(ConfigureRequest(Config(raw, "agora-snapshots")))
    return provider


@pytest.fixture
def stub() -> Iterator[StubAgora]:
    with run_stub() as running:
        yield running


def _query(status: int) -> Reply:
    return Reply(200, {"cname": "c1", "uid": "527841", "resourceId": "rid-1", "sid": "sid-1",
                       "serverResponse": {"status": status, "sliceStartTime": 0}})


def _stops(stub: StubAgora) -> list[str]:
    return [p for p in stub.paths() if p.endswith("/stop")]


def test_a_task_that_exited_fails_create_and_is_not_stopped(stub: StubAgora) -> None:
    stub.script(Reply(), Reply(), _query(8))  # acquire, start, then "exited"
    with pytest.raises(CreateFailedError, match=r"did not start: .*exited.*nothing to stop"):
        _provider(stub.url).create(session_inputs(APP_ID))
    assert _stops(stub) == []


def test_a_task_that_never_starts_is_stopped_and_create_fails(stub: StubAgora) -> None:
    stub.route("/query", _query(2))  # stuck at "components starting"
    provider = _provider(stub.url)  # the stub answers stop with its default success body
    with pytest.raises(CreateFailedError, match=r"did not start: .*status 4 or 5.*was stopped"):
        provider.create(session_inputs(APP_ID))
    assert len(_stops(stub)) == 1


def test_a_task_that_never_starts_and_cannot_be_stopped_is_recorded(
    stub: StubAgora, capfd: pytest.CaptureFixture[str]
) -> None:
    stub.route("/query", _query(2))
    stub.route("/stop", Reply(500, {"code": 500, "reason": "internal"}))
    created = _provider(stub.url).create(session_inputs(APP_ID))
    assert created.id == "sid-1"
    assert created.outs is not None
    assert created.outs["status"] == 2
    assert "could not be stopped" in capfd.readouterr().err


def test_a_task_gone_past_the_failover_grace_fails_create(stub: StubAgora) -> None:
    stub.route("/query", Reply(404, {"code": 404, "reason": "failed to find worker"}))
    with pytest.raises(CreateFailedError, match="did not know the task"):
        _provider(stub.url).create(session_inputs(APP_ID))
    assert _stops(stub) == []


def test_a_failover_during_confirmation_is_ridden_out(stub: StubAgora) -> None:
    gone = Reply(404, {"code": 404, "reason": "failed to find worker"})
    stub.script(Reply(), Reply(), gone, gone, _query(5))
    created = _provider(stub.url, **{"agora:failoverGrace": "5"}).create(session_inputs(APP_ID))
    assert created.outs is not None
    assert created.outs["status"] == 5


# -- the reproducer, against the emulator ----------------------------------------------


def test_query_and_stop_failing_after_start_record_the_session_instead_of_losing_it(
    emulator: EmulatorHandle, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.admin.join("lobby", "1001", video=True)
    emulator.admin.set_faults(rate=1, kinds=["429"], operations=["query", "stop"])
    provider = _provider(emulator.url, **{
        k: v for k, v in provider_config(emulator).items() if k != "agora:endpoint"})

    created = provider.create(session_inputs(emulator.app_id))
    assert created.outs is not None

    err = capfd.readouterr().err
    assert f"session {created.id} was started, but its status could not be read" in err
    assert "maxIdleTime" not in err  # no false promise that it ends by itself
    assert created.outs["status"] is None
    [task] = emulator.admin.tasks()
    assert task["sid"] == created.id  # recorded: the state knows the running task
    # Once Agora answers again, refresh confirms it and destroy stops it.
    emulator.admin.clear_faults()
    read = provider.read(created.id, created.outs)
    assert read.outs is not None
    assert read.outs["status"] in (4, 5)
    provider.delete(created.id, created.outs)
    wait_for(lambda: emulator.admin.tasks()[0]["state"] in ("exiting", "gone"))
