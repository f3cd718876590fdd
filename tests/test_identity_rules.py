"""Identity rules (rules.RTC_TOKEN_IDENTITY, RTC_TOKEN_LIFETIME, RECORDER_UID_SUBSCRIBED): a given
token that cannot work and a recorder uid that collides with a user are refused before anything is
sent, with the same message in `validate`, the provider's `check` (in process and through
`ProviderHost`) and again at `create` (time passes between preview and up). `pulumi preview`:
tests/engine/test_engine_identity.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from support.provider_settings import provider_config
from support.sessions import APP_ID, session_inputs

from snapshot_resources import cli, rules, spec
from snapshot_resources.agora import token as rtc_token
from snapshot_resources.provider import SnapshotSessionProvider, input_problems
from snapshot_resources.testing.emulator import EmulatorHandle
from snapshot_resources.testing.provider_host import ProviderHost, secret

OTHER_APP = "fedcba9876543210fedcba9876543210"
CERT = "5cfd2fd1755d40ecb72977518be15d3b"
HOUR = 3600


def token(*, app: str = APP_ID, channel: str = "lobby", uid: int = 527841,
          lifetime: int = 24 * HOUR, issued: int = 0) -> str:
    return rtc_token.build_rtc_token(app_id=app, app_certificate=CERT, channel_name=channel,
                                     uid=uid, token_expire=lifetime,
                                     issued_at=int(time.time()) + issued)


# name -> (the session's token, the rule, words the message must contain)
TOKEN_CASES: dict[str, tuple[str, str, str]] = {
    "another App ID": (token(app=OTHER_APP), "rtc_token_identity",
                       f"was built for App ID '{OTHER_APP}'"),
    "another channel": (token(channel="meet-room-7"), "rtc_token_identity",
                        "was built for channel 'meet-room-7', not 'lobby'"),
    "a publisher's uid": (token(uid=1001), "rtc_token_identity",
                          "was built for uid 1001, not the recorder uid 527841"),
    "expired": (token(lifetime=HOUR, issued=-2 * HOUR), "rtc_token_lifetime", "expired at"),
    "expiring within the hour": (token(lifetime=HOUR // 2), "rtc_token_lifetime", " min; "),
    "unreadable AccessToken2": ("007" + "A" * 40, "rtc_token_identity",
                                "is not a readable AccessToken2 token"),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_a_token_that_cannot_work_is_refused_by_the_spec(case: str) -> None:
    given, rule_id, words = TOKEN_CASES[case]
    problems = input_problems(session_inputs(APP_ID, token=given))
    assert [p.rule_id for p in problems] == [rule_id]
    assert words in problems[0].message
    assert given not in problems[0].message  # the token itself is a secret
    assert ("109 token expired" if rule_id == "rtc_token_lifetime" else "110 invalid token") in \
        problems[0].message


@pytest.mark.parametrize("accepted", [
    token(), token(uid=0), token(lifetime=2 * HOUR), "006eJxOLDERaccessTOKEN"])
def test_tokens_that_work_pass(accepted: str) -> None:
    assert input_problems(session_inputs(APP_ID, token=accepted)) == []


def test_the_app_id_is_the_stack_default_when_a_session_has_none() -> None:
    raw = {"storage": {"main": {"vendor": "alibaba", "region": "cn-hangzhou", "bucket": "snaps",
                                "accessKey": "ak", "secretKey": "sk"}},
           "sessions": {"s": {"cname": "lobby", "uid": "527841", "storage": "main",
                              "token": token(app=OTHER_APP)}}}
    problems = spec.stack_problems(raw, default_app_id=APP_ID)
    assert [p.dotted_path for p in problems] == ["sessions.s.token"]


def _uid_case(key: str) -> dict[str, Any]:
    recording: dict[str, Any] = {"channelType": 1, "streamTypes": 2}
    if "Audio" in key:
        recording["subscribeVideoUids"] = ["1001"]
    recording[key] = ["1002", "527841"]
    return recording


@pytest.mark.parametrize("key", rules.SUBSCRIBE_LIST_KEYS)
def test_a_recorder_uid_in_its_own_lists_is_refused(key: str) -> None:
    problems = input_problems(session_inputs(APP_ID, recordingConfig=_uid_case(key)))
    assert [(p.dotted_path, p.rule_id) for p in problems] == [
        (f"recordingConfig.{key}", "recorder_uid_subscribed")]
    assert "holds the recorder's own uid 527841" in problems[0].message


def test_the_issue_example_a_meeting_recorder_subscribing_to_itself() -> None:
    raw = yaml.safe_load("""
    storage: {main: {vendor: alibaba, region: cn-hangzhou, bucket: snaps, accessKey: a, secretKey: b}}
    sessions:
      meeting:
        cname: meet-room-7
        uid: "14"
        storage: main
        recordingConfig: {channelType: 1, subscribeVideoUids: ["14"]}
    """)
    problems = spec.stack_problems(raw, default_app_id=APP_ID)
    assert [p.rule_id for p in problems] == ["recorder_uid_subscribed"]


def test_another_sessions_recorder_on_the_same_channel_is_refused() -> None:
    sessions = {
        "a": {"cname": "lobby", "uid": "900001", "storage": "main",
              "recordingConfig": {"subscribeVideoUids": ["900002", "1001"]}},
        "b": {"cname": "lobby", "uid": "900002", "storage": "main"},
        "c": {"cname": "other", "uid": "900003", "storage": "main",
              "recordingConfig": {"subscribeVideoUids": ["900001"]}},  # another channel: fine
    }
    raw = {"storage": {"main": {"vendor": "alibaba", "region": "cn-hangzhou", "bucket": "snaps",
                                "accessKey": "ak", "secretKey": "sk"}}, "sessions": sessions}
    problems = spec.stack_problems(raw, default_app_id=APP_ID)
    assert [(p.dotted_path, p.rule_id) for p in problems] == [
        ("sessions.a.recordingConfig.subscribeVideoUids", "recorder_uid_subscribed")]
    assert "the recorder of session 'b'" in problems[0].message


# -- the same message on every path ----------------------------------------------------------------

PATH_CASES: dict[str, dict[str, Any]] = {
    **{name: {"token": value} for name, (value, _, _) in TOKEN_CASES.items()},
    "recorder uid subscribed": {"recordingConfig": _uid_case("subscribeVideoUids")},
}


def _validate(tmp_path: Path, overrides: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    session = {"cname": "lobby", "uid": "527841", "storage": "main", **overrides}
    document = {"config": {
        "agora:appId": APP_ID,
        "agora-snapshots:storage": {"main": {"vendor": "alibaba", "region": "cn-hangzhou",
                                             "bucket": "snaps", "accessKey": "ak",
                                             "secretKey": "sk"}},
        "agora-snapshots:sessions": {"lobby": session}}}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    assert cli.main(["validate", str(path)]) == 1
    return capsys.readouterr().out


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_validate_check_and_the_provider_host_say_the_same(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], host: ProviderHost,
) -> None:
    overrides = PATH_CASES[case]
    [problem] = input_problems(session_inputs(APP_ID, **overrides))
    said = f"{problem.dotted_path}: {problem.message} (rule {problem.rule_id};"
    shown = _validate(tmp_path, overrides, capsys)
    in_process = SnapshotSessionProvider().check({}, session_inputs(APP_ID, **overrides))
    hosted_inputs = session_inputs(APP_ID, **overrides)
    if "token" in hosted_inputs:
        hosted_inputs["token"] = secret(hosted_inputs["token"])  # as SnapshotSessionArgs sends it
    hosted = host.resource(SnapshotSessionProvider(), name="s").check(hosted_inputs)

    assert f"sessions.lobby.{said}" in shown
    pairs = [(f.property, f.reason) for f in in_process.failures]
    for failures in (pairs, hosted.failures):
        assert [prop for prop, _ in failures] == [""]  # token and recordingConfig hold secrets
        assert failures[0][1].startswith(said)


def test_create_checks_the_token_again(emulator: EmulatorHandle) -> None:
    """Preview passed, then time went by: create refuses before acquiring anything."""
    provider = SnapshotSessionProvider()
    provider.configure(ConfigureRequest(Config(provider_config(emulator), "agora-snapshots")))
    soon = token(app=emulator.app_id, lifetime=HOUR // 2)
    with pytest.raises(spec.SpecError) as raised:
        provider.create(session_inputs(emulator.app_id, token=soon))
    assert "rule rtc_token_lifetime" in str(raised.value)
    assert soon not in str(raised.value)
    assert emulator.admin.request_log() == []
