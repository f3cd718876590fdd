"""Secrets never leak (issue #7 item 4; CONTRIBUTING.md: "Secrets ... never appear in a log line,
exception text, URL or non-secret output. Tests assert this with distinctive values").

One full lifecycle with distinctive values for every secret: Agora credentials, the App
Certificate (the provider then builds AccessToken2 tokens itself), storage keys and an STS token,
their rotation, a user-given RTC token and a decryption secret.  It runs check -> create -> diff
-> update -> read -> delete through the engine's gRPC path (``ProviderHost``, with DEBUG logging
switched on inside the provider process) and again in-process (``caplog`` at DEBUG), with
deliberate failures on the way (401, a task conflict, a check failure and a create with inputs
that break the rules, both involving the storage keys).  Then every place a secret must not reach
is scanned: non-secret outputs and checked inputs, the serialized provider, every log line, the
provider process's stdout and stderr, every failure and exception text, the emulator's request
log and log stream, and every URL the emulator saw.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from support.provider_settings import TIME_SCALE, provider_config
from support.sessions import SNAPSHOT_CONFIG

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.spec import PROJECT
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.provider_host import (
    PROVIDER_KEY,
    ProviderError,
    ProviderHost,
    SecretPath,
    provider_property,
    secret,
)

CUSTOMER_ID = "cid7Kq2Wz9Lm4Rt8"
CUSTOMER_SECRET = "csecVb8Nm4Xr6Hd1Pq3"
WRONG_SECRET = "wrongTz9Kd2Qa5Ej7"
APP_CERTIFICATE = "deadbeef0badc0de5eed1234feedface"  # 32 hex characters
ACCESS_KEY = "AKIAakQm7Rt2Wx5Zc"
SECRET_KEY = "skHy6Pn3Jc9Lz4Vb0"
ROTATED_ACCESS_KEY = "AKIArotGf5Ks8Vu1Ny"
ROTATED_SECRET_KEY = "skrotBq4Wm7Ez2Xc6"
STS_TOKEN = "stsMn3Zx8Qw1Ty6Ur"
USER_TOKEN = "006userTokRf3Dk8Wq5Hs2"
DECRYPTION_SECRET = "decSecJ4nP9vL2kX7"


def forbidden_values(built_tokens: list[str]) -> dict[str, str]:
    """Every secret, and the forms it travels in (the Basic-auth header is base64)."""
    values = {
        "customer id": CUSTOMER_ID, "customer secret": CUSTOMER_SECRET,
        "wrong secret": WRONG_SECRET, "app certificate": APP_CERTIFICATE,
        "access key": ACCESS_KEY, "secret key": SECRET_KEY,
        "rotated access key": ROTATED_ACCESS_KEY, "rotated secret key": ROTATED_SECRET_KEY,
        "sts token": STS_TOKEN, "user token": USER_TOKEN, "decryption secret": DECRYPTION_SECRET,
    }
    for label, (user, password) in {"basic auth": (CUSTOMER_ID, CUSTOMER_SECRET),
                                     "wrong basic auth": (CUSTOMER_ID, WRONG_SECRET)}.items():
        values[label] = base64.b64encode(f"{user}:{password}".encode()).decode()
    for i, token in enumerate(built_tokens):
        values[f"built token {i}"] = token
    return values


def leaks(texts: Mapping[str, str], values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, which secret) for every secret found in a text."""
    return [(where, label) for where, text in texts.items() for label, value in values.items()
            if value in text]


