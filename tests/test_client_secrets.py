"""No credential, token or storage key in any log record or exception text (issue #3 item 7).

A run with distinctive secret values goes through every path that writes text: successes,
retried faults, an error whose reason echoes the request, refused connections, timeouts and the
helpers.  Every log record (all loggers, DEBUG, urllib3 included) and every exception's text,
notes, chain and attributes are then searched for each secret.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.agora_stub import Received, Reply, refused_url, run_stub

from snapshot_resources.agora import errors
from snapshot_resources.agora.client import AgoraClient
from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.agora.retry import RetryPolicy

CUSTOMER_ID = "CUSTID-q7Zr81xK"
CUSTOMER_SECRET = "CSECRET-w3Jm0pLd"
ACCESS_KEY = "AKIA-SECRETKEYID-5tV"
SECRET_KEY = "SKEY-hP2x/9Qz+Lm"
STS_TOKEN = "STS-TOKEN-Jr6Wq2"
RTC_TOKEN = "006RTC-TOKEN-Yb4Nc8"
SECRETS = (
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    base64.b64encode(f"{CUSTOMER_ID}:{CUSTOMER_SECRET}".encode()).decode(),
    ACCESS_KEY,
    SECRET_KEY,
    STS_TOKEN,
    RTC_TOKEN,
)
APP = "appSecretsTest"
START: dict[str, Any] = {
    "cname": "c1",
    "uid": "527841",
    "clientRequest": {
        "token": RTC_TOKEN,
        "recordingConfig": {"channelType": 1, "streamTypes": 2, "subscribeUidGroup": 0},
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storageConfig": {"vendor": 1, "region": 0, "bucket": "b", "accessKey": ACCESS_KEY,
                          "secretKey": SECRET_KEY, "stsToken": STS_TOKEN},
    },
}


def exception_texts(exc: BaseException) -> Iterable[str]:
    yield "".join(traceback.format_exception(exc))
    yield repr(exc)
    yield repr(vars(exc))


def leaks(texts: Iterable[str]) -> list[tuple[str, str]]:
    return [(secret, text) for text in texts for secret in SECRETS if secret in text]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())
        self.texts.append(repr(record.__dict__))


def run_everything(client: AgoraClient, caught: list[BaseException], script: Callable[..., None],
                   echo: dict[str, Any]) -> None:
    def attempt(call: Callable[[], object]) -> None:
        try:
            call()
        except errors.AgoraError as exc:
            caught.append(exc)

    attempt(lambda: client.acquire_and_start(APP, {"cname": "c1", "uid": "527841"}, START))
    script(Reply(503), Reply(429, {"message": "API rate limit exceeded"}),
           Reply(206, {"code": 65, "reason": "request not completed"}))
    attempt(lambda: client.start(APP, "rid-1", START))
    script(Reply(400, echo))
    attempt(lambda: client.start(APP, "rid-1", START))
    script(*[Reply(503)] * 4)
    attempt(lambda: client.update(APP, "rid-1", "sid-1", START))
    script(Reply(401, {"message": "Invalid authentication credentials"}))
    attempt(lambda: client.stop(APP, "rid-1", "sid-1", START))
    script(Reply(404, {"code": 404, "reason": "failed to find worker"}))
    attempt(lambda: client.wait_until_running(APP, "rid-1", "sid-1", first_delay=0, timeout=1))
    script(Reply(delay=0.3), Reply(delay=0.3), Reply(delay=0.3), Reply(delay=0.3))
    attempt(lambda: client.start(APP, "rid-1", START))


def test_no_secret_in_logs_or_exceptions_against_the_stub() -> None:
    reset_registry()
    recorder = Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    caught: list[BaseException] = []
    # The stub echoes the request's secrets back in an error reason, as a careless server might.
    echo = {"code": 2, "reason": f"invalid storageConfig {ACCESS_KEY}/{SECRET_KEY} "
                                 f"for {CUSTOMER_ID}:{CUSTOMER_SECRET} token {RTC_TOKEN}"}
    try:
        with run_stub() as stub:
            policy = RetryPolicy(scale=0.001)
            with AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint=[stub.url], retry=policy,
                             timeout=0.1) as client:
                run_everything(client, caught, stub.script, echo)
            with AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint=refused_url(),
                             retry=policy) as dead:
                try:
                    dead.acquire(APP, START)
                except errors.AgoraError as exc:
                    caught.append(exc)
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)
    kinds = {type(e) for e in caught}
    # The run did reach every kind of text-producing failure.
    assert {errors.InvalidRequestError, errors.ServerError, errors.AuthError,
            errors.TaskNotRunningError, errors.AgoraTimeoutError,
            errors.AgoraTransportError} <= kinds
    assert any(SECRET_KEY.replace(SECRET_KEY, "***") in str(e) for e in caught)
    assert len(recorder.texts) > 20
    texts = [*recorder.texts, *(t for e in caught for t in exception_texts(e))]
    assert leaks(texts) == []


def test_redaction_keeps_the_rest_of_the_reason() -> None:
    reset_registry()
    with run_stub() as stub:
        stub.script(Reply(400, {"code": 2, "reason": f"bad secretKey {SECRET_KEY} in storage"}))
        client = AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint=stub.url)
        with client, pytest.raises(errors.InvalidRequestError) as info:
            client.start(APP, "rid-1", START)
    assert info.value.reason == "bad secretKey *** in storage"
    assert info.value.body["reason"] == "bad secretKey *** in storage"


def test_the_client_repr_shows_no_credential() -> None:
    client = AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint="http://127.0.0.1:9")
    assert leaks([repr(client), str(client)]) == []


WRONG_SECRET = "WRONG-SECRET-Tz5Kq1"


def test_no_secret_in_logs_or_exceptions_against_the_emulator() -> None:
    from snapshot_resources.testing.emulator import run_emulator

    reset_registry()
    recorder = Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    caught: list[BaseException] = []
    secrets = (*SECRETS, WRONG_SECRET)

    def attempt(call: Callable[[], object]) -> None:
        try:
            call()
        except errors.AgoraError as exc:
            caught.append(exc)

    policy = RetryPolicy(scale=0.001, max_attempts=3)
    try:
        with run_emulator(time_scale=50, qps=1000, customer_id=CUSTOMER_ID,
                          customer_secret=CUSTOMER_SECRET) as handle:
            app = handle.app_id
            acquire = {"cname": "c1", "uid": "527841", "clientRequest": {}}
            stop = {"cname": "c1", "uid": "527841", "clientRequest": {"async_stop": True}}
            with AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint=[refused_url(), handle.url],
                             retry=policy, qps=1000) as client:
                started = client.acquire_and_start(app, acquire, START)
                client.wait_until_running(app, started.resource_id, started.sid, first_delay=0,
                                          interval=0.02, timeout=5)
                attempt(lambda: client.acquire_and_start(app, acquire, START))  # 53
                no_file_type = {"captureInterval": 5}
                bad = {**START, "clientRequest": {**START["clientRequest"],
                                                  "snapshotConfig": no_file_type}}
                attempt(lambda: client.acquire_and_start(app, {**acquire, "uid": "9"},
                                                         {**bad, "uid": "9"}))  # 400 code 2
                handle.admin.set_faults(rate=1.0, operations=["query", "update", "stop"], seed=3)
                attempt(lambda: client.query(app, started.resource_id, started.sid))
                attempt(lambda: client.update(app, started.resource_id, started.sid, START))
                handle.admin.clear_faults()
                client.stop_quietly(app, started.resource_id, started.sid, stop)
                attempt(lambda: client.stop(app, started.resource_id, started.sid, stop))
            with AgoraClient(CUSTOMER_ID, WRONG_SECRET, endpoint=handle.url, retry=policy) as w:
                attempt(lambda: w.acquire(app, acquire))
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)
    assert {errors.TaskConflictError, errors.InvalidRequestError, errors.AuthError} <= {
        type(e) for e in caught}
    assert len(caught) >= 6
    texts = [*recorder.texts, *(t for e in caught for t in exception_texts(e))]
    found = [(s, t) for t in texts for s in secrets if s in t]
    assert found == []


def test_the_client_refuses_to_be_pickled() -> None:
    import pickle

    client = AgoraClient(CUSTOMER_ID, CUSTOMER_SECRET, endpoint="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(client)
    assert leaks(exception_texts(info.value)) == []


@given(
    secrets=st.lists(st.text(min_size=4, max_size=12), min_size=1, max_size=4),
    pieces=st.lists(st.text(max_size=8), max_size=6),
)
def test_redaction_leaves_no_secret_in_any_text(secrets: list[str], pieces: list[str]) -> None:
    from snapshot_resources.agora.redaction import Redactor

    text = "".join(p + s for p, s in zip(pieces, secrets * 3, strict=False)) + "".join(secrets)
    redacted = Redactor(secrets)(text)
    assert not any(s in redacted for s in secrets)


# --------------------------------------------------------------------------------------------------
# Encoded forms: a server that quotes the request back may print a secret JSON-escaped (a body
# dumped into a message), URL-encoded (a URL or form echoed) or as the Basic-auth token.

HARD_ID = "CUST-id/é+q&7Zr"
HARD_SECRET = 'CSEC"q\\7/é+ &<Zx9='
HARD_ACCESS_KEY = "AK é/+&<ID-5tV"
HARD_SECRET_KEY = 'SK/ü"\\+ &k2Q=='
HARD_STS = 'STS\\"é/+&Tk\u2028'
HARD_TOKEN = "006RTC/Tök+en&"
HARD_BASIC = base64.b64encode(f"{HARD_ID}:{HARD_SECRET}".encode()).decode()
HARD_SECRETS = (HARD_ID, HARD_SECRET, HARD_BASIC, f"{HARD_ID}:{HARD_SECRET}", HARD_ACCESS_KEY,
                HARD_SECRET_KEY, HARD_STS, HARD_TOKEN)
HARD_START: dict[str, Any] = {
    **START,
    "clientRequest": {
        **START["clientRequest"],
        "token": HARD_TOKEN,
        "storageConfig": {"vendor": 1, "region": 0, "bucket": "b", "accessKey": HARD_ACCESS_KEY,
                          "secretKey": HARD_SECRET_KEY, "stsToken": HARD_STS},
    },
}

# Each form as the standard library writes it (the redactor's own list is not reused here).
ENCODINGS: dict[str, Callable[[str], str]] = {
    "verbatim": lambda s: s,
    "json": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json-ascii": lambda s: json.dumps(s)[1:-1],
    "url-quote": lambda s: urllib.parse.quote(s, safe=""),
    "url-quote-default-safe": urllib.parse.quote,
    "url-quote-plus": urllib.parse.quote_plus,
}


def _sent_secrets(request: Received) -> list[str]:
    """The secrets as the stub received them: Basic-auth token decoded, body values."""
    token = request.headers["Authorization"].removeprefix("Basic ")
    customer_id, _, customer_secret = base64.b64decode(token).decode().partition(":")
    storage = json.loads(request.body)["clientRequest"]["storageConfig"]
    return [token, customer_id, customer_secret, f"{customer_id}:{customer_secret}",
            storage["accessKey"], storage["secretKey"], storage["stsToken"],
            json.loads(request.body)["clientRequest"]["token"]]


def _echo(encode: Callable[[str], str]) -> Callable[[Received], dict[str, Any]]:
    def reply(request: Received) -> dict[str, Any]:
        forms = [encode(secret) for secret in _sent_secrets(request)]
        return {"code": 2, "reason": "ECHO " + " | ".join(forms) + " END",
                "echo": {form: form for form in forms},
                "authorization": request.headers["Authorization"]}
    return reply


def hard_leaks(texts: Iterable[str]) -> list[tuple[str, str, str]]:
    return [(name, form, text) for text in texts for secret in HARD_SECRETS
            for name, encode in ENCODINGS.items()
            for form in [encode(secret)] if form in text]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_no_encoded_secret_in_logs_or_exceptions(encoding: str) -> None:
    reset_registry()
    recorder = Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        with run_stub() as stub:
            stub.script(Reply(400, echo=_echo(ENCODINGS[encoding])))
            client = AgoraClient(HARD_ID, HARD_SECRET, endpoint=stub.url)
            with client, pytest.raises(errors.InvalidRequestError) as info:
                client.start(APP, "rid-1", HARD_START)
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)
    # The stub did echo all eight secrets in this encoding; each one, and only it, is masked.
    assert info.value.reason == "ECHO " + " | ".join(["***"] * 8) + " END"
    assert info.value.body["echo"] == {"***": "***"}
    assert recorder.texts
    assert hard_leaks([*recorder.texts, *exception_texts(info.value)]) == []


def test_the_basic_auth_header_echoed_back_is_masked() -> None:
    reset_registry()
    with run_stub() as stub:
        stub.script(Reply(401, echo=lambda request: {
            "message": f"bad credentials in {request.headers['Authorization']}"}))
        client = AgoraClient(HARD_ID, HARD_SECRET, endpoint=stub.url)
        with client, pytest.raises(errors.AuthError) as info:
            client.start(APP, "rid-1", HARD_START)
    assert info.value.reason == "bad credentials in Basic ***"
    assert hard_leaks(exception_texts(info.value)) == []


def test_a_secret_echoed_in_the_request_id_header_is_masked() -> None:
    """The request id is the server's own header, printed in log lines and errors."""
    reset_registry()
    recorder = Recorder()
    logger = logging.getLogger("snapshot_resources.agora")
    logger.addHandler(recorder)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with run_stub() as stub:
            stub.script(Reply(400, body={"code": 2, "reason": "bad"},
                              headers={"X-Request-Id": f"req-{HARD_SECRET}"}))
            client = AgoraClient(HARD_ID, HARD_SECRET, endpoint=stub.url)
            with client, pytest.raises(errors.InvalidRequestError) as info:
                client.start(APP, "rid-1", HARD_START)
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(old_level)
    assert info.value.request_id == "req-***"
    assert recorder.texts
    assert hard_leaks([*recorder.texts, *exception_texts(info.value)]) == []


