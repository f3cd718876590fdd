"""Test kit for the emulator: ``run_emulator``, the ``agora_emulator`` and ``s3_server`` fixtures.

``run_emulator(**options)`` starts an ``EmulatorServer`` on a free loopback port and yields an
``EmulatorHandle`` (``url``, ``app_id``, ``customer_id``, ``customer_secret``, ``storage_dir``,
``backend``, ``admin``); leaving the block stops every thread.  ``agora_emulator`` is the same
with a temporary storage directory and ``time_scale=50`` (a 5 s capture interval takes 0.1 s).

``s3_server`` is moto's S3 + IAM server on a free loopback port with IAM enforcement switched on
(docs/storage.md 4.1): every request must be signed by a key that exists in moto's IAM and
be allowed by its policy.  It creates an admin user for setting things up (``client()``), and
``create_user(name, policy)`` returns the keys of a user holding exactly ``policy``, so a test can
hand those keys to the emulator in ``storageConfig`` and see an upload pass or fail as at AWS.
moto keeps its state per process: the fixture resets it before and after.

Heavy imports (the emulator, Pillow, boto3, moto) happen inside the functions, so that loading
the pytest plugin stays cheap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import pytest
import requests

# Plain constants from a module without imports: the emulator itself loads inside the functions.
from snapshot_resources.emulator.defaults import (
    DEFAULT_APP_ID,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_CUSTOMER_SECRET,
)

if TYPE_CHECKING:
    from snapshot_resources.emulator.models import Backend

__all__ = [
    "AccessKey",
    "EmulatorAdmin",
    "EmulatorHandle",
    "RawAgora",
    "S3Server",
    "agora_emulator",
    "run_emulator",
    "run_s3_server",
    "s3_server",
    "snapshot_request",
]

FAST_TIME_SCALE: Final = 50.0
_TIMEOUT: Final = 10.0


class EmulatorAdmin:
    """A client of the emulator's ``/_emulator/`` admin API (routes listed in
    ``snapshot_resources.emulator.urls``).  Errors raise ``requests.HTTPError``.

    ``url`` (str): the emulator's base URL (``EmulatorHandle.url``).  ``app_id`` (str): the App ID
    that ``join``, ``set_publishing`` and ``leave`` use unless given another.  Methods: ``join``,
    ``set_publishing``, ``leave``, ``failover``, ``restore_task``, ``set_faults``,
    ``clear_faults``, ``tasks``, ``task``, ``counters``, ``request_log``, ``events``,
    ``channels``; ``close()`` releases the HTTP session.
    """

    def __init__(self, url: str, app_id: str) -> None:
        self.url = url
        self.app_id = app_id
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(method, f"{self.url}/_emulator/{path}", json=body,
                                         timeout=_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def _channel(self, cname: str, app_id: str | None) -> str:
        return f"channels/{quote(app_id or self.app_id, safe='')}/{quote(cname, safe='')}/users"

    def join(self, cname: str, uid: str | int, *, video: bool = True, audio: bool = True,
             app_id: str | None = None) -> None:
        """Put ``uid`` in the channel as a host, publishing video and audio as told."""
        self._call("POST", self._channel(cname, app_id),
                   {"uid": str(uid), "video": video, "audio": audio})

    def set_publishing(self, cname: str, uid: str | int, *, video: bool,
                       app_id: str | None = None) -> None:
        """Stop (``video=False``) or resume (``True``) publishing video (S8: snapshots pause)."""
        self._call("POST", f"{self._channel(cname, app_id)}/{uid}", {"video": video})

    def leave(self, cname: str, uid: str | int, app_id: str | None = None) -> None:
        self._call("DELETE", f"{self._channel(cname, app_id)}/{uid}")

    def failover(self, sid: str, *, downtime_seconds: float | None = None) -> dict[str, Any]:
        """Move the task to a new server: 404s for the downtime, then ``bak<n>_`` files."""
        body = {} if downtime_seconds is None else {"downtimeSeconds": downtime_seconds}
        result: dict[str, Any] = self._call("POST", f"tasks/{sid}/failover", body)
        return result

    def restore_task(self, *, resource_id: str, sid: str, cname: str, uid: str,
                     client_request: Mapping[str, Any], app_id: str | None = None,
                     resource_expired_hour: int = 720) -> dict[str, Any]:
        """Make the emulator run a task with the ids another emulator gave it (a state written
        against that one); ``client_request`` is the task's start ``clientRequest``. Returns the
        task's description; 400 (``requests.HTTPError``) when the body is not a valid start or
        the sid, or the channel and uid, already have a task."""
        result: dict[str, Any] = self._call("PUT", f"tasks/{quote(sid, safe='')}", {
            "appId": app_id or self.app_id, "resourceId": resource_id, "cname": cname,
            "uid": uid, "clientRequest": dict(client_request),
            "resourceExpiredHour": resource_expired_hour})
        return result

    def set_faults(self, *, rate: float, kinds: Sequence[str] = ("5xx", "206", "429", "reset"),
                   operations: Sequence[str] | None = None, latency_ms: int = 0,
                   seed: int = 0) -> None:
        self._call("PUT", "faults", {
            "rate": rate, "kinds": list(kinds),
            "operations": None if operations is None else list(operations),
            "latency_ms": latency_ms, "seed": seed})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_credentials(self, customer_id: str, customer_secret: str) -> None:
        """Accept only these credentials from now on (a secret reset in Agora Console)."""
        self._call("PUT", "credentials", {"customerId": customer_id,
                                          "customerSecret": customer_secret})

    def tasks(self) -> list[dict[str, Any]]:
        """Live tasks and recently finished ones (``state`` ``"gone"``)."""
        result: list[dict[str, Any]] = self._call("GET", "tasks")
        return result

    def task(self, sid: str) -> dict[str, Any]:
        """The newest entry for ``sid``; ``KeyError`` if the emulator never had it."""
        for entry in reversed(self.tasks()):
            if entry["sid"] == sid:
                return dict(entry)
        raise KeyError(sid)

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "counters")
        return result

    def request_log(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def events(self) -> list[dict[str, Any]]:
        """Recent NCS event bodies, as they are (or would be) posted."""
        result: list[dict[str, Any]] = self._call("GET", "events")
        return result

    def channels(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "channels")
        return result


@dataclass
class EmulatorHandle:
    """A running emulator, as ``run_emulator`` and the ``agora_emulator`` fixture yield it.

    ``url`` (str): the base URL, e.g. ``http://127.0.0.1:8765``; use it as ``agora:endpoint``.
    ``app_id`` (str): an App ID the emulator accepts.  ``customer_id``, ``customer_secret`` (str):
    its Basic auth credentials (``auth`` gives the pair for ``requests``).  ``storage_dir``
    (``Path``): where snapshots land, ``<storage_dir>/<bucket>/<key>``.  ``backend``: the
    in-process state machine (``emulator.models.Backend``).  ``admin`` (``EmulatorAdmin``): a
    client of the admin API.
    """

    url: str
    app_id: str
    customer_id: str = field(repr=False)
    customer_secret: str = field(repr=False)
    storage_dir: Path
    backend: Backend
    admin: EmulatorAdmin

    @property
    def auth(self) -> tuple[str, str]:
        """``(customer_id, customer_secret)`` for ``requests``' Basic auth."""
        return (self.customer_id, self.customer_secret)


