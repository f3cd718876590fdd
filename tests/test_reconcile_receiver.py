"""The reconciler's receiver over real HTTP on loopback: only signed, fresh, new notifications reach
the controller; /metrics and /healthz answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from support.fake_stack import FakeStack
from support.receiver import SECRET, Recording, notification_body, post_notification

from snapshot_resources.events import RecordingEvent, build_event
from snapshot_resources.reconcile import Controller, ControllerSettings, NotificationReceiver
from snapshot_resources.reconcile.notices import Notice
from snapshot_resources.reconcile.receiver import MAX_BODY_BYTES


@pytest.fixture
def controller() -> Recording:
    return Recording()


@pytest.fixture
def receiver(controller: Recording) -> Iterator[NotificationReceiver]:
    with NotificationReceiver(controller, secret=SECRET) as running:
        yield running


def _count(controller: Controller, outcome: str, product: str = "cloud_recording",
           event: str = "11") -> float:
    return controller.metrics.value("snapshot_reconcile_notifications_total", product=product,
                                    event=event, outcome=outcome)


def test_a_signed_notification_reaches_the_controller_once(
    receiver: NotificationReceiver, controller: Recording
) -> None:
    body = notification_body()
    first = post_notification(receiver, body)
    again = post_notification(receiver, body)
    assert (first.status_code, first.json()) == (200, {"ok": True})
    assert again.status_code == 200
    assert [n.notice_id for n in controller.received] == ["n1"]
    assert _count(controller, "unmatched") == 1
    assert _count(controller, "duplicate") == 1


@pytest.mark.parametrize("secret", [None, "another-secret"])
def test_an_unsigned_or_wrongly_signed_notification_is_refused(
    receiver: NotificationReceiver, controller: Recording, secret: str | None
) -> None:
    answer = post_notification(receiver, notification_body(), secret=secret)
    assert answer.status_code == 401
    assert controller.received == []
    assert _count(controller, "bad_signature", "unknown", "-") == 1


def test_a_replayed_notification_is_refused(
    receiver: NotificationReceiver, controller: Recording
) -> None:
    stale = int((time.time() - 3600) * 1000)
    answer = post_notification(receiver, notification_body(notify_ms=stale))
    assert answer.status_code == 401
    assert "replay" in answer.json()["error"]
    assert controller.received == []


def test_another_product_is_answered_200_and_ignored(
    receiver: NotificationReceiver, controller: Recording
) -> None:
    assert post_notification(receiver, notification_body(product=5)).status_code == 200
    assert controller.received == []
    assert _count(controller, "ignored", "other", "-") == 1


def test_a_signed_body_that_is_no_notification_is_400(
    receiver: NotificationReceiver, controller: Recording
) -> None:
    body = json.dumps({"noticeId": "n", "productId": 3, "eventType": 11,
                       "notifyMs": int(time.time() * 1000), "payload": {"cname": 1}}).encode()
    assert post_notification(receiver, body).status_code == 400
    assert controller.received == []


def test_limits_and_routes(receiver: NotificationReceiver) -> None:
    too_big = b"x" * (MAX_BODY_BYTES + 1)
    assert post_notification(receiver, too_big).status_code == 413
    assert post_notification(receiver, notification_body(), path="/other").status_code == 404
    assert requests.get(f"{receiver.url}/nothing", timeout=10).status_code == 404


def test_without_a_secret_notifications_are_refused(controller: Recording) -> None:
    with NotificationReceiver(controller, secret=None) as receiver:
        answer = post_notification(receiver, notification_body())
    assert answer.status_code == 404
    assert controller.received == []


def test_a_notification_signed_with_any_configured_secret_is_accepted(
    controller: Recording,
) -> None:
    other = "channel-events-secret"
    with NotificationReceiver(controller, secret=[SECRET, other]) as receiver:
        first = post_notification(receiver, notification_body())
        second = post_notification(receiver, notification_body(notice_id="n-other"), secret=other)
        forged = post_notification(receiver, notification_body(notice_id="n-forged"), secret="neither")
    assert (first.status_code, second.status_code, forged.status_code) == (200, 200, 401)
    assert len(controller.received) == 2


def test_an_empty_secret_is_refused_at_construction(controller: Recording) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        NotificationReceiver(controller, secret=[SECRET, ""])


def test_a_notification_that_failed_is_taken_again_when_agora_resends_it() -> None:
    class FailsOnce(Recording):
        failed = False

        def notify(self, notice: Notice) -> str:
            if not self.failed:
                self.failed = True
                raise RuntimeError("a bug")
            return super().notify(notice)

    controller = FailsOnce()
    with NotificationReceiver(controller, secret=SECRET) as receiver:
        first = post_notification(receiver, notification_body())
        resent = post_notification(receiver, notification_body())  # the same noticeId, as Agora resends it
        again = post_notification(receiver, notification_body())
    assert (first.status_code, resent.status_code, again.status_code) == (500, 200, 200)
    assert len(controller.received) == 1  # taken once, the third is a repeat


def test_a_stopping_receiver_takes_no_notification(controller: Recording) -> None:
    with NotificationReceiver(controller, secret=SECRET) as receiver:
        receiver.drain()
        answer = post_notification(receiver, notification_body())
        health = requests.get(f"{receiver.url}/healthz", timeout=10)
    assert answer.status_code == 503
    assert health.status_code == 200
    assert controller.received == []


def test_an_ipv6_loopback_listen_address_is_served(controller: Recording) -> None:
    try:
        receiver = NotificationReceiver(controller, secret=SECRET, host="::1").start()
    except OSError as error:  # a machine without IPv6 on loopback
        pytest.skip(f"no IPv6 loopback here: {error}")
    try:
        assert receiver.url.startswith("http://[::1]:")
        answer = post_notification(receiver, notification_body())
    finally:
        receiver.stop()
    assert answer.status_code == 200
    assert len(controller.received) == 1


def test_metrics_and_health_are_served(
    receiver: NotificationReceiver, controller: Recording
) -> None:
    post_notification(receiver, notification_body())
    metrics = requests.get(f"{receiver.url}/metrics", timeout=10)
    health = requests.get(f"{receiver.url}/healthz", timeout=10)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert ('snapshot_reconcile_notifications_total{event="11",outcome="unmatched",'
            'product="cloud_recording"} 1.0') in metrics.text
    assert health.json()["stack"] == "dev"
    assert health.json()["pending"] == []
    assert SECRET not in metrics.text + health.text


def test_bad_stale_or_repeated_notifications_change_nothing_in_the_stack() -> None:
    """With a real controller on a model stack: only the one genuine exit restarts a session,
    once; a bad signature, a stale ``notifyMs`` and a repeated ``noticeId`` of an exit do
    nothing at all."""
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = Controller(stack, declared=lambda: frozenset({"lobby", "stage"}),
                     settings=ControllerSettings(batch_window=0))
    ctl.step()  # the first sweep
    stack.calls.clear()

    def exit_body(sid: str, cname: str, notice_id: str, notify_ms: int | None = None) -> bytes:
        now = int(time.time() * 1000)
        event = build_event(RecordingEvent.SESSION_EXIT, {"cname": cname, "uid": "900001", "sid": sid, "sequence": 3,
                                 "sendts": now, "serviceType": 0,
                                 "details": {"exitStatus": 0}},
                            notice_id=notice_id, notify_ms=now if notify_ms is None else notify_ms)
        return json.dumps(event).encode()

    with NotificationReceiver(ctl, secret=SECRET) as receiver:
        refused = [
            post_notification(receiver, exit_body("s2", "ch-stage", "forged"), secret="not-the-secret"),
            post_notification(receiver, exit_body("s2", "ch-stage", "stale",
                                      notify_ms=int((time.time() - 3600) * 1000))),
        ]
        genuine = exit_body("s1", "ch-lobby", "real")
        first = post_notification(receiver, genuine)
        ctl.step()
        assert stack.ops("forget", "up") == [("forget", ("lobby",)), ("up", ("lobby",))]
        stack.calls.clear()
        repeats = [post_notification(receiver, genuine) for _ in range(3)]
        ctl.step()
    assert [r.status_code for r in refused] == [401, 401]
    assert first.status_code == 200
    assert [r.status_code for r in repeats] == [200, 200, 200]  # so that Agora stops resending
    assert stack.calls == []  # nothing to do: not even an export
    assert stack.sids["stage"] == "s2"
    assert ctl.metrics.value("snapshot_reconcile_notifications_total", product="cloud_recording",
                             event="11", outcome="duplicate") == 3
