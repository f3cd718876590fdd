"""check(): offline, every documented violation at once, unknown values skipped, no secret echoed
(design.md "check()"; docs/pulumi-dynamic.md sections 2 and 3)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc
from support.sessions import APP_ID, session_inputs

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.provider_host import ProviderHost, provider_property

SECRET_KEY = "SECRET-KEY-do-not-print-7f3a"


@pytest.fixture(scope="module")
def offline_host() -> Any:
    # No Configure at all: check must work without credentials (PR previews).
    with ProviderHost() as host:
        yield host


def failures(host: ProviderHost, news: dict[str, Any]) -> list[tuple[str, str]]:
    resource = host.resource(SnapshotSessionProvider(), name="s")
    return resource.check(news).failures


def test_valid_inputs_pass(offline_host: ProviderHost) -> None:
    assert failures(offline_host, session_inputs(APP_ID)) == []


def test_every_violation_is_reported_at_once(offline_host: ProviderHost) -> None:
    bad = session_inputs(
        APP_ID,
        uid="0",
        recordingConfig={"streamTypes": 0, "subscribeAudioUids": ["1"],
                         "subscribeVideoUids": [str(i) for i in range(1, 34)]},
        snapshotConfig={"captureInterval": 4, "fileType": ["png"]},
        recordingFileConfig={"avFileType": ["hls"]},
    )
    bad["storage"] = {**bad["storage"], "vendor": 2, "extensionParams": {"sse": "kms"},
                      "secretKey": SECRET_KEY, "fileNamePrefix": ["a_b"]}
    found = failures(offline_host, bad)
    text = "\n".join(f"{prop}|{reason}" for prop, reason in found)
    for expected in (
        "uid|",                                  # uid 0
        "recordingConfig.streamTypes",           # snapshots need video
        "recordingConfig.subscribeVideoUids",    # 33 entries
        "snapshotConfig.captureInterval",        # below 5
        "snapshotConfig.fileType",               # only jpg
        "storage.extensionParams.sse",           # sse only for vendor 1
        "storage.fileNamePrefix",                # '_' in a segment
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert len(found) >= 7
    assert SECRET_KEY not in text
    # Failures under inputs that hold secrets name no property: the engine would print its value.
    assert all(prop == "" for prop, reason in found if reason.startswith(("storage", "recordingConfig")))


def test_unknown_storage_during_preview_passes(offline_host: ProviderHost) -> None:
    news = session_inputs(APP_ID)
    news["storage"] = rpc.UNKNOWN  # a bucket created in the same deployment
    assert failures(offline_host, news) == []


def test_unknown_nested_value_skips_only_its_rules(offline_host: ProviderHost) -> None:
    news = session_inputs(APP_ID, snapshotConfig={"captureInterval": 4})
    news["recordingConfig"] = {"channelType": 1, "subscribeVideoUids": rpc.UNKNOWN}
    found = failures(offline_host, news)
    assert [reason.split(":")[0] for _prop, reason in found] == ["snapshotConfig.captureInterval"]


def test_missing_app_id_is_named(offline_host: ProviderHost) -> None:
    news = session_inputs(APP_ID)
    del news["appId"]
    found = failures(offline_host, news)
    assert [prop for prop, _ in found] == ["appId"]


def test_direct_check_skips_unknown_objects() -> None:
    provider = SnapshotSessionProvider()
    news = session_inputs(APP_ID, cname=Unknown())  # type: ignore[no-untyped-call]
    assert provider.check({}, news).failures == []


def test_serialized_provider_is_tiny_and_holds_no_credential() -> None:
    value = provider_property(SnapshotSessionProvider())
    raw = base64.b64decode(value)
    assert len(raw) <= 100
    assert b"snapshot_resources.provider" in raw
    assert b"SnapshotSessionProvider" in raw
    assert b"secret" not in raw.lower()


def test_unknown_and_forbidden_top_level_keys_are_reported(offline_host: ProviderHost) -> None:
    news = session_inputs(APP_ID, snapshotConfg={"captureInterval": 5},
                          recordingFileConfig={"avFileType": ["hls"]})
    found = failures(offline_host, news)
    # Unexpected keys are never named as the property: the engine would print their value.
    assert {prop for prop, _ in found} == {""}
    reasons = sorted(reason for _, reason in found)
    assert reasons[0].startswith("recordingFileConfig: must not be set")
    assert "recording_file_config_forbidden" in reasons[0]
    assert reasons[1].startswith("snapshotConfg: 'snapshotConfg' is not a known key")
    assert "did you mean 'snapshotConfig'" in reasons[1]


def test_declared_outputs_beside_the_inputs_are_expected() -> None:
    news = {**session_inputs(APP_ID), "sid": None, "status": None, "__provider": "x"}
    assert SnapshotSessionProvider().check({}, news).failures == []
