"""Hostile NCS input: headers of the wrong type and malformed bodies raise this module's errors.

Whatever arrives, ``verify_signature`` raises only ``SignatureError`` (headers) or
``NotificationBodyError`` (body), and ``parse_event`` only ``NotificationBodyError``: never
``AttributeError``, ``TypeError``, ``RecursionError``, ``UnicodeDecodeError`` or
``UnicodeEncodeError`` (S13).
"""

from __future__ import annotations

import contextlib
import email.parser
import http.client
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_resources.events import (
    SIGNATURE_HEADER,
    SIGNATURE_V2_HEADER,
    NotificationBodyError,
    NotificationError,
    SignatureError,
    build_event,
    parse_event,
    sign_headers,
    verify_signature,
)

SECRET = "ncs-secret-HOSTILE-3b9d"
SENT_MS = 1_700_000_000_000
BODY = json.dumps(build_event(
    45, {"cname": "c", "uid": "1", "sid": "s", "sequence": 0, "sendts": SENT_MS,
         "serviceType": 1, "details": {}}, notice_id="n-1", notify_ms=SENT_MS)).encode()
DIGEST = sign_headers(BODY, SECRET)[SIGNATURE_V2_HEADER]


def _at_send() -> float:
    return SENT_MS / 1000


def _verify(body: Any, headers: Any) -> None:
    verify_signature(body, headers, SECRET, clock=_at_send)


# --------------------------------------------------------------------------------------------------
# Headers


@pytest.mark.parametrize(
    "headers",
    [None, b"Agora-Signature-V2: x", 42, 1.5, "Agora-Signature-V2", [(SIGNATURE_V2_HEADER, DIGEST)],
     {SIGNATURE_V2_HEADER}],
    ids=["None", "bytes", "int", "float", "str", "list-of-pairs", "set"],
)
def test_headers_that_are_not_a_mapping_are_a_signature_error(headers: Any) -> None:
    with pytest.raises(SignatureError, match="headers must be a mapping"):
        _verify(BODY, headers)


@pytest.mark.parametrize(
    "value",
    [DIGEST.encode(), None, [DIGEST], (DIGEST,), 123, 1.0, {"v": DIGEST}],
    ids=["bytes", "None", "list", "tuple", "int", "float", "dict"],
)
def test_a_signature_value_of_the_wrong_type_is_a_signature_error(value: Any) -> None:
    with pytest.raises(SignatureError, match=f"{SIGNATURE_V2_HEADER} must be a string.*got") as e:
        _verify(BODY, {SIGNATURE_V2_HEADER: value})
    assert DIGEST not in str(e.value)


def test_a_v1_value_of_the_wrong_type_is_a_signature_error() -> None:
    with pytest.raises(SignatureError, match=f"{SIGNATURE_HEADER} must be a string.*got bytes"):
        _verify(BODY, {SIGNATURE_HEADER: sign_headers(BODY, SECRET)[SIGNATURE_HEADER].encode()})


def test_other_headers_of_any_type_are_ignored() -> None:
    _verify(BODY, {SIGNATURE_V2_HEADER: DIGEST, "X-Other": None, "X-Bytes": b"\xff", "X-N": 1})


def test_a_header_name_that_is_not_text_is_a_signature_error() -> None:
    with pytest.raises(SignatureError, match="header names must be strings, got bytes"):
        _verify(BODY, {SIGNATURE_V2_HEADER.encode(): DIGEST})


@pytest.mark.parametrize("value", ["\ud800" * 64, "é" * 64, "\x00" * 64, "", " "],
                         ids=["lone-surrogate", "non-ascii", "nul", "empty", "space"])
def test_a_signature_that_cannot_be_hex_is_a_mismatch(value: str) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        _verify(BODY, {SIGNATURE_V2_HEADER: value})


def _http_message(*lines: str) -> http.client.HTTPMessage:
    text = "".join(f"{line}\r\n" for line in lines) + "\r\n"
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


def test_http_server_headers_are_accepted() -> None:
    # BaseHTTPRequestHandler.headers is an HTTPMessage, not a Mapping.
    _verify(BODY, _http_message(f"agora-signature-v2: {DIGEST}", "Content-Type: application/json"))


def test_a_repeated_signature_header_with_different_values_is_a_signature_error() -> None:
    headers = _http_message(f"Agora-Signature-V2: {DIGEST}", f"Agora-Signature-V2: {'0' * 64}")
    with pytest.raises(SignatureError, match="present twice"):
        _verify(BODY, headers)


