"""Uploads to an S3 API with the task's own keys, against moto with IAM enforced (issue item 4).

A good key puts the files in the bucket under their documented names; a key without
``s3:PutObject`` is refused as AWS would refuse it, and the task reports it (NCS 1, stop's
``uploadingStatus``).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from support.waiting import wait_for

from snapshot_resources.naming import parse_snapshot_name
from snapshot_resources.testing.emulator import (
    AccessKey,
    RawAgora,
    S3Server,
    run_emulator,
    snapshot_request,
)

CNAME, BOT, BUCKET = "lobby", "527841", "agora-snaps"



def _policy(*actions: str) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": list(actions), "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}


@pytest.fixture
def bucket(s3_server: S3Server) -> S3Server:
    s3_server.client().create_bucket(Bucket=BUCKET)
    return s3_server


def _run(s3: S3Server, key: AccessKey, *, vendor: int = 1) -> tuple[int, dict[str, object],
                                                                     list[dict[str, object]]]:
    """One session uploading with ``key``; returns stop's status and body, and the events."""
    endpoint = s3.endpoint_url.removeprefix("http://")  # vendor 11 sends a domain (S9)
    with run_emulator(time_scale=50, s3_endpoint=s3.endpoint_url) as handle:
        agora = RawAgora(handle)
        handle.admin.join(CNAME, "100")
        request = snapshot_request(
            bucket=BUCKET, vendor=vendor, region=0, prefix=["snaps"],
            access_key=key.access_key_id, secret_key=key.secret_access_key,
            endpoint=endpoint if vendor == 11 else None)
        rid, sid = agora.begin(CNAME, BOT, request)
        wait_for(lambda: handle.admin.task(sid)["captures"] >= 2)
        stopped = agora.stop(rid, sid, CNAME, BOT)
        events = handle.admin.events()
        log = handle.admin.request_log()
        agora.close()
    assert key.secret_access_key not in str(log)
    assert key.access_key_id not in str(log)
    return stopped.status_code, stopped.json(), events


def test_a_key_with_put_object_uploads_files_with_documented_names(bucket: S3Server) -> None:
    key = bucket.create_user("uploader", _policy("s3:PutObject"))
    status, body, _ = _run(bucket, key)
    assert (status, body["serverResponse"]) == (200, {"uploadingStatus": "uploaded"})
    keys = bucket.keys(BUCKET)
    names = [parse_snapshot_name(k) for k in keys]
    assert len(names) >= 2
    assert {(n.prefix, n.cname, n.uid, n.sid) for n in names} == \
        {(("snaps",), CNAME, "100", body["sid"])}
    with Image.open(io.BytesIO(bucket.get(BUCKET, keys[0]))) as image:
        assert image.format == "JPEG"


def test_a_key_without_put_object_is_refused_and_reported(bucket: S3Server) -> None:
    key = bucket.create_user("reader", _policy("s3:GetObject"))
    status, body, events = _run(bucket, key)
    assert (status, body["serverResponse"]) == (200, {"uploadingStatus": "backuped"})
    assert bucket.keys(BUCKET) == []
    errors = [e["payload"]["details"] for e in events if e["eventType"] == 1]  # type: ignore[index]
    assert errors == [{"module": 1, "errorLevel": 3, "errorCode": 32, "stat": 0,
                       "errorMsg": "upload refused by the storage: AccessDenied"}]


def test_an_unknown_key_is_refused(bucket: S3Server) -> None:
    _status, body, events = _run(bucket, AccessKey("AKIAUNKNOWN000000000", "not-a-secret"))
    assert body["serverResponse"] == {"uploadingStatus": "backuped"}
    codes = [e["payload"]["details"]["errorMsg"] for e in events  # type: ignore[index]
             if e["eventType"] == 1]
    assert codes == ["upload refused by the storage: InvalidAccessKeyId"]


def test_vendor_11_uploads_to_the_extension_endpoint(bucket: S3Server) -> None:
    key = bucket.create_user("compatible", _policy("s3:PutObject"))
    status, _, _ = _run(bucket, key, vendor=11)
    assert status == 200
    assert len(bucket.keys(BUCKET, "snaps/")) >= 2
