"""agora/wire.py: the exact request bodies (docs/agora-api.md sections 2, 3, 4.4 and 5)."""

from __future__ import annotations

from typing import Any

import pytest

from snapshot_resources import rules
from snapshot_resources.agora import wire
from snapshot_resources.schema_gen import start_body_problems
from snapshot_resources.spec import SessionSpec, SpecError, parse_session
from snapshot_resources.target import StorageTarget

STORAGE: StorageTarget = {
    "vendor": 2, "region": 3, "bucket": "my-snapshots", "accessKey": "AK-SECRET-3f1",
    "secretKey": "SK-SECRET-77a", "fileNamePrefix": ["dir1", "dir2"],
}


def session(**extra: Any) -> SessionSpec:
    return parse_session({"cname": "lobby", "uid": 527841, **extra})


def test_start_body_of_the_screenshot_guide_example() -> None:
    # The seed of docs/agora-api.md section 3.1 (S8, S3, S19), with the defaults this tool always sends.
    spec = session(recordingConfig={"channelType": 1, "maxIdleTime": 30,
                                    "subscribeVideoUids": ["#allstream#"]},
                   snapshotConfig={"captureInterval": 5})
    body = wire.start_body(spec, STORAGE, token="006-token")
    assert body == {
        "cname": "lobby",
        "uid": "527841",
        "clientRequest": {
            "token": "006-token",
            "recordingConfig": {"channelType": 1, "streamTypes": 2, "maxIdleTime": 30,
                                "videoStreamType": 0, "decryptionMode": 0,
                                "subscribeVideoUids": ["#allstream#"], "subscribeUidGroup": 0},
            "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
            "storageConfig": dict(STORAGE),
        },
    }
    assert start_body_problems(body) == []


def test_stream_types_and_uid_group_are_always_sent() -> None:
    recording = wire.start_body(session(), STORAGE)["clientRequest"]["recordingConfig"]
    assert recording["streamTypes"] == rules.STREAM_TYPES.default
    assert recording["subscribeUidGroup"] == 0


@pytest.mark.parametrize("written", ["unsubscribeVideoUids", "unSubscribeVideoUids"])
def test_blacklists_are_sent_as_the_official_clients_spell_them(written: str) -> None:
    spec = session(recordingConfig={written: [5]})
    recording = wire.start_body(spec, STORAGE)["clientRequest"]["recordingConfig"]
    assert recording["unSubscribeVideoUids"] == ["5"]
    assert "unsubscribeVideoUids" not in recording
    update = wire.update_body(spec)["clientRequest"]["streamSubscribe"]
    assert update["videoUidList"] == {"unSubscribeVideoUids": ["5"]}


def test_decryption_fields_are_sent_when_set() -> None:
    salt = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    spec = session(recordingConfig={"decryptionMode": 7, "secret": "k", "salt": salt})
    recording = wire.start_body(spec, STORAGE)["clientRequest"]["recordingConfig"]
    assert (recording["decryptionMode"], recording["secret"], recording["salt"]) == (7, "k", salt)


def test_token_argument_wins_over_the_spec_and_none_sends_none() -> None:
    assert wire.start_body(session(token="spec"), STORAGE, token="arg")["clientRequest"][
        "token"] == "arg"
    assert wire.start_body(session(token="spec"), STORAGE)["clientRequest"]["token"] == "spec"
    assert "token" not in wire.start_body(session(), STORAGE)["clientRequest"]


def test_start_body_never_sends_recording_file_config() -> None:
    assert "recordingFileConfig" not in wire.start_body(session(), STORAGE)["clientRequest"]


def test_start_body_copies_the_storage_target() -> None:
    storage: StorageTarget = {**STORAGE, "fileNamePrefix": ["a"]}
    body = wire.start_body(session(), storage)
    body["clientRequest"]["storageConfig"]["fileNamePrefix"].append("b")
    assert storage["fileNamePrefix"] == ["a"]


