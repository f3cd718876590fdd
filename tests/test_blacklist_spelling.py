"""Blacklist spelling (rules.BLACKLIST_SPELLING): either spelling in, one canonical key in state,
the official clients' spelling on the wire, and a spelling change is never a diff."""

from __future__ import annotations

from typing import Any, cast

import pytest
from support.sessions import APP_ID, session_inputs

from snapshot_resources import changes, rules
from snapshot_resources.agora import wire
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.session import (
    RecordingConfigArgsDict,
    SnapshotSession,
    SnapshotSessionArgs,
    resource_inputs,
)
from snapshot_resources.spec import parse_session, parse_stack, stack_problems
from snapshot_resources.target import StorageTarget
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

STORAGE: StorageTarget = {"vendor": 2, "region": 3, "bucket": "snaps", "accessKey": "ak",
                          "secretKey": "sk"}
ALIASES = sorted(rules.BLACKLIST_ALIASES.items())


def _recording(key: str) -> dict[str, Any]:
    # An audio blacklist needs a video list and streamTypes 2 (rules.AUDIO_NEEDS_VIDEO_LIST).
    video = {} if "Video" in key else {"subscribeVideoUids": ["1"], "streamTypes": 2}
    return {"channelType": 1, **video, key: ["7"]}


def _inputs(recording: dict[str, Any]) -> dict[str, Any]:
    return session_inputs(APP_ID, storage=STORAGE, recordingConfig=recording)


def test_the_wire_names_and_the_aliases_are_one_mapping_read_both_ways() -> None:
    assert set(rules.BLACKLIST_WIRE_NAMES) == {
        k for k in rules.SUBSCRIBE_LIST_KEYS if k.startswith("unsubscribe")}
    for alias, canonical in rules.BLACKLIST_ALIASES.items():
        assert rules.BLACKLIST_WIRE_NAMES[canonical] == alias


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_a_stack_file_in_either_spelling_stores_the_canonical_key(alias: str, canonical: str) -> None:
    written = {"cname": "lobby", "uid": "527841", "storage": "main",
               "recordingConfig": _recording(alias)}
    raw = {"storage": {"main": {**STORAGE, "vendor": "alibaba", "region": "cn-hangzhou"}},
           "sessions": {"s": written}}
    assert stack_problems(raw, default_app_id=APP_ID) == []
    spec = parse_stack(raw, default_app_id=APP_ID).sessions["s"]
    stored = resource_inputs(spec, written)["recordingConfig"]
    assert stored[canonical] == ["7"]
    assert alias not in stored


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_the_python_api_registers_the_canonical_key(alias: str, canonical: str) -> None:
    mocks = PulumiMocks.install()
    args = SnapshotSessionArgs(cname="lobby", uid="527841", storage=STORAGE, app_id=APP_ID,
                               recording_config=cast(RecordingConfigArgsDict, _recording(alias)))
    mocks.run(lambda: SnapshotSession("lobby", args).sid)
    recorded = mocks.one("pulumi-python:dynamic/agora:SnapshotSession").inputs["recordingConfig"]
    assert recorded[canonical] == ["7"]
    assert alias not in recorded


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_check_hands_the_engine_the_canonical_key(alias: str, canonical: str) -> None:
    result = SnapshotSessionProvider().check({}, _inputs(_recording(alias)))
    assert result.failures == []
    assert result.inputs["recordingConfig"][canonical] == ["7"]
    assert alias not in result.inputs["recordingConfig"]


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_a_spelling_change_alone_is_no_change(alias: str, canonical: str) -> None:
    old = _inputs(_recording(canonical))
    new = _inputs(_recording(alias))
    assert changes.classify(old, new).kind is changes.ChangeKind.NONE
    assert SnapshotSessionProvider().diff("sid", old, new).changes is False


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_both_spellings_at_once_are_refused_naming_the_rule(alias: str, canonical: str) -> None:
    recording = {**_recording(alias), canonical: ["8"]}
    result = SnapshotSessionProvider().check({}, _inputs(recording))
    assert [f.reason.split(" (rule ")[1].split(";")[0] for f in result.failures] == [
        rules.BLACKLIST_SPELLING.id]
    assert f"recordingConfig.{alias}: is set together with {canonical}" in result.failures[0].reason


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_agora_is_sent_the_official_clients_spelling(alias: str, canonical: str) -> None:
    for written in (alias, canonical):
        spec = parse_session({"cname": "lobby", "uid": "527841",
                              "recordingConfig": _recording(written)})
        start = wire.start_body(spec, STORAGE)["clientRequest"]["recordingConfig"]
        assert start[alias] == ["7"]
        assert canonical not in start
        lists = wire.update_body(spec)["clientRequest"]["streamSubscribe"]
        sent = lists["videoUidList" if "Video" in alias else "audioUidList"]
        assert sent == {alias: ["7"]}
