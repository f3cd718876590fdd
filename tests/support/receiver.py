"""The reconciler's receiver as its tests drive it: a controller that only records what reaches
it, and signed notifications posted over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from snapshot_resources.events import RecordingEvent, build_event, sign_headers
from snapshot_resources.reconcile import Controller, NotificationReceiver
from snapshot_resources.reconcile.notices import Notice

SECRET = "receiver-ncs-secret-31f0"


class NoStack:
    """A stack the tests never operate on: the receiver only queues work."""

    stack = "dev"
    project = "agora-snapshots"

    def export(self) -> Mapping[str, Any]:
        raise AssertionError("the receiver must not run stack operations")

    def refresh(self, urns: Sequence[str]) -> None:
        raise AssertionError("the receiver must not run stack operations")

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
        raise AssertionError("the receiver must not run stack operations")

    def forget(self, urns: Sequence[str]) -> None:
        raise AssertionError("the receiver must not run stack operations")


class Recording(Controller):
    def __init__(self) -> None:
        super().__init__(NoStack(), declared=frozenset)
        self.received: list[Notice] = []

    def notify(self, notice: Notice) -> str:
        self.received.append(notice)
        return "unmatched"


def notification_body(notice_id: str = "n1", *, notify_ms: int | None = None, product: int = 3) -> bytes:
    event = build_event(RecordingEvent.SESSION_EXIT, {"cname": "lobby", "uid": "900001", "sid": "s1", "sequence": 0,
                             "sendts": 1, "serviceType": 0, "details": {"exitStatus": 0}},
                        notice_id=notice_id,
                        notify_ms=notify_ms if notify_ms is not None else int(time.time() * 1000))
    event["productId"] = product
    return json.dumps(event).encode()


def post_notification(receiver: NotificationReceiver, body: bytes, secret: str | None = SECRET,
          path: str = "/ncs") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers.update(sign_headers(body, secret))
    return requests.post(f"{receiver.url}{path}", data=body, headers=headers, timeout=10)
