"""GcpSnapshotBucket under set_mocks (issue #5, item 3)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from snapshot_resources.storage import SnapshotBucketArgs
from snapshot_resources.storage.gcp import GcpSnapshotBucket, service_account_id
from snapshot_resources.testing.pulumi_mocks import PulumiMocks, Resolved


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


ARGS = SnapshotBucketArgs(
    bucket="agora-snaps", region="europe-west1", file_name_prefix=("snaps", "a1"), retention_days=7
)


def _build(mocks: PulumiMocks, args: SnapshotBucketArgs = ARGS) -> Resolved[Any]:
    return mocks.run(lambda: GcpSnapshotBucket("snaps", args).target)


def test_registers_bucket_service_account_grant_and_hmac_key(mocks: PulumiMocks) -> None:
    _build(mocks)
    assert sorted(mocks.types()) == sorted(
        [
            "agora-snapshots:storage:GcpSnapshotBucket",
            "gcp:storage/bucket:Bucket",
            "gcp:serviceaccount/account:Account",
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            "gcp:storage/hmacKey:HmacKey",
        ]
    )


def test_bucket_is_uniform_and_public_access_prevented(mocks: PulumiMocks) -> None:
    _build(mocks)
    bucket = mocks.one("gcp:storage/bucket:Bucket").inputs
    assert (bucket["name"], bucket["location"]) == ("agora-snaps", "europe-west1")
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"


def test_lifecycle_deletes_the_prefix_after_retention_days(mocks: PulumiMocks) -> None:
    _build(mocks)
    [rule] = mocks.one("gcp:storage/bucket:Bucket").inputs["lifecycleRules"]
    assert rule == {
        "action": {"type": "Delete"},
        "condition": {"age": 7, "matchesPrefixes": ["snaps/a1/"]},
    }


def test_without_prefix_the_lifecycle_covers_the_bucket(mocks: PulumiMocks) -> None:
    _build(mocks, SnapshotBucketArgs(bucket="agora-snaps", region="US", retention_days=7))
    [rule] = mocks.one("gcp:storage/bucket:Bucket").inputs["lifecycleRules"]
    assert rule["condition"] == {"age": 7}


def test_service_account_gets_object_creator_on_this_bucket_only(mocks: PulumiMocks) -> None:
    _build(mocks)
    grant = mocks.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs
    assert grant == {
        "bucket": "agora-snaps",
        "role": "roles/storage.objectCreator",
        "member": "serviceAccount:mock-sa@project.iam.gserviceaccount.com",
    }
    hmac = mocks.one("gcp:storage/hmacKey:HmacKey").inputs
    assert hmac["serviceAccountEmail"] == "mock-sa@project.iam.gserviceaccount.com"


def test_service_account_id_follows_the_gcp_rule() -> None:
    account_id = service_account_id("a-very-long-component-name-for-storage")
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account_id)
    assert service_account_id("x") != service_account_id("y")


def test_target_has_google_codes_and_hmac_keys_as_secrets(mocks: PulumiMocks) -> None:
    result = _build(mocks)
    assert result.value == {
        "vendor": 6,
        "region": 0,  # Google: region is 0 whatever the location (S9)
        "bucket": "agora-snaps",
        "accessKey": "GOOG1MOCKACCESSID",
        "secretKey": "mock-gcs-hmac-secret-SECRET",
        "fileNamePrefix": ["snaps", "a1"],
    }
    assert result.secret