def test_a_repeated_signature_header_with_the_same_value_is_accepted() -> None:
    _verify(BODY, _http_message(f"Agora-Signature-V2: {DIGEST}", f"Agora-Signature-V2: {DIGEST}"))


@given(headers=st.dictionaries(
    st.one_of(st.sampled_from([SIGNATURE_V2_HEADER, SIGNATURE_HEADER.lower()]), st.text(),
              st.binary(max_size=4)),
    st.one_of(st.none(), st.text(), st.binary(), st.integers(), st.lists(st.text(), max_size=2)),
    max_size=4,
))
@settings(max_examples=200, deadline=None)
def test_no_header_mapping_raises_anything_but_a_signature_error(headers: dict[Any, Any]) -> None:
    with pytest.raises(SignatureError):
        _verify(BODY, headers)


# --------------------------------------------------------------------------------------------------
# Bodies: each malformed body, through parse_event and, signed, through verify_signature


MALFORMED: dict[str, tuple[bytes, str]] = {
    "nested-lists": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "nested-objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    "nested-payload": (b'{"notifyMs":1,"payload":' + b"[" * 100_000, "nested too deeply"),
    "not-utf8": (b'{"noticeId":"\xff\xfe"}', "not UTF-8"),
    "utf16": ('{"notifyMs":1}'.encode("utf-16"), "not UTF-8"),
    "nan": (b'{"notifyMs":NaN,"payload":{}}', "NaN is not JSON"),
    "infinity": (b'{"notifyMs":1,"payload":{"details":{"x":Infinity}}}', "Infinity is not JSON"),
    "minus-infinity": (b'{"notifyMs":-Infinity}', "-Infinity is not JSON"),
    "float-overflow": (b'{"notifyMs":1e400}', "overflows a float"),
    "huge-integer": (b'{"notifyMs":' + b"9" * 5000 + b"}", "too long to read"),
    "top-level-list": (b"[1, 2]", "expected a JSON object, got list"),
    "top-level-string": (b'"text"', "expected a JSON object, got str"),
    "top-level-number": (b"3", "expected a JSON object, got int"),
    "top-level-null": (b"null", "expected a JSON object, got nothing"),
    "empty": (b"", "not valid JSON"),
    "truncated": (b'{"notifyMs":', "not valid JSON"),
    "trailing-garbage": (b"{} {}", "not valid JSON"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_parse_event_refuses_a_malformed_body(case: str) -> None:
    body, message = MALFORMED[case]
    with pytest.raises(NotificationBodyError, match=message):
        parse_event(body)


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_verify_signature_refuses_a_signed_malformed_body(case: str) -> None:
    body, message = MALFORMED[case]
    with pytest.raises(NotificationBodyError, match=message):
        _verify(body, sign_headers(body, SECRET))


TEXT_CASES = [case for case in MALFORMED if case not in ("not-utf8", "utf16")]


@pytest.mark.parametrize("case", TEXT_CASES)
def test_parse_event_refuses_a_malformed_body_given_as_text(case: str) -> None:
    body, message = MALFORMED[case]
    with pytest.raises(NotificationBodyError, match=message):
        parse_event(body.decode("utf-8"))


@pytest.mark.parametrize("body", ["text", None, {"notifyMs": 1}, 42],
                         ids=["str", "None", "dict", "int"])
def test_verify_signature_wants_the_raw_bytes(body: Any) -> None:
    with pytest.raises(NotificationBodyError, match="raw request body as bytes"):
        _verify(body, {SIGNATURE_V2_HEADER: DIGEST})


def test_verify_signature_accepts_a_bytearray_body() -> None:
    _verify(bytearray(BODY), {SIGNATURE_V2_HEADER: DIGEST})


@pytest.mark.parametrize("body", [None, 42, [1], b"\x00"], ids=["None", "int", "list", "nul"])
def test_parse_event_refuses_a_non_object(body: Any) -> None:
    with pytest.raises(NotificationBodyError):
        parse_event(body)


@given(body=st.one_of(
    st.binary(max_size=64),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["notifyMs", "payload", "details", "uid"]),
                                   inner, max_size=3),
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
))
@settings(max_examples=300, deadline=None)
def test_no_body_raises_anything_but_a_notification_error(body: bytes) -> None:
    for call in (lambda: parse_event(body), lambda: _verify(body, sign_headers(body, SECRET))):
        with contextlib.suppress(NotificationError):
            call()
