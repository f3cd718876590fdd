"""Agora's REST contract over real HTTP on loopback: paths, shapes, statuses and codes (S2-S7)."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from support.waiting import wait_for

from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    RawAgora,
    run_emulator,
    snapshot_request,
)

CNAME, BOT = "lobby", "527841"




def _running(agora: RawAgora, handle: EmulatorHandle, publisher: str | None = "100",
             **request: object) -> tuple[str, str]:
    if publisher is not None:
        handle.admin.join(CNAME, publisher)
    return agora.begin(CNAME, BOT, snapshot_request(**request))  # type: ignore[arg-type]


# Gateway (S7, S22) --------------------------------------------------------------------------------

def test_missing_auth_is_401_unauthorized(agora_emulator: EmulatorHandle) -> None:
    response = requests.post(f"{agora_emulator.url}/v1/apps/{agora_emulator.app_id}"
                             "/cloud_recording/acquire", json={"cname": CNAME, "uid": BOT},
                             timeout=5)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"emulator-customer-id:wrong").decode(),
    "Bearer abc",
    "Basic !!!",
])
def test_wrong_auth_is_401_invalid_credentials(agora_emulator: EmulatorHandle,
                                               header: str) -> None:
    response = requests.post(f"{agora_emulator.url}/v1/apps/{agora_emulator.app_id}"
                             "/cloud_recording/acquire", json={"cname": CNAME, "uid": BOT},
                             headers={"Authorization": header}, timeout=5)
    assert (response.status_code, response.json()) == \
        (401, {"message": "Invalid authentication credentials"})


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/apps/{app}/cloud_recording/acquire/"),
    ("GET", "/v1/apps/{app}/cloud_recording/acquire"),
    ("POST", "/v1/apps/{app}/cloud_Recording/acquire"),  # case-sensitive (S10)
    ("POST", "/v1/apps/{app}/cloud_recording/resourceid/r/sid/s/mode/individual/query"),
    ("GET", "/v2/anything"),
])
def test_wrong_path_or_method_is_404_no_route(agora_emulator: EmulatorHandle, method: str,
                                              path: str) -> None:
    response = requests.request(method, agora_emulator.url + path.format(
        app=agora_emulator.app_id), auth=agora_emulator.auth, json={}, timeout=5)
    assert (response.status_code, response.json()) == \
        (404, {"message": "no Route matched with those values"})


def test_a_body_that_is_not_json_is_code_8(agora: RawAgora) -> None:
    response = agora.session.post(f"{agora.base}/acquire", data=b"cname=lobby", timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, 8)


# acquire / start (S2, S3) -------------------------------------------------------------------------

def test_acquire_answers_cname_uid_and_resource_id(agora: RawAgora) -> None:
    response = agora.acquire(CNAME, BOT, {"resourceExpiredHour": 24, "scene": 0})
    body = response.json()
    assert (response.status_code, sorted(body)) == (200, ["cname", "resourceId", "uid"])
    assert (body["cname"], body["uid"]) == (CNAME, BOT)


def test_acquire_input_error_is_400_with_code_and_reason(agora: RawAgora) -> None:
    response = agora.acquire(CNAME, "0")
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert response.json()["reason"].startswith("uid:")


def test_start_answers_the_sid(agora: RawAgora) -> None:
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    response = agora.start(rid, CNAME, BOT, snapshot_request())
    body = response.json()
    assert (response.status_code, sorted(body)) == (200, ["cname", "resourceId", "sid", "uid"])
    assert body["resourceId"] == rid
    assert len(body["sid"]) == 32


def test_start_with_a_snapshot_rule_broken_is_400_code_2(agora: RawAgora) -> None:
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    request = snapshot_request()
    request["recordingFileConfig"] = {"avFileType": ["hls"]}
    response = agora.start(rid, CNAME, BOT, request)
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert "recordingFileConfig" in response.json()["reason"]


def test_start_in_mix_mode_is_400_code_2(agora: RawAgora) -> None:
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    response = agora.start(rid, CNAME, BOT, snapshot_request(), mode="mix")
    assert (response.status_code, response.json()["code"]) == (400, 2)


def test_a_repeated_start_is_201_code_7(agora: RawAgora) -> None:
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    assert agora.start(rid, CNAME, BOT, snapshot_request()).status_code == 200
    again = agora.start(rid, CNAME, BOT, snapshot_request())
    assert (again.status_code, again.json()) == (201, {"code": 7, "reason": "already started"})


def test_a_second_task_with_the_same_cname_and_uid_is_code_53(agora: RawAgora) -> None:
    agora.begin(CNAME, BOT, snapshot_request())
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    response = agora.start(rid, CNAME, BOT, snapshot_request())
    assert (response.status_code, response.json()["code"]) == (400, 53)


def test_the_same_channel_with_another_uid_is_a_second_task(agora: RawAgora) -> None:
    agora.begin(CNAME, BOT, snapshot_request())
    rid = agora.acquire(CNAME, "527842").json()["resourceId"]
    assert agora.start(rid, CNAME, "527842", snapshot_request()).status_code == 200


def test_resource_id_expires_after_five_emulated_minutes() -> None:
    with run_emulator(time_scale=3000, qps=1000) as handle:  # 300 s in 0.1 s
        agora = RawAgora(handle)
        rid = agora.acquire(CNAME, BOT).json()["resourceId"]
        time.sleep(0.15)
        response = agora.start(rid, CNAME, BOT, snapshot_request())
        agora.close()
    assert (response.status_code, response.json()["code"]) == (400, 433)


# query (S4) ---------------------------------------------------------------------------------------

def test_query_of_a_snapshot_task_has_only_status_and_slice_start_time(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    wait_for(lambda: agora_emulator.admin.task(sid)["status"] == 5)  # admin: no QPS limit
    body = agora.query(rid, sid).json()
    assert body["serverResponse"]["status"] == 5
    assert sorted(body) == ["cname", "resourceId", "serverResponse", "sid", "uid"]
    assert sorted(body["serverResponse"]) == ["sliceStartTime", "status"]
    assert abs(body["serverResponse"]["sliceStartTime"] / 1000 - time.time()) < 3600


def test_query_status_reaches_4_without_publishers(agora: RawAgora,
                                                   agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator, publisher=None, max_idle_time=300)
    wait_for(lambda: agora_emulator.admin.task(sid)["status"] == 4)
    assert agora.query(rid, sid).json()["serverResponse"]["status"] == 4


def test_query_of_an_unknown_sid_is_404_failed_to_find_worker(agora: RawAgora) -> None:
    rid = agora.acquire(CNAME, BOT).json()["resourceId"]
    response = agora.query(rid, "0" * 32)
    assert (response.status_code, response.json()) == \
        (404, {"code": 404, "reason": "failed to find worker"})


# update (S5) --------------------------------------------------------------------------------------

def test_update_changes_which_uids_are_captured(agora: RawAgora,
                                                agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.join(CNAME, "200")
    rid, sid = _running(agora, agora_emulator, subscribe_video_uids=["100"])
    response = agora.update(rid, sid, CNAME, BOT, {"streamSubscribe": {
        "videoUidList": {"subscribeVideoUids": ["200"]}}})
    assert (response.status_code, sorted(response.json())) == \
        (200, ["cname", "resourceId", "sid", "uid"])
    assert agora_emulator.admin.task(sid)["publishers"] == ["200"]


def test_start_and_update_take_the_blacklist_spelling_of_the_official_clients(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    for uid in ("100", "200"):
        agora_emulator.admin.join(CNAME, uid)
    request = snapshot_request(subscribe_video_uids=None)
    request["recordingConfig"]["unSubscribeVideoUids"] = ["100"]
    rid, sid = agora.begin(CNAME, BOT, request)
    started = agora_emulator.admin.task(sid)["publishers"]
    response = agora.update(rid, sid, CNAME, BOT, {"streamSubscribe": {
        "videoUidList": {"unSubscribeVideoUids": ["200"]}}})
    assert (started, response.status_code) == (["200"], 200)
    assert agora_emulator.admin.task(sid)["publishers"] == ["100"]


def test_update_with_a_broken_list_is_400_code_2(agora: RawAgora,
                                                 agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    response = agora.update(rid, sid, CNAME, BOT, {"streamSubscribe": {
        "videoUidList": {"subscribeVideoUids": []}}})
    assert (response.status_code, response.json()["code"]) == (400, 2)


def test_update_replaces_the_storage_config(agora: RawAgora,
                                            agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    storage = snapshot_request(bucket="rotated")["storageConfig"]
    assert agora.update(rid, sid, CNAME, BOT, {"storageConfig": storage}).status_code == 200
    wait_for(lambda: (agora_emulator.storage_dir / "rotated").is_dir())


# stop (S6, S7) ------------------------------------------------------------------------------------

def test_stop_answers_uploaded(agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 2)
    response = agora.stop(rid, sid, CNAME, BOT)
    assert response.status_code == 200
    assert response.json() == {"cname": CNAME, "uid": BOT, "resourceId": rid, "sid": sid,
                               "serverResponse": {"uploadingStatus": "uploaded"}}


def test_stop_while_exiting_is_49() -> None:
    with run_emulator(time_scale=50, exit_seconds=60) as handle:  # exiting for 1.2 s
        agora = RawAgora(handle)
        rid, sid = _running(agora, handle)
        wait_for(lambda: handle.admin.task(sid)["files"] >= 1)
        assert agora.stop(rid, sid, CNAME, BOT).status_code == 200
        again = agora.stop(rid, sid, CNAME, BOT)
        agora.close()
    assert (again.status_code, again.json()["code"]) == (400, 49)


def test_query_while_exiting_shows_status_6_to_8(agora: RawAgora,
                                                 agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 1)
    agora.stop(rid, sid, CNAME, BOT)
    assert agora.query(rid, sid).json()["serverResponse"]["status"] in (6, 7, 8)


def test_stop_with_nothing_captured_is_206_code_435(agora: RawAgora,
                                                    agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator, publisher=None)
    response = agora.stop(rid, sid, CNAME, BOT)
    assert (response.status_code, response.json()) == \
        (206, {"code": 435, "reason": "no recorded data"})


def test_after_the_exit_every_call_is_404(agora: RawAgora,
                                          agora_emulator: EmulatorHandle) -> None:
    rid, sid = _running(agora, agora_emulator)
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 1)
    agora.stop(rid, sid, CNAME, BOT)
    wait_for(lambda: agora_emulator.admin.task(sid)["state"] == "gone")
    answers = [agora.query(rid, sid), agora.stop(rid, sid, CNAME, BOT),
               agora.update(rid, sid, CNAME, BOT, {"streamSubscribe": {
                   "videoUidList": {"subscribeVideoUids": ["1"]}}})]
    assert {(a.status_code, a.json()["reason"]) for a in answers} == \
        {(404, "failed to find worker")}


def test_ncs_ip_lists_loopback(agora_emulator: EmulatorHandle) -> None:
    response = requests.get(f"{agora_emulator.url}/v1/ncs/ip", auth=agora_emulator.auth,
                            timeout=5)
    assert response.json() == {"data": {"service": {"hosts": [{"primaryIP": "127.0.0.1"}]}}}


@pytest.mark.parametrize(("app", "path", "body", "code"), [
    ("same", "acquire", {"cname": "bad/name", "uid": BOT}, 401),  # invalid_channel_name (S7)
    ("f" * 32, "acquire", {"cname": CNAME, "uid": BOT}, 400),  # invalid_appid (S7)
    ("same", "resourceid/not-issued/mode/individual/start",
     {"cname": CNAME, "uid": BOT, "clientRequest": {}}, 1001),  # unparsable resource id (S18)
])
def test_other_documented_400_codes(agora_emulator: EmulatorHandle, app: str, path: str,
                                    body: dict[str, object], code: int) -> None:
    app_id = agora_emulator.app_id if app == "same" else app
    response = requests.post(f"{agora_emulator.url}/v1/apps/{app_id}/cloud_recording/{path}",
                             json=body, auth=agora_emulator.auth, timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, code)


# Admin: a task another emulator started, taken over with its ids ---------------------------------

def test_a_restored_task_answers_query_and_stop_under_the_ids_another_emulator_gave(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    with run_emulator() as earlier:
        before = RawAgora(earlier)
        resource_id, sid = before.begin(CNAME, BOT, snapshot_request())
        before.close()
    unknown = agora.query(resource_id, sid)
    assert (unknown.status_code, unknown.json()["code"]) == (400, 1001)  # not issued here (S18)

    described = agora_emulator.admin.restore_task(
        resource_id=resource_id, sid=sid, cname=CNAME, uid=BOT, client_request=snapshot_request())
    assert (described["sid"], described["resourceId"], described["state"]) == \
        (sid, resource_id, "running")
    queried = agora.query(resource_id, sid)
    assert queried.status_code == 200, queried.text
    assert queried.json()["sid"] == sid
    stopped = agora.stop(resource_id, sid, CNAME, BOT)
    assert stopped.status_code in (200, 206), stopped.text
    assert agora_emulator.admin.task(sid)["state"] != "running"


def test_restoring_a_task_whose_sid_or_channel_is_taken_or_whose_body_is_invalid_is_400(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    _, sid = _running(agora, agora_emulator)
    admin = agora_emulator.admin
    with pytest.raises(requests.HTTPError, match="400"):
        admin.restore_task(resource_id="elsewhere", sid=sid, cname=CNAME, uid="9",
                           client_request=snapshot_request())
    with pytest.raises(requests.HTTPError, match="400"):
        admin.restore_task(resource_id="elsewhere", sid="another", cname=CNAME, uid=BOT,
                           client_request=snapshot_request())
    without_storage = {k: v for k, v in snapshot_request().items() if k != "storageConfig"}
    with pytest.raises(requests.HTTPError, match="400"):
        admin.restore_task(resource_id="elsewhere", sid="another", cname=CNAME, uid="9",
                           client_request=without_storage)
    assert [t["sid"] for t in admin.tasks()] == [sid]