@pytest.mark.parametrize(
    ("secret", "form"),
    [
        ('ab"cd', 'ab\\"cd'),
        ("ab\\cd", "ab\\\\cd"),
        ("pässwörd", "p\\u00e4ssw\\u00f6rd"),
        ("ab/cd", "ab\\/cd"),
        ("a<b&c>d", "a\\u003cb\\u0026c\\u003ed"),
        ("ab cd/+é", "ab%20cd%2F%2B%C3%A9"),
        ("ab cd/+é", "ab%20cd/%2B%C3%A9"),
        ("ab cd/+é", "ab+cd%2F%2B%C3%A9"),
        ("ab cd/+é", "ab%20cd%2f%2b%c3%a9"),
        ("YWJjZA==", "YWJjZA"),
    ],
    ids=["json-quote", "json-backslash", "json-non-ascii", "json-slash", "go-html-safe",
         "quote", "quote-default-safe", "quote-plus", "quote-lower-hex", "base64-unpadded"],
)
def test_each_encoded_form_is_masked(secret: str, form: str) -> None:
    from snapshot_resources.agora.redaction import Redactor

    assert Redactor([secret])(f"before {form} after") == "before *** after"


@pytest.mark.parametrize("secret", ['a"b', "a\\b", "é/+", "a b"])
def test_secrets_shorter_than_four_characters_stay_unmasked_in_every_form(secret: str) -> None:
    from snapshot_resources.agora.redaction import Redactor

    text = " ".join(encode(secret) for encode in ENCODINGS.values())
    assert Redactor([secret])(text) == text


