"""High-availability failover: 404 while the task moves, then bak<n>_ files (S7 FAQ, S8, S12)."""

from __future__ import annotations

import time

from support.waiting import wait_for

from snapshot_resources.naming import parse_snapshot_name
from snapshot_resources.testing.emulator import EmulatorHandle, RawAgora, snapshot_request

CNAME, BOT = "lobby", "527841"



def test_failover_answers_404_then_continues_with_bak0_files(
        agora_emulator: EmulatorHandle) -> None:
    admin = agora_emulator.admin
    agora = RawAgora(agora_emulator)
    admin.join(CNAME, "100")
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b", capture_interval=2))
    wait_for(lambda: admin.task(sid)["files"] >= 1)
    admin.failover(sid, downtime_seconds=15)  # 0.3 s at time scale 50
    during = [agora.query(rid, sid), agora.update(rid, sid, CNAME, BOT, {"streamSubscribe": {
        "videoUidList": {"subscribeVideoUids": ["#allstream#"]}}}),
              agora.stop(rid, sid, CNAME, BOT)]
    wait_for(lambda: admin.task(sid)["state"] == "running")
    after = agora.query(rid, sid)
    wait_for(lambda: any(n.startswith("bak0_") for n in _names(agora_emulator)))
    assert agora.stop(rid, sid, CNAME, BOT).status_code == 200
    agora.close()
    assert {(r.status_code, r.json()["reason"]) for r in during} == \
        {(404, "failed to find worker")}
    assert (after.status_code, after.json()["sid"]) == (200, sid)
    parsed = [parse_snapshot_name(name) for name in _names(agora_emulator)]
    assert {p.failover_index for p in parsed} == {None, 0}
    first_bak = min(p.taken_at for p in parsed if p.failover_index == 0)
    assert all(p.taken_at < first_bak for p in parsed if p.failover_index is None)
    new_uids = [e["payload"]["details"]["newUid"] for e in admin.events()
                if e["eventType"] == 12]
    assert len(new_uids) == 1
    assert isinstance(new_uids[0], int)


def test_the_default_failover_window_is_30_emulated_seconds(
        agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(max_idle_time=300))
    agora_emulator.admin.failover(sid)
    time.sleep(0.4)  # 20 emulated seconds: still moving
    still_moving = agora.query(rid, sid).status_code
    wait_for(lambda: agora_emulator.admin.task(sid)["state"] == "running", timeout=2)
    back = agora.query(rid, sid).status_code
    agora.close()
    assert (still_moving, back) == (404, 200)


def _names(handle: EmulatorHandle) -> list[str]:
    root = handle.storage_dir / "b"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
