"""NCS webhooks: signed bodies (S13) carrying the Cloud Recording events of S12."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.waiting import wait_for

from snapshot_resources.events import parse_event, verify_signature
from snapshot_resources.testing.emulator import RawAgora, run_emulator, snapshot_request

CNAME, BOT = "lobby", "527841"
SECRET = "ncs-secret-distinctive-4711"


@dataclass
class Receiver:
    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint on loopback that records every POST and answers 200."""
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                failing = state.fail_first > 0
                state.fail_first -= 1
                state.posts.append((dict(self.headers.items()), body))
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/ncs"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()



def _session(receiver: Receiver, *, secret: str | None = SECRET) -> list[tuple[int, Any]]:
    """Run one short session; return (eventType, details) of every event received."""
    with run_emulator(time_scale=50, webhook_url=receiver.url, webhook_secret=secret) as handle:
        agora = RawAgora(handle)
        handle.admin.join(CNAME, "100")
        rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b", prefix=["p"]))
        wait_for(lambda: handle.admin.task(sid)["files"] >= 2)
        agora.stop(rid, sid, CNAME, BOT)
        wait_for(lambda: any(parse_event(body).event_type == 11 for _, body in receiver.posts))
        agora.close()
    return [(e.event_type, dict(e.details)) for e in (parse_event(b) for _, b in receiver.posts)]


def test_every_post_is_signed_with_sha1_and_sha256(receiver: Receiver) -> None:
    _session(receiver)
    for headers, body in receiver.posts:
        verify_signature(body, {"Agora-Signature-V2": headers["Agora-Signature-V2"]}, SECRET)
        verify_signature(body, {"Agora-Signature": headers["Agora-Signature"]}, SECRET)
        assert headers["Content-Type"] == "application/json"


def test_a_session_sends_40_44_45_41_then_11(receiver: Receiver) -> None:
    kinds = [kind for kind, _ in _session(receiver)]
    assert kinds[:3] == [44, 40, 45] or kinds[:3] == [40, 44, 45]
    assert kinds[-2:] == [41, 11]
    assert set(kinds) == {40, 41, 44, 45, 11}


def test_event_45_names_the_uploaded_file(receiver: Receiver) -> None:
    events = _session(receiver)
    names = [details["fileName"] for kind, details in events if kind == 45]
    assert names
    assert all(name.startswith("p/") and name.endswith(".jpg") for name in names)


def test_stop_leaves_with_code_16_and_exits_normally(receiver: Receiver) -> None:
    events = dict(_session(receiver))
    assert (events[41], events[11]) == ({"leaveCode": 16}, {"exitStatus": 0})


def test_events_of_a_task_carry_its_ids_and_a_rising_sequence(receiver: Receiver) -> None:
    _session(receiver)
    parsed = [parse_event(body) for _, body in receiver.posts]
    assert {(e.product_id, e.cname, e.uid) for e in parsed} == {(3, CNAME, BOT)}
    assert sorted(e.sequence for e in parsed) == list(range(len(parsed)))


def test_without_a_secret_no_signature_is_sent(receiver: Receiver) -> None:
    _session(receiver, secret=None)
    assert all("Agora-Signature" not in headers for headers, _ in receiver.posts)


def test_a_failed_delivery_is_retried(receiver: Receiver) -> None:
    receiver.fail_first = 1
    _session(receiver)
    first, second = receiver.posts[0][1], receiver.posts[1][1]
    assert first == second  # the same notification, resent (S13)


def test_the_secret_never_appears_in_a_post(receiver: Receiver) -> None:
    _session(receiver)
    assert all(SECRET not in str(headers) and SECRET.encode() not in body
               for headers, body in receiver.posts)
