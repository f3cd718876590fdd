"""No credential, token or storage key in any log record or exception text (issue #3 item 7).

A run with distinctive secret values goes through every path that writes text: successes,
retried faults, an error whose reason echoes the request, refused connections, timeouts and the
helpers.  Every log record (all loggers, DEBUG, urllib3 included) and every exception's text,
notes, chain and attributes are then searched for each secret.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.agora_stub import Reply, refused_url, run_stub

from snapshot_resources.agora import errors
from snapshot_resources.agora.client import AgoraClient
from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.agora.retry import RetryPolicy

CUSTOMER_ID = "CUSTID-q7Zr81xK"
CUSTOMER_SECRET = "CSECRET-w3Jm0pLd"
ACCESS_KEY = "AKIA-SECRETKEYID-5tV"
SECRET_KEY = "SKEY-hP2x/9Qz+Lm"
STS_TOKEN = "STS-TOKEN-Jr6Wq2"
RTC_TOKEN = "007RTC-TOKEN-Yb4Nc8"
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
    from snapshot_resources.agora.client import _Redactor

    text = "".join(p + s for p, s in zip(pieces, secrets * 3, strict=False)) + "".join(secrets)
    redacted = _Redactor(secrets)(text)
    assert not any(s in redacted for s in secrets)
