"""End to end on loopback: storage component -> moto IAM key -> session (ProviderHost) -> emulator
-> JPGs in moto (issue #5, acceptance).

The chain is the real one except for the cloud: ``AwsSnapshotBucket`` (under mocks) generates the
inline policy; moto's IAM, with enforcement on, holds a user with exactly that policy; a
bring-your-own target carries that user's key into a ``SnapshotSession`` driven through
``python -m pulumi.dynamic`` (ProviderHost), and the emulator uploads with the key it was given
(emulator/uploads.py: vendor 1 goes to ``s3_endpoint``).  A key without ``s3:PutObject`` must fail
the uploads, and the user must be able to see it: the NCS error event (code 32, storage
configuration error, S12), the state a refresh reports (status 4, never 5 "in progress", which
needs a first upload, S4) and the stop result (``uploadingStatus: backuped``, S6).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.sessions import session_inputs

from snapshot_resources.agora import wire
from snapshot_resources.agora.client import AgoraClient
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.storage import SnapshotBucketArgs, bring_your_own
from snapshot_resources.storage.aws import AwsSnapshotBucket
from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    S3Server,
    run_emulator,
    run_s3_server,
)
from snapshot_resources.testing.provider_host import HostedResource, ProviderHost
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

BUCKET = "agora-snaps"
PREFIX = ("snaps", "lobby")
CNAME = "lobby"
PUBLISHER = "1001"
DEADLINE = 20.0  # seconds of real time; at 50x a 5 s capture interval is 0.1 s


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with run_s3_server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def emulator(s3: S3Server, tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(
        time_scale=50.0, s3_endpoint=s3.endpoint_url, storage_dir=tmp_path / "storage"
    ) as handle:
        handle.admin.join(CNAME, PUBLISHER, video=True)
        yield handle


@pytest.fixture
def host(emulator: EmulatorHandle) -> Iterator[ProviderHost]:
    with ProviderHost(project="agora-snapshots") as provider_host:
        provider_host.configure(
            {
                "agora:customerId": emulator.customer_id,
                "agora:customerSecret": emulator.customer_secret,
                "agora:endpoint": emulator.url,
                "agora:pollInterval": "0.1",
                # A task stopped out of band may be gone (404) by the time delete stops it: a
                # short failover grace keeps that case inside the host's call timeout.
                "agora:failoverGrace": "3",
            },
            secret_keys=["agora:customerSecret"],
        )
        yield provider_host


def _generated_policy(mocks: PulumiMocks) -> dict[str, Any]:
    """The inline policy AwsSnapshotBucket attaches for this bucket and prefix."""
    args = SnapshotBucketArgs(
        bucket=BUCKET, region="us-east-1", file_name_prefix=PREFIX, retention_days=7
    )
    mocks.run(lambda: AwsSnapshotBucket("snaps", args).target)
    policy: dict[str, Any] = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    return policy


def _target(mocks: PulumiMocks, access_key: str, secret_key: str) -> dict[str, Any]:
    result = mocks.run(
        lambda: (
            bring_your_own(
                "moto",
                vendor="aws",
                region="us-east-1",
                bucket=BUCKET,
                access_key=access_key,
                secret_key=secret_key,
                file_name_prefix=PREFIX,
            ).target
        )
    )
    assert result.secret
    return dict(result.value)


def _start(host: ProviderHost, emulator: EmulatorHandle, storage: dict[str, Any]) -> HostedResource:
    session = host.resource(SnapshotSessionProvider(), name="lobby")
    checked = session.check(session_inputs(emulator.app_id, cname=CNAME, resourceExpiredHour=24,
                                           storage=storage))
    assert checked.failures == []
    session.create()
    return session


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_least_privilege_key_gets_snapshots_uploaded(
    mocks: PulumiMocks, s3: S3Server, emulator: EmulatorHandle, host: ProviderHost
) -> None:
    key = s3.create_user("agora-uploader", _generated_policy(mocks))
    session = _start(host, emulator, _target(mocks, key.access_key_id, key.secret_access_key))
    pattern = re.compile(str(session.outputs["fileNamePattern"]))
    prefix = "/".join(PREFIX) + "/"
    assert _wait_for(lambda: len(s3.keys(BUCKET, prefix)) >= 2)
    session.delete()

    uploaded = s3.keys(BUCKET)
    assert uploaded
    assert all(k.startswith(prefix) and pattern.fullmatch(k) for k in uploaded)
    assert s3.get(BUCKET, uploaded[0])[:3] == b"\xff\xd8\xff"  # a JPEG


def _no_put_session(
    mocks: PulumiMocks, s3: S3Server, emulator: EmulatorHandle, host: ProviderHost
) -> tuple[HostedResource, str]:
    policy = _generated_policy(mocks)
    policy["Statement"][0]["Action"] = ["s3:AbortMultipartUpload"]  # everything but PutObject
    key = s3.create_user("agora-no-put", policy)
    session = _start(host, emulator, _target(mocks, key.access_key_id, key.secret_access_key))
    return session, key.secret_access_key


def _error_events(emulator: EmulatorHandle, sid: str | None) -> list[dict[str, Any]]:
    return [
        e
        for e in emulator.admin.events()
        if e.get("eventType") == 1 and e.get("payload", {}).get("sid") == sid
    ]


def test_key_without_put_object_uploads_nothing_and_says_so(
    mocks: PulumiMocks, s3: S3Server, emulator: EmulatorHandle, host: ProviderHost
) -> None:
    session, secret = _no_put_session(mocks, s3, emulator, host)
    sid = session.id
    assert _wait_for(lambda: bool(_error_events(emulator, sid)))
    # The NCS event a webhook receives: 32, storage configuration error (S12); no key in it.
    assert _error_events(emulator, sid)[0]["payload"]["details"]["errorCode"] == 32
    assert secret not in json.dumps(emulator.admin.events())
    # Refresh shows a task that started (4) but never got to "in progress" (5, S4).
    assert session.read().outs["status"] == 4
    # Stop answers uploadingStatus "backuped": the files went to Agora's backup, not the bucket.
    client = AgoraClient(emulator.customer_id, emulator.customer_secret, endpoint=emulator.url)
    stopped = client.stop(
        emulator.app_id,
        str(session.outputs["resourceId"]),
        str(sid),
        wire.stop_body(CNAME, str(session.outputs["uid"])),
    )
    assert stopped.uploading_status == "backuped"
    session.delete()  # already stopped: delete is idempotent (design.md)
    assert s3.keys(BUCKET) == []


def test_destroying_a_session_whose_uploads_failed_tells_the_user(
    mocks: PulumiMocks, s3: S3Server, emulator: EmulatorHandle, host: ProviderHost
) -> None:
    session, secret = _no_put_session(mocks, s3, emulator, host)
    sid = session.id
    assert _wait_for(lambda: bool(_error_events(emulator, sid)))
    session.delete()  # what `pulumi destroy` runs; the engine shows the provider's stderr
    host.stop()
    assert f"session {sid} stopped with uploadingStatus 'backuped'" in host.stderr_text()
    assert secret not in host.stderr_text()