@pytest.mark.parametrize(("change", "path", "rule_id"), [
    ({"region": 28}, ("clientRequest", "storageConfig", "region"), "storage_region"),
    ({"bucket": "My_Bucket"}, ("clientRequest", "storageConfig", "bucket"), "bucket_name"),
    ({"fileNamePrefix": ["x" * 100, "y" * 28]}, ("clientRequest", "storageConfig",
                                                 "fileNamePrefix"), "file_name_prefix"),
    ({"vendor": 11, "region": 0}, ("clientRequest", "storageConfig", "extensionParams"),
     "extension_endpoint"),
    ({"extensionParams": {"sse": "kms"}}, ("clientRequest", "storageConfig", "extensionParams"),
     "extension_sse"),
])
def test_start_body_refuses_a_bad_storage_target(
    change: dict[str, Any], path: tuple[str, ...], rule_id: str
) -> None:
    storage: Any = {**STORAGE, **change}
    with pytest.raises(SpecError) as caught:
        wire.start_body(session(), storage)
    assert any(p.rule_id == rule_id and p.path[: len(path)] == path
               for p in caught.value.problems), str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_start_body_problem_messages_hide_the_keys() -> None:
    storage: Any = {**STORAGE, "accessKey": ["AK-SECRET-3f1"], "secretKey": 77123}
    with pytest.raises(SpecError) as caught:
        wire.start_body(session(), storage)
    assert {p.path[-1] for p in caught.value.problems} >= {"accessKey", "secretKey"}
    assert "AK-SECRET-3f1" not in str(caught.value)
    assert "77123" not in str(caught.value)


# --------------------------------------------------------------------------------------------------
# acquire, update, stop


def test_acquire_body_is_scene_zero_with_the_expiry() -> None:
    assert wire.acquire_body(session(resourceExpiredHour=24)) == {
        "cname": "lobby", "uid": "527841",
        "clientRequest": {"scene": 0, "resourceExpiredHour": 24},
    }


def test_acquire_body_sends_region_when_given() -> None:
    assert wire.acquire_body(session(region="EU"))["clientRequest"]["region"] == "EU"


def test_acquire_start_parameter_is_the_start_client_request() -> None:
    spec = session()
    start = wire.start_body(spec, STORAGE, token="t")
    acquire = wire.acquire_body(spec, start_body=start)
    assert acquire["clientRequest"]["startParameter"] == start["clientRequest"]
    acquire["clientRequest"]["startParameter"]["token"] = "changed"
    assert start["clientRequest"]["token"] == "t"


def test_update_body_carries_the_lists() -> None:
    spec = session(recordingConfig={"subscribeVideoUids": [123, "456"],
                                    "subscribeAudioUids": ["#allstream#"]})
    assert wire.update_body(spec) == {
        "cname": "lobby", "uid": "527841",
        "clientRequest": {"streamSubscribe": {
            "videoUidList": {"subscribeVideoUids": ["123", "456"]},
            "audioUidList": {"subscribeAudioUids": ["#allstream#"]},
        }},
    }


def test_update_body_without_lists_subscribes_every_video_stream() -> None:
    body = wire.update_body(session())
    assert body["clientRequest"]["streamSubscribe"] == {
        "videoUidList": {"subscribeVideoUids": ["#allstream#"]}}


def test_update_body_blacklist() -> None:
    body = wire.update_body(session(recordingConfig={"unsubscribeVideoUids": ["9"]}))
    assert body["clientRequest"]["streamSubscribe"]["videoUidList"] == {
        "unSubscribeVideoUids": ["9"]}


def test_update_body_with_storage_checks_it() -> None:
    body = wire.update_body(session(), storage=STORAGE)
    assert body["clientRequest"]["storageConfig"] == dict(STORAGE)
    bad: Any = {**STORAGE, "stsToken": "x"}
    with pytest.raises(SpecError) as caught:
        wire.update_body(session(), storage=bad)
    assert [p.path for p in caught.value.problems] == [
        ("clientRequest", "storageConfig", "stsExpiration")]


@pytest.mark.parametrize("async_stop", [False, True])
def test_stop_body(async_stop: bool) -> None:
    assert wire.stop_body("lobby", "527841", async_stop=async_stop) == {
        "cname": "lobby", "uid": "527841", "clientRequest": {"async_stop": async_stop}}


def test_mode_is_individual() -> None:
    assert wire.MODE == "individual"