def non_secret_leaves(value: Any, secret_paths: frozenset[SecretPath],
                      path: SecretPath = ()) -> Iterator[tuple[str, str]]:
    """(dotted path, text) of every value not under a secret path."""
    if path in secret_paths:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from non_secret_leaves(item, secret_paths, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from non_secret_leaves(item, secret_paths, (*path, str(index)))
    else:
        yield ".".join(path), str(value)


def pickle_text(provider_value: str) -> str:
    """The ``__provider`` string and the pickle inside it, as text to scan."""
    raw = base64.b64decode(provider_value)
    return provider_value + "\n" + raw.decode("latin-1")


def session_a(app_id: str, *, access: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
              uids: tuple[str, ...] = ("101",)) -> dict[str, Any]:
    """Decryption secret, STS token, storage keys as a storage component emits them (the keys
    secret, the rest plain); no token: the provider builds one from the App Certificate."""
    return {
        "appId": app_id, "cname": "vault", "uid": "424242",
        "recordingConfig": {"channelType": 1, "decryptionMode": 1,
                            "secret": secret(DECRYPTION_SECRET),
                            "subscribeVideoUids": list(uids)},
        "snapshotConfig": SNAPSHOT_CONFIG,
        "storage": {"vendor": 2, "region": 3, "bucket": "snaps", "fileNamePrefix": ["vault"],
                    "accessKey": secret(access), "secretKey": secret(secret_key),
                    "stsToken": secret(STS_TOKEN), "stsExpiration": 1_900_000_000},
    }


def session_b(app_id: str) -> dict[str, Any]:
    """A session with a user-given RTC token."""
    return {
        "appId": app_id, "cname": "hall", "uid": "535353", "token": secret(USER_TOKEN),
        "recordingConfig": {"channelType": 1, "subscribeVideoUids": ["#allstream#"]},
        "snapshotConfig": SNAPSHOT_CONFIG,
        "storage": {"vendor": 2, "region": 3, "bucket": "snaps",
                    "accessKey": secret(ACCESS_KEY), "secretKey": secret(SECRET_KEY)},
    }


def broken_storage(app_id: str) -> dict[str, Any]:
    """Breaks rules next to the storage keys: a check failure and a create that must refuse."""
    inputs = session_a(app_id)
    inputs["storage"] = {**inputs["storage"], "vendor": 99, "accessKey": secret([ACCESS_KEY]),
                         "secretKey": secret(5), "stsExpiration": -1}
    inputs["token"] = secret(["x", USER_TOKEN])
    return inputs


class Texts:
    """Everything collected for the scan, by where it came from."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, where: str, text: str) -> None:
        key, n = where, 1
        while key in self.items:
            n += 1
            key = f"{where} #{n}"
        self.items[key] = text

    def outputs(self, where: str, outs: Mapping[str, Any],
                secret_paths: frozenset[SecretPath]) -> None:
        for path, text in non_secret_leaves(dict(outs), secret_paths):
            if path == PROVIDER_KEY:
                text = pickle_text(text)
            self.add(f"{where} non-secret output {path}", text)

    def error(self, where: str, error: BaseException) -> None:
        self.add(f"{where} exception", "".join(traceback.format_exception(error)))
        self.add(f"{where} exception repr", repr(error))
        if isinstance(error, ProviderError):
            self.add(f"{where} provider error", error.message)


def record_tokens(emulator: EmulatorHandle, sink: list[str]) -> None:
    """Keep the RTC token of every start the emulator receives (the ones the provider built)."""
    backend: Any = emulator.backend
    original = backend.start

    def start(app_id: str, resource_id: str, mode: str, body: object) -> dict[str, Any]:
        if isinstance(body, Mapping):
            token = body.get("clientRequest", {}).get("token")
            if isinstance(token, str):
                sink.append(token)
        result: dict[str, Any] = original(app_id, resource_id, mode, body)
        return result

    backend.start = start


def debug_logging_env(directory: Path) -> dict[str, str]:
    """An environment whose Python processes log everything at DEBUG to stderr."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,\n"
        "                    format='%(name)s %(levelname)s %(message)s')\n",
        encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(directory), env.get("PYTHONPATH")) if p)
    return env


def configure(host: ProviderHost, emulator: EmulatorHandle, customer_secret: str) -> None:
    config = provider_config(emulator, **{"agora:appCertificate": APP_CERTIFICATE,
                                          "agora:customerSecret": customer_secret,
                                          "agora:exitTimeout": "5"})
    host.configure(config, secret_keys=("agora:customerId", "agora:customerSecret",
                                        "agora:appCertificate"))