@contextmanager
def run_emulator(
    *,
    time_scale: float = 1.0,
    qps: int = 10,
    max_tasks: int = 50,
    latency_ms: int = 0,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    s3_endpoint: str | None = None,
    storage_dir: Path | str | None = None,
    app_id: str = DEFAULT_APP_ID,
    customer_id: str = DEFAULT_CUSTOMER_ID,
    customer_secret: str = DEFAULT_CUSTOMER_SECRET,
    log_requests: bool = False,
    seed: int = 0,
    port: int = 0,
    **more: Any,
) -> Iterator[EmulatorHandle]:
    """A running emulator on ``127.0.0.1:<free port>``; stopped (every thread joined) on exit.

    ``more`` passes other ``EmulatorOptions`` fields (``failover_seconds``, ``exit_seconds``,
    ``clock``, extra ``app_ids``...).

    The keyword arguments are ``EmulatorOptions`` fields (see there): ``time_scale`` (emulated
    seconds per real second, default 1), ``qps`` (requests per second per App ID, 10),
    ``max_tasks`` (concurrent tasks per App ID, 50), ``latency_ms`` (added to every answer, 0),
    ``webhook_url`` and ``webhook_secret`` (NCS events, none by default), ``s3_endpoint`` (where
    vendor 1 uploads go), ``storage_dir`` (``Path`` | str | None; None: a temporary directory),
    ``app_id`` (the first accepted App ID), ``customer_id`` and ``customer_secret`` (Basic auth,
    demo values), ``log_requests`` (one stderr line per request) and ``seed`` (injected faults).

    Yields an ``EmulatorHandle``.  Raises ``TypeError`` for an unknown option and ``OSError`` if
    the server cannot bind.
    """
    from snapshot_resources.emulator.server import EmulatorOptions, EmulatorServer

    app_ids = (app_id, *more.pop("app_ids", ()))
    options = EmulatorOptions(
        host="127.0.0.1", port=port, storage_dir=None if storage_dir is None else Path(storage_dir),
        app_ids=app_ids, customer_id=customer_id, customer_secret=customer_secret,
        time_scale=time_scale, latency_ms=latency_ms, qps=qps, max_tasks=max_tasks,
        webhook_url=webhook_url, webhook_secret=webhook_secret, s3_endpoint=s3_endpoint,
        log_requests=log_requests, seed=seed, **more,
    )
    server = EmulatorServer(options)
    server.start()
    admin = EmulatorAdmin(server.url, app_id)
    try:
        yield EmulatorHandle(url=server.url, app_id=app_id, customer_id=customer_id,
                             customer_secret=customer_secret, storage_dir=server.storage_dir,
                             backend=server.backend, admin=admin)
    finally:
        admin.close()
        server.stop()


