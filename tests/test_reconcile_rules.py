"""The reconciler's pure parts: notification parsing, channel hosts, causes and timers, state reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from snapshot_resources.events import NcsEvent, NotificationBodyError, RecordingEvent, build_event
from snapshot_resources.reconcile.decisions import (
    TOKEN_EXPIRY_SLACK_SECONDS,
    Cause,
    IdlePolicy,
    Rotation,
    exit_cause,
    rotation_window,
    session_timers,
)
from snapshot_resources.reconcile.inventory import (
    SESSION_TYPE,
    SessionRecord,
    declared_sessions,
    has_resources,
    session_urn,
    sessions_from_export,
)
from snapshot_resources.reconcile.notices import (
    ChannelNotice,
    UnsupportedProductError,
    event_label,
    parse_notice,
)
from snapshot_resources.reconcile.presence import ChannelPresence
from snapshot_resources.reconcile.restart_rule import Action, Facts, restart_action

SECRET_MARK = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
               "ciphertext": "v1:abc"}


def channel(event_type: int, uid: str = "100", *, ts: int = 1000, seq: int = 1,
            cname: str = "lobby", platform: int | None = None,
            client_type: int | None = None) -> ChannelNotice:
    return ChannelNotice(notice_id=f"n-{event_type}-{uid}-{ts}-{seq}", event_type=event_type,
                         notify_ms=ts * 1000, cname=cname, uid=uid, client_seq=seq, ts=ts,
                         platform=platform, client_type=client_type)


# -- notices --------------------------------------------------------------------------------------


def test_a_cloud_recording_body_parses_as_an_ncs_event() -> None:
    body = build_event(RecordingEvent.SESSION_EXIT,
                       {"cname": "lobby", "uid": "900001", "sid": "s1", "sequence": 3,
                        "sendts": 5, "serviceType": 0, "details": {"exitStatus": 0}},
                       notice_id="n1", notify_ms=6)
    notice = parse_notice(json.dumps(body).encode())
    assert isinstance(notice, NcsEvent)
    assert (notice.sid, notice.event_type, event_label(notice)) == ("s1", 11,
                                                                  ("cloud_recording", "11"))


def test_an_rtc_channel_body_parses_as_a_channel_notice() -> None:
    body = {"noticeId": "n2", "productId": 1, "eventType": 104, "notifyMs": 7,
            "payload": {"channelName": "lobby", "uid": 123, "platform": 1, "clientSeq": 9,
                        "ts": 8, "reason": 1}}
    notice = parse_notice(json.dumps(body))
    assert notice == ChannelNotice(notice_id="n2", event_type=104, notify_ms=7, cname="lobby",
                                   uid="123", client_seq=9, ts=8, name="broadcaster_leave",
                                   platform=1)
    assert event_label(notice) == ("rtc_channel", "104")


def test_another_product_is_refused_as_unsupported() -> None:
    with pytest.raises(UnsupportedProductError) as caught:
        parse_notice({"noticeId": "n", "productId": 5, "eventType": 1, "notifyMs": 1,
                      "payload": {}})
    assert caught.value.product_id == 5


@pytest.mark.parametrize(("payload", "field"), [
    ({"uid": 1, "ts": 1}, "channelName"),
    ({"channelName": "c", "uid": "abc", "ts": 1}, "uid"),
    ({"channelName": "c", "uid": True, "ts": 1}, "uid"),
    ({"channelName": "c", "uid": 1, "ts": "1"}, "ts"),
])
def test_a_channel_event_with_a_bad_field_names_it(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(NotificationBodyError, match=field):
        parse_notice({"noticeId": "n", "productId": 1, "eventType": 103, "notifyMs": 1,
                      "payload": payload})


@pytest.mark.parametrize("body", [b"\xff", b"[1]", b"{not json"])
def test_a_body_that_is_no_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(NotificationBodyError):
        parse_notice(body)


# -- presence -------------------------------------------------------------------------------------


def test_a_channel_is_unknown_until_an_event_names_it() -> None:
    presence = ChannelPresence()
    assert presence.occupied("lobby") is None
    assert not presence.seen_any
    assert presence.apply(channel(103)) is True
    assert presence.occupied("lobby") is True
    assert presence.seen_any


def test_the_last_broadcaster_leaving_empties_the_channel() -> None:
    presence = ChannelPresence()
    presence.apply(channel(103, "100", ts=1))
    assert presence.apply(channel(103, "101", ts=2)) is False  # already occupied
    presence.apply(channel(104, "100", ts=3))
    assert presence.occupied("lobby") is True
    presence.apply(channel(104, "101", ts=4))
    assert presence.occupied("lobby") is False


def test_a_join_delivered_after_the_later_leave_changes_nothing() -> None:
    presence = ChannelPresence()
    presence.apply(channel(104, "100", ts=5, seq=2))
    assert presence.apply(channel(103, "100", ts=4, seq=1)) is False
    assert presence.occupied("lobby") is False


def test_client_seq_orders_events_of_the_same_second() -> None:
    presence = ChannelPresence()
    presence.apply(channel(103, "100", ts=5, seq=2))
    presence.apply(channel(104, "100", ts=5, seq=1))  # older: ignored
    assert presence.hosts("lobby") == {"100"}


def test_a_destroy_clears_hosts_seen_before_it_but_not_after() -> None:
    presence = ChannelPresence()
    presence.apply(channel(103, "100", ts=1))
    presence.apply(channel(103, "101", ts=9))
    presence.apply(channel(102, "0", ts=5))
    assert presence.hosts("lobby") == {"101"}
    presence.apply(channel(103, "102", ts=4))  # a join older than the destroy arrives late
    assert presence.hosts("lobby") == {"101"}


def test_recorders_and_audience_do_not_count_as_hosts() -> None:
    presence = ChannelPresence()
    presence.apply(channel(103, "900001"), ignore={"900001"})
    presence.apply(channel(105, "200"))
    # Another Cloud Recording bot (another stack's, or an on-demand recording): platform 6 Linux,
    # clientType 10 (S24), whatever its uid.
    presence.apply(channel(103, "777", platform=6, client_type=10))
    assert presence.occupied("lobby") is False
    presence.apply(channel(103, "778", platform=6, client_type=3))  # on-premise recording: a user
    assert presence.occupied("lobby") is True


def test_a_bot_body_parses_with_its_platform_and_client_type() -> None:
    body = {"noticeId": "n3", "productId": 1, "eventType": 103, "notifyMs": 7,
            "payload": {"channelName": "lobby", "uid": 9, "platform": 6, "clientType": 10,
                        "clientSeq": 1, "ts": 8}}
    notice = parse_notice(json.dumps(body))
    assert isinstance(notice, ChannelNotice)
    assert (notice.platform, notice.client_type) == (6, 10)
    presence = ChannelPresence()
    presence.apply(notice)
    assert presence.occupied("lobby") is False


@pytest.mark.parametrize(("arrive", "leave"), [
    (103, 104),  # a streaming host joins, leaves
    (107, 108),  # a communication-profile user (channelType 0) joins, leaves
    (111, 112),  # an audience member becomes host, then audience again
])
def test_every_way_of_starting_and_stopping_to_publish_is_followed(arrive: int,
                                                                   leave: int) -> None:
    presence = ChannelPresence()
    assert presence.apply(channel(arrive, "100", ts=1)) is True
    assert presence.occupied("lobby") is True
    presence.apply(channel(leave, "100", ts=2))
    assert presence.occupied("lobby") is False


# -- decisions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("leave_code", "at", "expected"), [
    (4, 0.0, Cause.IDLE),
    (4 | 16, 0.0, Cause.IDLE),
    (16, 0.0, Cause.STOPPED),
    (0, 1000.0, Cause.TOKEN_EXPIRED),
    (None, 1000.0 - TOKEN_EXPIRY_SLACK_SECONDS, Cause.TOKEN_EXPIRED),
    (None, 990.0, Cause.EXITED),
    (2, 990.0, Cause.EXITED),
])
def test_exit_cause(leave_code: int | None, at: float, expected: Cause) -> None:
    assert exit_cause(leave_code, at, 1000.0) is expected


def test_an_exit_without_token_expiry_is_never_token_expired() -> None:
    assert exit_cause(None, 10**10, None) is Cause.EXITED


def test_an_exit_after_a_109_error_is_a_token_expiry_whatever_the_clocks_say() -> None:
    assert exit_cause(0, 0.0, 1000.0, token_error=True) is Cause.TOKEN_EXPIRED
    assert exit_cause(4, 0.0, None, token_error=True) is Cause.IDLE


@pytest.mark.parametrize(("policy", "seen", "occupied", "waits"), [
    (IdlePolicy.AUTO, False, None, False),
    (IdlePolicy.AUTO, True, None, True),
    (IdlePolicy.AUTO, True, False, True),
    (IdlePolicy.AUTO, True, True, False),
    (IdlePolicy.ON_JOIN, False, None, True),
    (IdlePolicy.ON_JOIN, False, True, False),
    (IdlePolicy.IMMEDIATELY, True, False, False),
])
def test_an_idle_end_waits_for_a_broadcaster(policy: IdlePolicy, seen: bool,
                                             occupied: bool | None, waits: bool) -> None:
    facts = Facts(Cause.IDLE, idle_policy=policy, channel_events_seen=seen, broadcaster=occupied)
    assert restart_action(facts) is (Action.HOLD if waits else Action.RESTART)


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.IDLE])
def test_only_an_idle_end_waits(cause: Cause) -> None:
    facts = Facts(cause, idle_policy=IdlePolicy.ON_JOIN, channel_events_seen=True,
                  broadcaster=False)
    assert restart_action(facts) is not Action.HOLD


def test_the_token_timer_checks_a_grace_after_the_token() -> None:
    record = SessionRecord(name="lobby", urn="u", sid="s", cname="c", uid="1",
                           token_expires_at=5000.0, resource_expires_at=100_000.0,
                           resource_expired_hour=24)
    [check] = session_timers(record, token_grace=60.0)
    assert (check.cause, check.at) == (Cause.TOKEN_CHECK, 5060.0)
    assert session_timers(SessionRecord("n", "u", "s", "c", "1"), token_grace=0) == []


def test_the_rotation_window_follows_what_ends_first() -> None:
    record = SessionRecord(name="lobby", urn="u", sid="s", cname="c", uid="1",
                           token_expires_at=5000.0, resource_expires_at=100_000.0)
    window = rotation_window(record, rotate_before=600)
    assert window is not None
    assert (window.kind, window.ends_at, window.opens_at, window.deadline) == (
        Rotation.TOKEN, 5000.0, 4400.0, 4700.0)
    early_id = SessionRecord(name="lobby", urn="u", sid="s", cname="c", uid="1",
                             token_expires_at=5000.0, resource_expires_at=3000.0)
    assert rotation_window(early_id, rotate_before=600).kind is Rotation.RESOURCE_ID  # type: ignore[union-attr]


def test_a_given_token_is_never_rotated_and_no_end_means_no_window() -> None:
    given = SessionRecord(name="lobby", urn="u", sid="s", cname="c", uid="1",
                          token_expires_at=5000.0, given_token=True)
    assert rotation_window(given, rotate_before=600) is None
    token = SessionRecord(name="lobby", urn="u", sid="s", cname="c", uid="1",
                          token_expires_at=5000.0)
    assert rotation_window(token, rotate_before=0) is None  # rotation off
    assert rotation_window(SessionRecord("n", "u", "s", "c", "1"), rotate_before=600) is None


# -- inventory ------------------------------------------------------------------------------------


def _export(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "deployment": {"resources": list(resources)}}


def test_sessions_are_read_from_plain_outputs_only() -> None:
    urn = session_urn("dev", "agora-snapshots", "lobby")
    document = _export(
        {"urn": "urn:pulumi:dev::agora-snapshots::pulumi:pulumi:Stack::agora-snapshots-dev",
         "type": "pulumi:pulumi:Stack"},
        {"urn": urn, "type": SESSION_TYPE, "outputs": {
            "sid": "s1", "cname": "lobby", "uid": "900001", "appId": "a" * 32,
            "recordingConfig": {"maxIdleTime": 300, "secret": SECRET_MARK},
            "storage": SECRET_MARK, "tokenExpiresAt": "2026-12-01T10:00:00Z",
            "resourceExpiresAt": "2026-12-31T10:00:00Z", "resourceExpiredHour": 720}},
        {"urn": session_urn("dev", "agora-snapshots", "half"), "type": SESSION_TYPE,
         "outputs": {"sid": SECRET_MARK, "cname": "x", "uid": "1"}},
        {"urn": session_urn("dev", "agora-snapshots", "given"), "type": SESSION_TYPE,
         "outputs": {"sid": "s2", "cname": "given", "uid": "1", "token": SECRET_MARK}},
    )
    assert sessions_from_export(document) == {"lobby": SessionRecord(
        name="lobby", urn=urn, sid="s1", cname="lobby", uid="900001", app_id="a" * 32,
        max_idle_time=300, token_expires_at=1796119200.0, resource_expires_at=1798711200.0,
        resource_expired_hour=720), "given": SessionRecord(
        name="given", urn=session_urn("dev", "agora-snapshots", "given"), sid="s2",
        cname="given", uid="1", given_token=True)}
    assert urn == "urn:pulumi:dev::agora-snapshots::" + SESSION_TYPE + "::lobby"


def test_a_stack_with_only_itself_and_providers_has_no_resources() -> None:
    bare = _export({"type": "pulumi:pulumi:Stack"}, {"type": "pulumi:providers:pulumi-python"})
    assert not has_resources(bare)
    assert not has_resources({})
    assert has_resources(_export({"type": SESSION_TYPE}))


def test_declared_sessions_are_the_keys_of_the_stack_files_sessions(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: agora-snapshots\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  agora:appId: x\n  agora-snapshots:sessions:\n"
        "    lobby: {cname: lobby}\n    stage:\n      token:\n        secure: v1:abc\n")
    (tmp_path / "Pulumi.empty.yaml").write_text("config: {}\n")
    assert declared_sessions(tmp_path, "dev") == {"lobby", "stage"}
    assert declared_sessions(tmp_path, "empty") == frozenset()
    with pytest.raises(FileNotFoundError):
        declared_sessions(tmp_path, "missing")
    (tmp_path / "Pulumi.blank.yaml").write_text("")  # caught mid-copy by a deploy
    with pytest.raises(ValueError, match="empty"):
        declared_sessions(tmp_path, "blank")
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  agora-snapshots:sessions:\n    lobby: {token: 007eplaintextsecret\n")
    with pytest.raises(ValueError, match="line") as caught:
        declared_sessions(tmp_path, "broken")
    assert "plaintextsecret" not in str(caught.value)