def hosted_lifecycle(host: ProviderHost, emulator: EmulatorHandle, texts: Texts) -> None:
    app = emulator.app_id
    # Session A: the provider builds the token; update rotates the storage keys in place.
    a = host.resource(SnapshotSessionProvider(), name="vault")
    checked = a.check(session_a(app))
    assert checked.failures == []
    texts.outputs("check A", checked.inputs, checked.secret_paths)
    created = a.create()
    texts.outputs("create A", created.outs, created.secret_paths)
    assert created.outs["status"] in (4, 5)
    # The keys the engine must keep secret are secret; the rest of storage is not.
    assert {("storage", "accessKey"), ("storage", "secretKey"), ("storage", "stsToken"),
            ("recordingConfig", "secret")} <= created.secret_paths
    assert ("storage", "bucket") not in created.secret_paths
    # The values did flow: they are in the outputs, where the engine keeps them encrypted.
    assert created.outs["storage"]["secretKey"] == SECRET_KEY
    assert created.outs["recordingConfig"]["secret"] == DECRYPTION_SECRET

    rotated = session_a(app, access=ROTATED_ACCESS_KEY, secret_key=ROTATED_SECRET_KEY,
                        uids=("101", "102"))
    diff = a.diff(rotated)
    assert diff.changes != "DIFF_NONE"
    assert diff.replaces == []
    texts.add("diff A", repr(diff))
    assert a.check(rotated).failures == []
    updated = a.update()
    texts.outputs("update A", updated.outs, updated.secret_paths)
    assert updated.outs["storage"]["accessKey"] == ROTATED_ACCESS_KEY
    read = a.read()
    assert read.id
    texts.outputs("read A", read.outs, read.secret_paths)
    if read.inputs is not None:
        texts.outputs("read A inputs", read.inputs, read.secret_paths)

    # Session B: a user-given token.
    b = host.resource(SnapshotSessionProvider(), name="hall")
    assert b.check(session_b(app)).failures == []
    created_b = b.create()
    assert ("token",) in created_b.secret_paths
    assert created_b.outs["token"] == USER_TOKEN
    texts.outputs("create B", created_b.outs, created_b.secret_paths)
    read_b = b.read()
    texts.outputs("read B", read_b.outs, read_b.secret_paths)

    # Deliberate failures.
    found = a.check(broken_storage(app)).failures
    assert {reason.split(":")[0] for _, reason in found} >= {
        "storage.vendor", "storage.accessKey", "storage.secretKey", "token"}
    for prop, reason in found:
        texts.add("check failure", f"{prop}: {reason}")
    refused = host.resource(SnapshotSessionProvider(), name="refused")
    with pytest.raises(ProviderError) as refused_error:
        refused.create({**broken_storage(app), "cname": "other"})
    texts.error("create with broken storage", refused_error.value)
    twin = host.resource(SnapshotSessionProvider(), name="twin")
    with pytest.raises(ProviderError) as conflict:
        twin.create(session_a(app))  # same channel and uid as A, still running: task conflict
    texts.error("conflicting create", conflict.value)

    a.delete()
    b.delete()
    texts.add("pickled provider", pickle_text(provider_property(SnapshotSessionProvider())))
    texts.add("resource provider value", pickle_text(a.provider_value))


def hosted_with_wrong_secret(env: dict[str, str], emulator: EmulatorHandle, texts: Texts) -> None:
    with ProviderHost(env=env) as host:
        configure(host, emulator, WRONG_SECRET)
        res = host.resource(SnapshotSessionProvider(), name="unauthorized")
        with pytest.raises(ProviderError) as caught:
            res.create(session_b(emulator.app_id))
        texts.error("create with a wrong secret", caught.value)
        assert "401" in caught.value.message or "credential" in caught.value.message.lower()
        host.stop()
        texts.add("wrong-secret host stdout", host.stdout_text())
        texts.add("wrong-secret host stderr", host.stderr_text())


def plain_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs as the provider receives them: secret wrappers removed (acceptSecrets=False)."""
    from pulumi.runtime import rpc

    def unwrap(value: Any) -> Any:
        if rpc.is_rpc_secret(value):
            return unwrap(rpc.unwrap_rpc_secret(value))
        if isinstance(value, Mapping):
            return {k: unwrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v) for v in value]
        return value

    result: dict[str, Any] = unwrap(dict(inputs))
    return result


def in_process_lifecycle(emulator: EmulatorHandle, texts: Texts) -> None:
    """The same steps with the provider in this process, so that caplog sees the client's log."""
    def provider(customer_secret: str) -> SnapshotSessionProvider:
        raw = {**provider_config(emulator), "agora:customerSecret": customer_secret,
               "agora:appCertificate": APP_CERTIFICATE, "agora:exitTimeout": "5"}
        instance = SnapshotSessionProvider()
        instance.configure(ConfigureRequest(Config(raw, PROJECT)))
        return instance

    good = provider(CUSTOMER_SECRET)
    app = emulator.app_id
    news = plain_inputs({**session_a(app), "cname": "inproc"})
    assert good.check({}, news).failures == []
    created = good.create(news)
    outs = created.outs
    assert outs is not None
    rotated = plain_inputs({**session_a(app, access=ROTATED_ACCESS_KEY,
                                        secret_key=ROTATED_SECRET_KEY, uids=("7",)),
                            "cname": "inproc"})
    good.diff(created.id, outs, rotated)
    updated = good.update(created.id, outs, rotated)
    assert updated.outs is not None
    good.read(created.id, updated.outs)
    failing_calls: list[tuple[Callable[[], object], str]] = [
        (lambda: good.create(plain_inputs(broken_storage(app))),
         "in-process create with broken storage"),
        (lambda: provider(WRONG_SECRET).create(plain_inputs({**session_b(app), "cname": "nope"})),
         "in-process create with a wrong secret"),
    ]
    for failing, label in failing_calls:
        try:
            failing()
        except Exception as exc:
            texts.error(label, exc)
        else:
            pytest.fail(f"{label} succeeded")
    for failure in good.check({}, plain_inputs(broken_storage(app))).failures:
        texts.add("in-process check failure", f"{failure.property}: {failure.reason}")
    good.delete(created.id, updated.outs)