@pytest.fixture
def agora_emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """A running emulator with default limits, storage in ``tmp_path / "storage"`` and a
    50x clock."""
    with run_emulator(time_scale=FAST_TIME_SCALE, storage_dir=tmp_path / "storage") as handle:
        yield handle


# --------------------------------------------------------------------------------------------------
# moto S3 + IAM


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass
class S3Server:
    endpoint_url: str
    region: str
    admin_key: AccessKey

    def client(self, service: str = "s3", key: AccessKey | None = None) -> Any:
        """A boto3 client signed with ``key`` (default: the admin key), path-style addressing."""
        import boto3
        from botocore.config import Config

        key = key or self.admin_key
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_user(self, name: str, policy: dict[str, Any] | str) -> AccessKey:
        """An IAM user with exactly ``policy`` (inline) and a new access key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        document = policy if isinstance(policy, str) else json.dumps(policy)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=document)
        created = iam.create_access_key(UserName=name)["AccessKey"]
        return AccessKey(created["AccessKeyId"], created["SecretAccessKey"])

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``, read with the admin key."""
        s3 = self.client()
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(str(item["Key"]) for item in page.get("Contents", ()))
        return found

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


ALLOW_ALL: Final = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@contextmanager
def run_s3_server(region: str = "us-east-1") -> Iterator[S3Server]:
    """moto S3 + IAM on a free loopback port, IAM enforced (see the module docstring).

    ``region`` (str, default ``"us-east-1"``): the region clients sign for.  Yields an
    ``S3Server`` (``endpoint_url``, ``region``, ``admin_key``; ``client()``, ``create_user(name,
    policy)``, ``keys(bucket)``, ``get(bucket, key)``); moto's state is reset before and after.
    Needs the ``moto`` server extra; raises ``requests.HTTPError`` if the reset fails.
    """
    from moto.core import disable_iam_authentication, enable_iam_authentication
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        _reset_moto(endpoint)
        with disable_iam_authentication():
            # Set-up runs unauthenticated, then everything is checked against IAM (storage.md 4.1).
            bootstrap = S3Server(endpoint, region, AccessKey("bootstrap", "bootstrap"))
            admin = bootstrap.create_user("moto-admin", ALLOW_ALL)
        with enable_iam_authentication():
            yield S3Server(endpoint, region, admin)
    finally:
        _reset_moto(endpoint)
        server.stop()


