"""The change rule shared by the provider's diff and `snapshot-resources plan` (changes.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support.sessions import RECORDING_CONFIG, session_inputs

from snapshot_resources.changes import INPUT_KEYS, ChangeKind, classify

# The keys each case below changes are all set, so that each is a change of a held value.
BASE: dict[str, Any] = session_inputs(
    "app", resourceExpiredHour=720,
    recordingConfig={**RECORDING_CONFIG, "streamTypes": 2, "maxIdleTime": 300,
                     "subscribeVideoUids": ["101", "102"]},
)


def changed(path: str, value: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    *parents, leaf = path.split(".")
    target = new
    for part in parents:
        target = target[part]
    target[leaf] = value
    return new


def test_same_inputs_are_no_change() -> None:
    assert classify(BASE, copy.deepcopy(BASE)).kind is ChangeKind.NONE


def test_floats_from_the_wire_equal_ints() -> None:
    # Struct numbers are doubles: 5 comes back as 5.0 (docs/pulumi-dynamic.md 4C).
    new = changed("snapshotConfig.captureInterval", 5.0)
    assert classify(BASE, new).kind is ChangeKind.NONE


def test_outputs_beside_inputs_are_ignored() -> None:
    olds = {**BASE, "sid": "s1", "status": 5, "__provider": "x"}
    assert classify(olds, BASE).kind is ChangeKind.NONE


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("recordingConfig.subscribeVideoUids", ["101"]),
        ("recordingConfig.unsubscribeVideoUids", ["7"]),
        ("recordingConfig.subscribeAudioUids", ["#allstream#"]),
        ("storage.secretKey", "rotated"),
        ("storage.accessKey", "rotated"),
        ("storage.stsToken", "new-token"),
    ],
)
def test_subscription_lists_and_credentials_update_in_place(path: str, value: Any) -> None:
    change = classify(BASE, changed(path, value))
    assert change.kind is ChangeKind.UPDATE
    assert change.replaces == ()
    assert change.details == (path,)


@pytest.mark.parametrize(
    ("path", "value", "replaces"),
    [
        ("snapshotConfig.captureInterval", 10, "snapshotConfig"),
        ("recordingConfig.maxIdleTime", 600, "recordingConfig"),
        ("recordingConfig.streamTypes", 1, "recordingConfig"),
        ("recordingConfig.subscribeUidGroup", 2, "recordingConfig"),
        ("storage.bucket", "other", "storage"),
        ("storage.fileNamePrefix", ["c"], "storage"),
        ("storage.region", 4, "storage"),
        ("cname", "hall", "cname"),
        ("uid", "527842", "uid"),
        ("appId", "other-app", "appId"),
        ("resourceExpiredHour", 24, "resourceExpiredHour"),
        ("token", "new-token", "token"),
    ],
)
def test_everything_else_replaces(path: str, value: Any, replaces: str) -> None:
    change = classify(BASE, changed(path, value))
    assert change.kind is ChangeKind.REPLACE
    assert change.replaces == (replaces,)
    assert path in change.details or replaces in change.details


def test_a_list_change_mixed_with_a_replacing_change_replaces() -> None:
    new = changed("recordingConfig.subscribeVideoUids", ["101"])
    new["recordingConfig"]["maxIdleTime"] = 900
    change = classify(BASE, new)
    assert change.kind is ChangeKind.REPLACE
    assert change.details == ("recordingConfig.maxIdleTime", "recordingConfig.subscribeVideoUids")


def test_credential_rotation_is_flagged_only_without_replacement() -> None:
    rotated = classify(BASE, changed("storage.secretKey", "rotated"))
    assert rotated.rotates_storage
    lists_only = classify(BASE, changed("recordingConfig.subscribeVideoUids", ["9"]))
    assert not lists_only.rotates_storage


def test_input_keys_cover_the_documented_resource_inputs() -> None:
    assert set(INPUT_KEYS) == {
        "appId", "cname", "uid", "region", "resourceExpiredHour",
        "recordingConfig", "snapshotConfig", "storage", "token",
    }
