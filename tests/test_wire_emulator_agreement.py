"""The client's rules (rules.py, through spec.py, schema_gen.py and agora/wire.py) and the
emulator's own reading of the reference (emulator/validation.py, independent on purpose) agree on
the documented cases: what the client sends, the emulator takes; a body that breaks a documented
rule, both refuse.  Where the sources conflict and the two sides decided differently, the case
says so (rules.CAPTURE_INTERVAL's decision)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from snapshot_resources.agora import wire
from snapshot_resources.emulator import validation
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.schema_gen import start_body_problems
from snapshot_resources.spec import parse_session, storage_target_problems
from snapshot_resources.target import StorageTarget

Body = dict[str, Any]
SALT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # Base64 of 32 bytes (S3)
S3: StorageTarget = {"vendor": 1, "region": 0, "bucket": "snaps", "accessKey": "A",
                     "secretKey": "S"}

# Sessions and targets the client sends as they are (S3, S5, S8, S9, S15).
SENT: dict[str, tuple[dict[str, Any], StorageTarget]] = {
    "defaults": ({}, S3),
    "every recording option": ({"recordingConfig": {
        "channelType": 1, "streamTypes": 2, "maxIdleTime": 2_592_000, "videoStreamType": 1,
        "decryptionMode": 7, "secret": "k", "salt": SALT,
        "subscribeVideoUids": ["1", "2", "3"], "subscribeAudioUids": ["1"]}}, S3),
    "video only, a blacklist": ({"recordingConfig": {
        "streamTypes": 1, "unsubscribeVideoUids": ["5"]}}, S3),
    "blacklist in the other spelling": ({"recordingConfig": {
        "unSubscribeVideoUids": ["5"], "unSubscribeAudioUids": ["6"]}}, S3),
    "every stream": ({"recordingConfig": {"subscribeVideoUids": ["#allstream#"]}}, S3),
    "shortest interval": ({"snapshotConfig": {"captureInterval": 5}}, S3),
    "longest interval": ({"snapshotConfig": {"captureInterval": 3600}}, S3),
    "prefix, sse and sts": ({}, {**S3, "fileNamePrefix": ["a", "b"],
                                 "extensionParams": {"sse": "kms", "tag": "k=v"},
                                 "stsToken": "T", "stsExpiration": 1_900_000_000}),
    "alibaba with a tag": ({}, {**S3, "vendor": 2, "region": 3, "extensionParams": {"tag": "t"}}),
    "azure": ({}, {**S3, "vendor": 5, "region": 0}),
    "s3-compatible": ({}, {**S3, "vendor": 11, "region": 0,
                           "extensionParams": {"endpoint": "minio.example.com:9000"}}),
}


def _sent(session: dict[str, Any], target: StorageTarget) -> Body:
    return wire.start_body(parse_session({"cname": "lobby", "uid": "527841", **session}), target)


def _client_refuses(body: Body) -> bool:
    storage = body["clientRequest"].get("storageConfig")
    target_problems = storage_target_problems(storage, path=("clientRequest", "storageConfig"))
    return bool(start_body_problems(body) or target_problems)


def _emulator_refuses(body: Body) -> bool:
    try:
        validation.check_start("individual", body)
    except ServiceError as error:
        return error.status == 400  # 400 code 2 or the code S7 gives the case
    return False


@pytest.mark.parametrize("case", sorted(SENT))
def test_what_the_client_sends_the_emulator_takes(case: str) -> None:
    body = _sent(*SENT[case])
    assert not _client_refuses(body)
    assert not _emulator_refuses(body)
    update = wire.update_body(parse_session({"cname": "lobby", "uid": "527841", **SENT[case][0]}),
                              storage=SENT[case][1])
    recording = body["clientRequest"]["recordingConfig"]
    validation.check_update(update, stream_types=recording["streamTypes"])


def _set(path: str, value: Any) -> Callable[[Body], None]:
    """A change of the body at the dotted ``path`` under clientRequest (``...`` removes it)."""
    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node = body["clientRequest"]
        for part in parents:
            node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return change


def _all(*changes: Callable[[Body], None]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        for one in changes:
            one(body)
    return change


# Bodies that break one documented rule (S3 unless said otherwise): both sides refuse.
BROKEN: dict[str, Callable[[Body], None]] = {
    "streamTypes 0 takes no video (S3 rule 3, S8)": _set("recordingConfig.streamTypes", 0),
    "channelType 2": _set("recordingConfig.channelType", 2),
    "maxIdleTime below 5": _set("recordingConfig.maxIdleTime", 4),
    "maxIdleTime above 30 days": _set("recordingConfig.maxIdleTime", 2_592_001),
    "an empty list (S19)": _set("recordingConfig.subscribeVideoUids", []),
    "33 uids (S5)": _set("recordingConfig.subscribeVideoUids", [str(u) for u in range(1, 34)]),
    "audio without video (S3 rule 4)": _set("recordingConfig.subscribeAudioUids", ["1"]),
    "white and black video list": _all(
        _set("recordingConfig.subscribeVideoUids", ["1"]),
        _set("recordingConfig.unSubscribeVideoUids", ["2"])),
    "no subscribeUidGroup (individual mode)": _set("recordingConfig.subscribeUidGroup", ...),
    "decryptionMode 9": _set("recordingConfig.decryptionMode", 9),
    "decryption without its secret": _set("recordingConfig.decryptionMode", 1),
    "a salt of 16 bytes": _all(
        _set("recordingConfig.decryptionMode", 7),
        _set("recordingConfig.secret", "k"),
        _set("recordingConfig.salt", "AAECAwQFBgcICQoLDA0ODw==")),
    "fileType png (S8)": _set("snapshotConfig.fileType", ["png"]),
    "no fileType": _set("snapshotConfig.fileType", ...),
    "captureInterval above an hour": _set("snapshotConfig.captureInterval", 3601),
    "a misspelt key (S10, S18)": _set("snapshotConfig.captureIntervall", 5),
    "recording and snapshots in one task (S8)": _set("recordingFileConfig", {"avFileType": ["hls"]}),
    "vendor 9 (S9)": _set("storageConfig.vendor", 9),
    "a GovCloud region (S9)": _set("storageConfig.region", 17),
    "s3-compatible without its endpoint (S14)": _all(
        _set("storageConfig.vendor", 11),
        _set("storageConfig.region", 0)),
    "sse outside Amazon S3": _all(
        _set("storageConfig.vendor", 2),
        _set("storageConfig.extensionParams", {"sse": "kms"})),
    "a tag at Tencent": _all(
        _set("storageConfig.vendor", 3),
        _set("storageConfig.extensionParams", {"tag": "t"})),
    "an STS token at Google (S14)": _all(
        _set("storageConfig.vendor", 6),
        _set("storageConfig.stsToken", "T"),
        _set("storageConfig.stsExpiration", 1_900_000_000)),
    "a prefix segment with '_'": _set("storageConfig.fileNamePrefix", ["a_b"]),
    "a prefix over 128 characters": _set("storageConfig.fileNamePrefix", ["x" * 64, "y" * 64]),
    "no secretKey": _set("storageConfig.secretKey", ...),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_body_breaking_a_documented_rule_is_refused_by_both(case: str) -> None:
    body = _sent({}, S3)
    BROKEN[case](body)
    assert _client_refuses(body), case
    assert _emulator_refuses(body), case


@pytest.mark.parametrize("interval", [1, 4])
def test_the_decided_conflict_on_the_shortest_interval(interval: int) -> None:
    # CONFLICT (rules.CAPTURE_INTERVAL): the REST reference says 5 to 3600, a release note that
    # the service takes 1 to 3600 (S14). The client refuses 1-4; the emulator, like the service,
    # takes them.
    body = _sent({}, S3)
    _set("snapshotConfig.captureInterval", interval)(body)
    assert _client_refuses(body)
    assert not _emulator_refuses(body)