def _reset_moto(endpoint: str) -> None:
    # moto's backends are process-wide: start and leave every test with an empty account.
    requests.post(f"{endpoint}/moto-api/reset", timeout=_TIMEOUT).raise_for_status()


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """moto's S3 + IAM server on loopback with IAM enforced; admin keys via ``client()``."""
    with run_s3_server() as server:
        yield server


# --------------------------------------------------------------------------------------------------
# Raw REST calls, for tests of the emulator itself and of what sits on the other side of the wire


def snapshot_request(
    *,
    bucket: str = "snapshots",
    vendor: int = 1,
    region: int = 0,
    access_key: str = "emulator-access-key",
    secret_key: str = "emulator-secret-key",  # noqa: S107 - a local test value
    prefix: Sequence[str] = (),
    capture_interval: int = 5,
    max_idle_time: int = 30,
    subscribe_video_uids: Sequence[str] | None = ("#allstream#",),
    endpoint: str | None = None,
) -> dict[str, Any]:
    """A valid snapshot-only ``clientRequest`` for start (docs/agora-api.md 3.1), with the knobs tests
    turn most."""
    recording: dict[str, Any] = {"channelType": 1, "streamTypes": 2,
                                 "maxIdleTime": max_idle_time, "subscribeUidGroup": 0}
    if subscribe_video_uids is not None:
        recording["subscribeVideoUids"] = list(subscribe_video_uids)
    storage: dict[str, Any] = {"vendor": vendor, "region": region, "bucket": bucket,
                               "accessKey": access_key, "secretKey": secret_key}
    if prefix:
        storage["fileNamePrefix"] = list(prefix)
    if endpoint is not None:
        storage["extensionParams"] = {"endpoint": endpoint}
    return {"recordingConfig": recording,
            "snapshotConfig": {"captureInterval": capture_interval, "fileType": ["jpg"]},
            "storageConfig": storage}


class RawAgora:
    """Agora's REST paths on the emulator, answers returned as ``requests.Response`` unparsed."""

    def __init__(self, handle: EmulatorHandle, *, app_id: str | None = None) -> None:
        self.app_id = app_id or handle.app_id
        self.base = f"{handle.url}/v1/apps/{self.app_id}/cloud_recording"
        self.session = requests.Session()
        self.session.auth = handle.auth
        self.session.headers["Content-Type"] = "application/json;charset=utf-8"

    def close(self) -> None:
        self.session.close()

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(f"{self.base}/{path}", data=json.dumps(body), timeout=_TIMEOUT)

    def acquire(self, cname: str, uid: str,
                client_request: dict[str, Any] | None = None) -> requests.Response:
        return self.post("acquire", {"cname": cname, "uid": uid,
                                     "clientRequest": client_request or {}})

    def start(self, resource_id: str, cname: str, uid: str, client_request: dict[str, Any],
              *, mode: str = "individual") -> requests.Response:
        return self.post(f"resourceid/{resource_id}/mode/{mode}/start",
                         {"cname": cname, "uid": uid, "clientRequest": client_request})

    def query(self, resource_id: str, sid: str, *, mode: str = "individual") -> requests.Response:
        return self.session.get(f"{self.base}/resourceid/{resource_id}/sid/{sid}/mode/{mode}"
                                "/query", timeout=_TIMEOUT)

    def update(self, resource_id: str, sid: str, cname: str, uid: str,
               client_request: dict[str, Any]) -> requests.Response:
        return self.post(f"resourceid/{resource_id}/sid/{sid}/mode/individual/update",
                         {"cname": cname, "uid": uid, "clientRequest": client_request})

    def stop(self, resource_id: str, sid: str, cname: str, uid: str, *,
             async_stop: bool = False) -> requests.Response:
        return self.post(f"resourceid/{resource_id}/sid/{sid}/mode/individual/stop",
                         {"cname": cname, "uid": uid,
                          "clientRequest": {"async_stop": async_stop}})

    def begin(self, cname: str, uid: str, client_request: dict[str, Any]) -> tuple[str, str]:
        """acquire + start; returns ``(resourceId, sid)`` or raises ``AssertionError``."""
        acquired = self.acquire(cname, uid)
        assert acquired.status_code == 200, acquired.text
        resource_id = str(acquired.json()["resourceId"])
        started = self.start(resource_id, cname, uid, client_request)
        assert started.status_code == 200, started.text
        return resource_id, str(started.json()["sid"])
