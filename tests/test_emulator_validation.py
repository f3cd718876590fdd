"""The emulator's own checks of acquire/start/update bodies (docs/agora-api.md 2, 3, 5), without HTTP.

Each case breaks one documented rule and expects 400 code 2 (or the code S7 gives it) with a
reason that names the field.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snapshot_resources.emulator import validation
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.testing.emulator import snapshot_request


def _start_body(**changes: Any) -> dict[str, Any]:
    return {"cname": "lobby", "uid": "527841", "clientRequest": snapshot_request(**changes)}


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set (or removed when ``value`` is ...)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


def _reject(call: Any, *args: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_the_documented_minimal_snapshot_body_is_accepted() -> None:
    request = validation.check_start("individual", _start_body(prefix=["a", "b"]))
    assert (request.cname, request.uid, request.capture_interval) == ("lobby", "527841", 5)
    assert request.storage.file_name_prefix == ("a", "b")
    assert request.subscription.captures_video_of("123")


@pytest.mark.parametrize(("path", "value", "field"), [
    ("clientRequest.recordingFileConfig", {"avFileType": ["hls"]},
     "clientRequest.recordingFileConfig"),
    ("clientRequest.recordingConfig.streamTypes", 0, "recordingConfig.streamTypes"),
    ("clientRequest.recordingConfig.streamTypes", 3, "recordingConfig.streamTypes"),
    ("clientRequest.recordingConfig.subscribeUidGroup", ..., "subscribeUidGroup"),
    ("clientRequest.recordingConfig.channelType", ..., "channelType"),
    ("clientRequest.recordingConfig.maxIdleTime", 4, "maxIdleTime"),
    ("clientRequest.recordingConfig.maxIdleTime", 2_592_001, "maxIdleTime"),
    ("clientRequest.recordingConfig.subscribeVideoUids", [], "subscribeVideoUids"),
    ("clientRequest.recordingConfig.subscribeVideoUids", [str(i) for i in range(1, 34)],
     "subscribeVideoUids"),
    ("clientRequest.recordingConfig.subscribeVideoUids", ["0"], "subscribeVideoUids"),
    # Neither of the two documented spellings (module docstring of validation.py).
    ("clientRequest.recordingConfig.UnsubscribeVideoUids", ["1"], "UnsubscribeVideoUids"),
    ("clientRequest.recordingConfig.unSubScribeAudioUids", ["1"], "unSubScribeAudioUids"),
    ("clientRequest.recordingConfig.transcodingConfig", {}, "transcodingConfig"),
    ("clientRequest.recordingConfig.streamMode", "original", "streamMode"),
    ("clientRequest.recordingConfig.decryptionMode", 1, "recordingConfig.secret"),
    ("clientRequest.snapshotConfig.fileType", ["png"], "snapshotConfig.fileType"),
    ("clientRequest.snapshotConfig.fileType", ..., "snapshotConfig.fileType"),
    ("clientRequest.snapshotConfig.captureInterval", 0, "captureInterval"),
    ("clientRequest.snapshotConfig.captureInterval", 3601, "captureInterval"),
    ("clientRequest.snapshotConfig", ..., "clientRequest.snapshotConfig"),
    ("clientRequest.storageConfig", ..., "clientRequest.storageConfig"),
    ("clientRequest.storageConfig.vendor", 9, "storageConfig.vendor"),
    ("clientRequest.storageConfig.region", 17, "storageConfig.region"),
    ("clientRequest.storageConfig.bucket", "", "storageConfig.bucket"),
    ("clientRequest.storageConfig.accessKey", ..., "storageConfig.accessKey"),
    ("clientRequest.storageConfig.fileNamePrefix", ["a_b"], "fileNamePrefix"),
    ("clientRequest.storageConfig.fileNamePrefix", ["a" * 60, "b" * 60, "c" * 10],
     "fileNamePrefix"),
    ("clientRequest.storageConfig.stsToken", "token", None),  # vendor 5 below
    ("clientRequest.extensionServiceConfig", {}, "extensionServiceConfig"),
    ("uid", 527841, "uid"),
])
def test_a_broken_snapshot_rule_is_400_code_2_naming_the_field(
        path: str, value: Any, field: str | None) -> None:
    body = _start_body(vendor=5, region=0) if field is None else _start_body()
    error = _reject(validation.check_start, "individual", _set(body, path, value))
    assert (error.status, error.code) == (400, 2)
    assert (field or "stsToken") in error.reason


def test_audio_list_without_video_list_is_refused() -> None:
    body = _start_body(subscribe_video_uids=None)
    body = _set(body, "clientRequest.recordingConfig.subscribeAudioUids", ["1"])
    error = _reject(validation.check_start, "individual", body)
    assert "subscribeVideoUids" in error.reason
    assert "S3 rule 4" in error.reason


def test_whitelist_and_blacklist_together_are_refused() -> None:
    body = _set(_start_body(), "clientRequest.recordingConfig.unsubscribeVideoUids", ["1"])
    assert "unsubscribeVideoUids" in _reject(validation.check_start, "individual", body).reason


def test_vendor_11_needs_an_endpoint() -> None:
    error = _reject(validation.check_start, "individual", _start_body(vendor=11, region=0))
    assert "extensionParams.endpoint" in error.reason


@pytest.mark.parametrize("mode", ["mix", "web", "Individual"])
def test_snapshots_need_individual_mode(mode: str) -> None:
    error = _reject(validation.check_start, mode, _start_body())
    assert (error.code, error.reason.split(":")[0]) == (2, "mode")


def test_every_problem_is_listed_and_no_key_is_echoed() -> None:
    body = _start_body(access_key="AKIADISTINCTIVE1234", secret_key="SECRET-distinctive-987",
                       capture_interval=0)
    body = _set(body, "clientRequest.recordingConfig.streamTypes", 0)
    body = _set(body, "clientRequest.storageConfig.region", 99)
    reason = _reject(validation.check_start, "individual", body).reason
    assert all(name in reason for name in ("captureInterval", "streamTypes", "region"))
    assert "DISTINCTIVE" not in reason.upper()


def test_the_current_blacklist_spelling_is_accepted() -> None:
    body = _start_body(subscribe_video_uids=None)
    body = _set(body, "clientRequest.recordingConfig.unsubscribeVideoUids", ["7"])
    subscription = validation.check_start("individual", body).subscription
    assert (subscription.captures_video_of("7"), subscription.captures_video_of("8")) == \
        (False, True)


@pytest.mark.parametrize("key", ["unsubscribeVideoUids", "unSubscribeVideoUids"])
def test_either_video_blacklist_spelling_is_accepted_at_start(key: str) -> None:
    body = _set(_start_body(subscribe_video_uids=None), f"clientRequest.recordingConfig.{key}",
                ["7"])
    subscription = validation.check_start("individual", body).subscription
    assert (subscription.captures_video_of("7"), subscription.captures_video_of("8")) == \
        (False, True)


@pytest.mark.parametrize("key", ["unsubscribeAudioUids", "unSubscribeAudioUids"])
def test_either_audio_blacklist_spelling_is_accepted_at_start(key: str) -> None:
    body = _set(_start_body(), f"clientRequest.recordingConfig.{key}", ["7"])
    assert validation.check_start("individual", body).subscription.audio_exclude == ("7",)


@pytest.mark.parametrize(("lower", "camel"), [("unsubscribeVideoUids", "unSubscribeVideoUids"),
                                              ("unsubscribeAudioUids", "unSubscribeAudioUids")])
def test_one_blacklist_in_both_spellings_at_start_is_400_code_2(lower: str, camel: str) -> None:
    body = _set(_start_body(subscribe_video_uids=None), f"clientRequest.recordingConfig.{lower}",
                ["7"])
    body = _set(body, f"clientRequest.recordingConfig.{camel}", ["7"])
    error = _reject(validation.check_start, "individual", body)
    assert (error.status, error.code) == (400, 2)
    assert f"recordingConfig.{camel}" in error.reason
    assert lower in error.reason


def test_one_blacklist_in_both_spellings_in_acquire_start_parameter_is_400_code_2() -> None:
    parameter = snapshot_request(subscribe_video_uids=None)
    parameter["recordingConfig"].update(unsubscribeVideoUids=["7"], unSubscribeVideoUids=["7"])
    error = _reject(validation.check_acquire, {"cname": "lobby", "uid": "527841",
                                               "clientRequest": {"startParameter": parameter}})
    assert (error.status, error.code) == (400, 2)
    assert "startParameter.recordingConfig.unSubscribeVideoUids" in error.reason


def test_a_whitelist_with_the_other_blacklist_spelling_is_refused_naming_it() -> None:
    body = _set(_start_body(), "clientRequest.recordingConfig.unSubscribeVideoUids", ["1"])
    reason = _reject(validation.check_start, "individual", body).reason
    assert "recordingConfig.unSubscribeVideoUids: cannot be set together with" in reason


@pytest.mark.parametrize(("media", "key"), [
    ("video", "unsubscribeVideoUids"), ("video", "unSubscribeVideoUids"),
    ("audio", "unsubscribeAudioUids"), ("audio", "unSubscribeAudioUids"),
])
def test_update_accepts_either_blacklist_spelling(media: str, key: str) -> None:
    request = validation.check_update({"cname": "c", "uid": "1", "clientRequest": {
        "streamSubscribe": {f"{media}UidList": {key: ["5"]}}}}, stream_types=2)
    assert getattr(request, media) == (None, ("5",))


@pytest.mark.parametrize("media", ["Video", "Audio"])
def test_update_with_one_blacklist_in_both_spellings_is_400_code_2(media: str) -> None:
    lists = {f"unsubscribe{media}Uids": ["5"], f"unSubscribe{media}Uids": ["5"]}
    error = _reject(validation.check_update, {"cname": "c", "uid": "1", "clientRequest": {
        "streamSubscribe": {f"{media.lower()}UidList": lists}}}, stream_types=2)
    assert (error.status, error.code) == (400, 2)
    assert f"{media.lower()}UidList.unSubscribe{media}Uids" in error.reason


def test_only_audio_lists_mean_no_video_is_subscribed() -> None:
    # S15: a list set for one media type only leaves the other unsubscribed.
    subscription = validation.Subscription(audio_include=("#allstream#",))
    assert not subscription.captures_video_of("1")
    assert validation.Subscription().captures_video_of("1")


# acquire (S2, S7) ---------------------------------------------------------------------------------

def test_acquire_bad_channel_name_is_code_401() -> None:
    error = _reject(validation.check_acquire, {"cname": "a/b", "uid": "1", "clientRequest": {}})
    assert (error.status, error.code, error.reason) == (400, 401, "invalid_channel_name")


def test_acquire_channel_name_of_64_bytes_is_refused() -> None:
    assert _reject(validation.check_acquire, {"cname": "c" * 64, "uid": "1"}).code == 401
    assert validation.check_acquire({"cname": "c" * 63, "uid": "1"}).cname == "c" * 63


@pytest.mark.parametrize("hours", [0, 721, "24", 1.5])
def test_acquire_resource_expired_hour_out_of_range_has_the_documented_reason(
        hours: object) -> None:
    error = _reject(validation.check_acquire,
                    {"cname": "c", "uid": "1", "clientRequest": {"resourceExpiredHour": hours}})
    assert error.body() == {"code": 2, "reason": "Acquire: invalid resourceExpiredHour value!"}


@pytest.mark.parametrize("uid", ["0", "4294967296", "abc", 5, ""])
def test_acquire_uid_must_be_a_string_integer_in_range(uid: object) -> None:
    error = _reject(validation.check_acquire, {"cname": "c", "uid": uid})
    assert (error.code, error.reason.split(":")[0]) == (2, "uid")


def test_acquire_start_parameter_is_checked_like_start() -> None:
    start_parameter = snapshot_request(capture_interval=0)
    error = _reject(validation.check_acquire, {
        "cname": "c", "uid": "1", "clientRequest": {"startParameter": start_parameter}})
    assert "clientRequest.startParameter.snapshotConfig.captureInterval" in error.reason


def test_acquire_defaults_resource_expired_hour_to_72() -> None:
    assert validation.check_acquire({"cname": "c", "uid": "1"}).resource_expired_hour == 72


# update (S5) --------------------------------------------------------------------------------------

def test_update_audio_list_on_a_video_only_task_is_refused() -> None:
    body = {"cname": "c", "uid": "1", "clientRequest": {"streamSubscribe": {
        "audioUidList": {"subscribeAudioUids": ["#allstream#"]}}}}
    error = _reject(validation.check_update, body, stream_types=1)
    assert "audioUidList" in error.reason


def test_update_with_nothing_to_change_is_refused() -> None:
    error = _reject(validation.check_update, {"cname": "c", "uid": "1", "clientRequest": {}},
                    stream_types=2)
    assert "streamSubscribe or storageConfig" in error.reason


def test_update_reads_video_lists_and_storage() -> None:
    storage = snapshot_request(bucket="other")["storageConfig"]
    request = validation.check_update({"cname": "c", "uid": "1", "clientRequest": {
        "streamSubscribe": {"videoUidList": {"unsubscribeVideoUids": ["5"]}},
        "storageConfig": storage}}, stream_types=2)
    assert request.video == (None, ("5",))
    assert request.storage is not None
    assert request.storage.bucket == "other"


@pytest.mark.parametrize(
    ("section", "missing"),
    [
        ("recordingConfig", "channelType"),
        ("snapshotConfig", "fileType"),
        ("storageConfig", "vendor"),
    ],
)
def test_an_empty_section_is_400_code_2_naming_its_missing_fields(section: str, missing: str) -> None:
    # An empty {} used to skip the checks and end in a 500 internal_error, which a client
    # following S7 would retry and re-acquire on.
    body = _set(_start_body(), f"clientRequest.{section}", {})
    error = _reject(validation.check_start, "individual", body)
    assert (error.status, error.code) == (400, 2)
    assert f"{section}.{missing}" in error.reason
