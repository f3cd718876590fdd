"""A session whose resource ID expires (docs/decisions.md "A resource ID that expires"): `up`
renews it ahead of time, and past the expiry refresh and destroy still succeed and say why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.provider_settings import provider_config
from support.sessions import APP_ID, session_inputs
from support.waiting import wait_for

from snapshot_resources import rules
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.provider_host import ProviderHost

# One emulated hour per real second: a 1-hour resource ID expires after about 1 s.
HOUR_PER_SECOND = 3600.0


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _outputs(expires_in: timedelta, hours: int = 720) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {**session_inputs(APP_ID, resourceExpiredHour=hours), "sid": "s1",
            "resourceId": "r1", "status": 5, "startedAt": _iso(now),
            "resourceExpiresAt": _iso(now + expires_in)}


@pytest.mark.parametrize(("hours", "left", "renews"), [
    (720, timedelta(days=20), False),
    (720, timedelta(hours=25), False),
    (720, timedelta(hours=23), True),   # at most a day ahead
    (720, timedelta(minutes=-5), True),  # already expired
    (4, timedelta(hours=2), False),
    (4, timedelta(minutes=50), True),   # a quarter of a 4-hour lifetime
])
def test_diff_renews_a_resource_id_ahead_of_its_expiry(
    hours: int, left: timedelta, renews: bool
) -> None:
    olds = _outputs(left, hours)
    news = session_inputs(APP_ID, resourceExpiredHour=hours)
    diff = SnapshotSessionProvider().diff("s1", olds, news)
    if renews:
        assert diff.changes is True
        assert diff.replaces == ["resourceExpiredHour"]
        assert diff.delete_before_replace
    else:
        assert diff.changes is False


def test_the_renewal_margin_is_a_quarter_of_the_lifetime_at_most_a_day() -> None:
    assert rules.resource_id_renew_before(720) == 24 * 3600
    assert rules.resource_id_renew_before(4) == 3600


def test_a_state_without_the_output_renews_from_started_at() -> None:
    """States written before `resourceExpiresAt` existed: startedAt + resourceExpiredHour."""
    olds = _outputs(timedelta(days=1))
    del olds["resourceExpiresAt"]
    olds["startedAt"] = _iso(datetime.now(UTC) - timedelta(hours=719))
    diff = SnapshotSessionProvider().diff("s1", olds, session_inputs(APP_ID))
    assert diff.replaces == ["resourceExpiredHour"]


@pytest.fixture
def fast_clock(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(time_scale=HOUR_PER_SECOND, storage_dir=tmp_path / "storage") as handle:
        yield handle


def test_past_the_expiry_refresh_keeps_and_destroy_removes_saying_what_still_runs(
    fast_clock: EmulatorHandle,
) -> None:
    fast_clock.admin.join("lobby", "1001", video=True)
    with ProviderHost() as host:
        host.configure(provider_config(fast_clock), secret_keys=("agora:customerSecret",))
        session = host.resource(SnapshotSessionProvider(), name="lobby")
        session.check(session_inputs(fast_clock.app_id, resourceExpiredHour=1,
                                     snapshotConfig={"captureInterval": 3600}))
        created = session.create()
        assert created.outs["resourceExpiresAt"]
        sid = created.id

        wait_for(lambda: _expired(fast_clock, sid), timeout=10)
        read = session.read()
        # The host reads the provider's stderr as it comes (complete only after stop): wait for
        # read's message rather than race it (seen failing under a loaded `make test`).
        wait_for(lambda: "its resource ID expired at" in host.stderr_text(), timeout=10)
        said_by_read = host.stderr_text()
        session.delete()

    assert read.id == sid  # kept: the task may still run
    assert read.outs is not None
    assert read.outs.get("status") is None  # unknown (a None output is dropped on the wire)
    assert f"session {sid} on channel 'lobby': its resource ID expired at" in said_by_read
    assert "the next `pulumi up` replaces it" in said_by_read
    assert "it ends 300 s after the last user stops publishing (maxIdleTime)" in said_by_read
    assert "it is removed from the state" in host.stderr_text()
    assert session.id is None


def _expired(emulator: EmulatorHandle, sid: str) -> bool:
    from snapshot_resources.testing.emulator import RawAgora

    [task] = [t for t in emulator.admin.tasks() if t["sid"] == sid]
    raw = RawAgora(emulator)
    try:
        code: object = raw.query(task["resourceId"], sid).json().get("code")
        return code == 433
    finally:
        raw.close()