def test_no_secret_leaks_anywhere_in_a_full_lifecycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger of this process: client, emulator, urllib3
    texts = Texts()
    built_tokens: list[str] = []
    stream = io.StringIO()
    env = debug_logging_env(tmp_path / "site")
    with run_emulator(time_scale=TIME_SCALE, storage_dir=tmp_path / "storage",
                      customer_id=CUSTOMER_ID, customer_secret=CUSTOMER_SECRET,
                      log_requests=True, log_stream=stream,
                      qps=1000) as emulator:  # several fresh clients in a row: no 429 here
        record_tokens(emulator, built_tokens)
        for uid in ("101", "102"):
            emulator.admin.join("vault", uid)
        with ProviderHost(env=env) as host:
            configure(host, emulator, CUSTOMER_SECRET)
            hosted_lifecycle(host, emulator, texts)
            host.stop()
            texts.add("provider stdout", host.stdout_text())
            texts.add("provider stderr", host.stderr_text())
        hosted_with_wrong_secret(env, emulator, texts)
        in_process_lifecycle(emulator, texts)
        time.sleep(0.1)  # let the emulator finish logging the last requests
        request_log = emulator.admin.request_log()
    for i, entry in enumerate(request_log):
        texts.add(f"emulator request log {i}", repr(entry))
    texts.add("emulator log stream", stream.getvalue())
    for record in caplog.records:
        texts.add(f"log record {record.name}", record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.error(f"log record {record.name}", record.exc_info[1])
    out, err = capfd.readouterr()
    texts.add("test process stdout", out)
    texts.add("test process stderr", err)

    # The scan is only as good as what it covers: prove each source was really collected.
    assert len(built_tokens) >= 2
    assert any(t.startswith("007") for t in built_tokens)  # built by the provider
    urls = [str(entry["path"]) for entry in request_log]
    assert any("/start" in u for u in urls)
    assert any("/update" in u for u in urls)
    assert any("/stop" in u for u in urls)
    assert any("/query" in u for u in urls)
    assert re.search(r"POST \S+/acquire 200", stream.getvalue())
    assert "DEBUG" in texts.items["provider stderr"]  # the provider process logged at DEBUG
    assert any(r.name.startswith("snapshot_resources") for r in caplog.records)
    assert any("401" in r.getMessage() or "/acquire" in r.getMessage()
               for r in caplog.records if r.name.startswith("urllib3"))
    assert sum(where.endswith("provider error") for where in texts.items) >= 3
    assert any("check failure" in where for where in texts.items)

    found = leaks(texts.items, forbidden_values(built_tokens))
    assert found == [], "\n".join(f"{label} in {where}: {around(texts.items[where], label)!r}"
                                  for where, label in found)


def around(text: str, label: str) -> str:
    """The text near the first occurrence of a secret, for the failure message."""
    at = text.find(forbidden_values([]).get(label, "\0"))
    return text[max(0, at - 120): at + 60] if at >= 0 else text[:180]


def test_the_scan_finds_a_planted_secret() -> None:
    # The scan itself can fail: a secret in a non-secret output, a log line or a base64 header
    # is reported.
    texts = Texts()
    texts.outputs("create", {"bucket": SECRET_KEY, "storage": {"accessKey": ACCESS_KEY}},
                  frozenset({("storage", "accessKey")}))
    texts.add("log", "Authorization: Basic " + base64.b64encode(
        f"{CUSTOMER_ID}:{CUSTOMER_SECRET}".encode()).decode())
    found = leaks(texts.items, forbidden_values([]))
    assert ("create non-secret output bucket", "secret key") in found
    assert ("log", "basic auth") in found
    assert not any(where.endswith("storage.accessKey") for where, _ in found)
