"""snapshot_resources.events: NCS bodies and signatures (S12, S13)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from snapshot_resources.events import (
    EVENT_NAMES,
    SIGNATURE_HEADER,
    SIGNATURE_V2_HEADER,
    NotificationBodyError,
    SignatureError,
    build_event,
    dedup_key,
    parse_event,
    sign_headers,
    snapshot_file,
    snapshot_name,
    verify_signature,
)

SECRET = "ncs-secret-DO-NOT-LEAK-91c2"
NOTIFY_MS = 1560408533119


def _at_send() -> float:
    """A receiver clock reading the moment the test bodies were sent (inside the replay window)."""
    return NOTIFY_MS / 1000

# Agora's own example (S13 signature-verification page): body, secret "secret", hex digests.
AGORA_BODY = (b'{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f",'
              b'"notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}')
AGORA_SHA1 = "5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"
AGORA_SHA256 = "de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"

FILE_NAME = ("snaps/38f8e3cfdc474cd56fc1ceba380d7e1a_lobby__uid_s_123__uid_e_video_"
             "20190611073246073.jpg")


def _payload(**details: Any) -> dict[str, Any]:
    return {"cname": "lobby", "uid": "527841", "sid": "38f8e3cfdc474cd56fc1ceba380d7e1a",
            "sequence": 7, "sendts": 1560408533000, "serviceType": 1, "details": details}


def _body(event_type: int = 45, **details: Any) -> bytes:
    event = build_event(event_type, _payload(**details), notice_id="n-1", notify_ms=NOTIFY_MS)
    return json.dumps(event).encode()


# --------------------------------------------------------------------------------------------------
# Signatures


def test_sign_headers_match_agoras_published_example() -> None:
    assert sign_headers(AGORA_BODY, "secret") == {SIGNATURE_HEADER: AGORA_SHA1,
                                                  SIGNATURE_V2_HEADER: AGORA_SHA256}


def test_correct_signature_is_accepted() -> None:
    body = _body(fileName=FILE_NAME)
    verify_signature(body, sign_headers(body, SECRET), SECRET, clock=_at_send)


def test_header_names_are_case_insensitive() -> None:
    body = _body()
    headers = {k.lower(): v for k, v in sign_headers(body, SECRET).items()}
    verify_signature(body, headers, SECRET, clock=_at_send)


def test_v1_alone_is_accepted_when_v2_is_absent() -> None:
    body = _body()
    verify_signature(body, {SIGNATURE_HEADER: sign_headers(body, SECRET)[SIGNATURE_HEADER]},
                     SECRET, clock=_at_send)


def test_forged_signature_is_rejected() -> None:
    body = _body()
    forged = sign_headers(body, "attacker-guess")
    with pytest.raises(SignatureError, match=SIGNATURE_V2_HEADER) as caught:
        verify_signature(body, forged, SECRET)
    assert SECRET not in str(caught.value)
    assert sign_headers(body, SECRET)[SIGNATURE_V2_HEADER] not in str(caught.value)


def test_tampered_body_is_rejected() -> None:
    body = _body(fileName=FILE_NAME)
    headers = sign_headers(body, SECRET)
    with pytest.raises(SignatureError, match="does not match the body"):
        verify_signature(body.replace(b"lobby", b"lobbz"), headers, SECRET)


def test_missing_headers_are_rejected() -> None:
    with pytest.raises(SignatureError, match="neither"):
        verify_signature(_body(), {"Content-Type": "application/json"}, SECRET)


def test_bad_v2_is_not_rescued_by_a_good_v1() -> None:
    body = _body()
    headers = {SIGNATURE_HEADER: sign_headers(body, SECRET)[SIGNATURE_HEADER],
               SIGNATURE_V2_HEADER: sign_headers(body, "forged")[SIGNATURE_V2_HEADER]}
    with pytest.raises(SignatureError, match=SIGNATURE_V2_HEADER):
        verify_signature(body, headers, SECRET)


def test_non_ascii_signature_is_rejected_not_crashing() -> None:
    with pytest.raises(SignatureError):
        verify_signature(_body(), {SIGNATURE_V2_HEADER: "é" * 64}, SECRET)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="NCS secret"):
        verify_signature(b"{}", {SIGNATURE_V2_HEADER: ""}, "")


# --------------------------------------------------------------------------------------------------
# Bodies


def test_snapshot_file_event_parses() -> None:
    event = parse_event(_body(msgName="recorder_snapshot_file", fileName=FILE_NAME))  # S12 shape
    assert (event.notice_id, event.product_id, event.event_type, event.notify_ms) == (
        "n-1", 3, 45, 1560408533119)
    assert (event.cname, event.uid, event.sequence, event.service_type) == ("lobby", "527841", 7, 1)
    assert event.name == "recorder_snapshot_file"
    assert snapshot_file(event) == FILE_NAME
    name = snapshot_name(event)
    assert name is not None
    assert (name.prefix, name.uid) == (("snaps",), "123")


def test_parse_accepts_text_and_decoded_json() -> None:
    body = _body(fileName=FILE_NAME)
    assert parse_event(body.decode()) == parse_event(json.loads(body)) == parse_event(body)


def test_other_events_have_no_snapshot_file() -> None:
    event = parse_event(_body(12, newUid=1234))
    assert (event.name, snapshot_file(event), snapshot_name(event)) == (
        "session_failover", None, None)
    assert event.details["newUid"] == 1234


def test_every_documented_event_type_has_a_name() -> None:
    # The Cloud Recording event types that concern snapshot tasks (S12).
    assert set(EVENT_NAMES) == {1, 2, 3, 11, 12, 30, 31, 32, 33, 40, 41, 43, 44, 45}


def test_unknown_event_type_parses_without_a_name() -> None:
    assert parse_event(_body(99)).name is None


def test_unknown_event_type_is_named_by_its_msg_name() -> None:
    assert parse_event(_body(42, msgName="recorder_slice_start")).name == "recorder_slice_start"


def test_snapshot_name_tolerates_a_leading_slash_without_prefix() -> None:
    bare = FILE_NAME.removeprefix("snaps/")
    name = snapshot_name(parse_event(_body(fileName="/" + bare)))
    assert name is not None
    assert (name.prefix, name.key) == ((), bare)


def test_events_are_hashable_for_sets_of_seen_events() -> None:
    body = _body(fileName=FILE_NAME)
    assert len({parse_event(body), parse_event(body)}) == 1


def test_numeric_bot_uid_is_read_as_text() -> None:
    data = json.loads(_body())
    data["payload"]["uid"] = 527841
    assert parse_event(data).uid == "527841"


def test_identical_deliveries_share_a_dedup_key() -> None:
    body = _body(fileName=FILE_NAME)
    assert dedup_key(parse_event(body)) == dedup_key(parse_event(body)) == ("n-1", NOTIFY_MS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"noticeId": "n", "productId": 3, "eventType": 45, "notifyMs": 1}', "'payload'"),
    ],
)
def test_malformed_body_is_a_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_event(body)
    assert isinstance(caught.value, NotificationBodyError)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("eventType",), "45", "'eventType' must be an integer, got str"),
        (("notifyMs",), True, "'notifyMs' must be an integer, got bool"),
        (("noticeId",), None, "'noticeId' must be a string, got nothing"),
        (("payload", "sid"), 5, "'payload.sid' must be a string, got int"),
        (("payload", "sequence"), "1", "'payload.sequence' must be an integer"),
        (("payload", "details"), [], "'payload.details' must be a JSON object"),
    ],
)
def test_wrong_field_type_names_the_field(path: tuple[str, ...], value: Any, message: str) -> None:
    data = json.loads(_body())
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        parse_event(data)


def test_event_45_without_file_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="fileName"):
        snapshot_file(parse_event(_body(45)))


# --------------------------------------------------------------------------------------------------
# End to end: the emulator posts events to a receiver on loopback, which verifies them.


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, dict[str, str]]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, dict(self.headers.items())))
        reply = b"{}"
        self.send_response(200)  # within 10 s, with a JSON body (S13)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    received: list[tuple[bytes, dict[str, str]]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ncs", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_events_posted_by_the_emulator_verify_and_parse(
    receiver: tuple[str, list[tuple[bytes, dict[str, str]]]],
) -> None:
    from snapshot_resources.testing.emulator import RawAgora, run_emulator, snapshot_request

    url, received = receiver
    with run_emulator(time_scale=50, webhook_url=url, webhook_secret=SECRET) as emulator:
        raw = RawAgora(emulator)
        try:
            emulator.admin.join("lobby", 100)
            raw.begin("lobby", "527841", snapshot_request())
            deadline = time.monotonic() + 20
            while not any(parse_event(body).event_type == 45 for body, _ in list(received)):
                assert time.monotonic() < deadline, "no event 45 reached the receiver"
                time.sleep(0.02)
        finally:
            raw.close()
        # The emulator stamps notifyMs on its scaled clock: the receiver must read the same clock.
        # Verified while it still runs, since 600 emulated seconds pass in 12 real ones.
        clock = emulator.backend.clock.now
        for body, headers in list(received):
            verify_signature(body, headers, SECRET, clock=clock)
            with pytest.raises(SignatureError):
                verify_signature(body, headers, "not-the-ncs-secret", clock=clock)
            assert parse_event(body).product_id == 3