def test_an_extended_redactor_masks_the_forms_of_old_and_new_secrets() -> None:
    from snapshot_resources.agora.redaction import Redactor

    redact = Redactor(['old"one']).extended(["new/two"])
    assert redact('old\\"one new%2Ftwo old"one') == "*** *** ***"


def test_a_secret_echoed_as_a_key_is_masked_in_the_error_body() -> None:
    reset_registry()
    with run_stub() as stub:
        stub.script(Reply(400, {"code": 2, "reason": "unknown key", HARD_SECRET_KEY: "x"}))
        client = AgoraClient(HARD_ID, HARD_SECRET, endpoint=stub.url)
        with client, pytest.raises(errors.InvalidRequestError) as info:
            client.start(APP, "rid-1", HARD_START)
    assert "***" in info.value.body
    assert hard_leaks(exception_texts(info.value)) == []


@given(secret=st.text(min_size=4, max_size=12), before=st.text(max_size=6),
       after=st.text(max_size=6))
def test_redaction_leaves_no_encoded_form_in_any_text(secret: str, before: str,
                                                      after: str) -> None:
    from snapshot_resources.agora.redaction import Redactor

    redact = Redactor([secret])
    for encode in ENCODINGS.values():
        form = encode(secret)
        assert form not in redact(before + form + after)
