"""The S3 upload policy is upload-only, proven against moto's IAM enforcement on loopback.

The exact JSON ``policies.aws_upload_policy`` generates (what ``AwsSnapshotBucket`` attaches) is put
on a moto IAM user; that user's key then tries each action (docs/storage.md 4.1).

How moto switches enforcement (measured in moto 5.2.5 source, not guessed): it compares a class-wide
request counter with ``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`` *at every request*
(moto/core/authorization.py, ``_authenticate_and_authorize_action``).  The environment variable is
only that setting's initial value at import, so the test needs no subprocess: it sets up as admin
inside ``disable_iam_authentication()`` and checks inside ``enable_iam_authentication()``, both of
which restore the previous state for other tests in the same process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import disable_iam_authentication, enable_iam_authentication
from moto.server import ThreadedMotoServer

from snapshot_resources.storage import policies

BUCKET = "agora-snaps"
PREFIX = "snapshots/lobby/"  # what fileNamePrefix ["snapshots", "lobby"] becomes
REGION = "us-east-1"


def _client(endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


@pytest.fixture(scope="module")
def uploader() -> Iterator[Any]:
    """An S3 client holding the key of a moto user with only the generated policy."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with disable_iam_authentication():
            admin = _client(endpoint, "admin", "admin")
            admin.create_bucket(Bucket=BUCKET)
            admin.put_object(Bucket=BUCKET, Key=PREFIX + "existing.jpg", Body=b"jpg")
            iam = boto3.client(
                "iam",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id="admin",
                aws_secret_access_key="admin",
            )
            iam.create_user(UserName="agora-uploader")
            iam.put_user_policy(
                UserName="agora-uploader",
                PolicyName="upload",
                PolicyDocument=policies.to_json(policies.aws_upload_policy(BUCKET, PREFIX)),
            )
            key = iam.create_access_key(UserName="agora-uploader")["AccessKey"]
        with enable_iam_authentication():
            yield _client(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.stop()


def _error_code(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def test_put_object_under_the_prefix_is_allowed(uploader: Any) -> None:
    assert (
        _error_code(lambda: uploader.put_object(Bucket=BUCKET, Key=PREFIX + "a.jpg", Body=b"jpg"))
        is None
    )


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("GetObject", lambda c: c.get_object(Bucket=BUCKET, Key=PREFIX + "existing.jpg")),
        ("ListBucket", lambda c: c.list_objects_v2(Bucket=BUCKET)),
        ("ListBucket (prefix)", lambda c: c.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)),
        ("DeleteObject", lambda c: c.delete_object(Bucket=BUCKET, Key=PREFIX + "existing.jpg")),
        ("PutObject outside", lambda c: c.put_object(Bucket=BUCKET, Key="other/a.jpg", Body=b"x")),
        ("PutObject at root", lambda c: c.put_object(Bucket=BUCKET, Key="a.jpg", Body=b"x")),
        (
            "PutObject sibling",
            lambda c: c.put_object(Bucket=BUCKET, Key="snapshots/lobbyx/a.jpg", Body=b"x"),
        ),
    ],
)
def test_everything_else_is_denied(
    uploader: Any, action: str, call: Callable[[Any], object]
) -> None:
    assert _error_code(lambda: call(uploader)) == "AccessDenied", action
