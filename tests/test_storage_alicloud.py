"""AlicloudSnapshotBucket under set_mocks (issue #5, item 2)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_alicloud
import pytest

from snapshot_resources.storage import SnapshotBucketArgs, policies
from snapshot_resources.storage.alicloud import AlicloudSnapshotBucket
from snapshot_resources.testing.pulumi_mocks import PulumiMocks, Resolved


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


ARGS = SnapshotBucketArgs(
    bucket="agora-snaps",
    region="cn-shanghai",
    file_name_prefix=("snaps",),
    retention_days=30,
    extension_params={"tag": "team=video"},
)


def _build(mocks: PulumiMocks, opts: pulumi.ResourceOptions | None = None) -> Resolved[Any]:
    return mocks.run(lambda: AlicloudSnapshotBucket("snaps", ARGS, opts).target)


def test_registers_provider_bucket_acl_ram_user_policy_attachment_key(mocks: PulumiMocks) -> None:
    _build(mocks)
    assert sorted(mocks.types()) == sorted(
        [
            "agora-snapshots:storage:AlicloudSnapshotBucket",
            "pulumi:providers:alicloud",
            "alicloud:oss/bucket:Bucket",
            "alicloud:oss/bucketAcl:BucketAcl",
            "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "alicloud:ram/user:User",
            "alicloud:ram/policy:Policy",
            "alicloud:ram/userPolicyAttachment:UserPolicyAttachment",
            "alicloud:ram/accessKey:AccessKey",
        ]
    )


def test_bucket_lives_in_the_resolved_region_through_its_provider(mocks: PulumiMocks) -> None:
    _build(mocks)
    assert mocks.one("pulumi:providers:alicloud").inputs["region"] == "cn-shanghai"
    assert "snaps-provider" in mocks.one("alicloud:oss/bucket:Bucket").provider


def test_a_callers_provider_is_used_instead_of_a_new_one(mocks: PulumiMocks) -> None:
    def program() -> pulumi.Output[Any]:
        mine = pulumi_alicloud.Provider("mine", region="cn-shanghai")
        opts = pulumi.ResourceOptions(providers=[mine])
        return AlicloudSnapshotBucket("snaps", ARGS, opts).target

    mocks.run(program)
    assert [r.name for r in mocks.of_type("pulumi:providers:alicloud")] == ["mine"]
    assert "::mine::" in mocks.one("alicloud:oss/bucket:Bucket").provider


def test_bucket_is_private_encrypted_and_expires_the_prefix(mocks: PulumiMocks) -> None:
    _build(mocks)
    bucket = mocks.one("alicloud:oss/bucket:Bucket").inputs
    assert bucket["bucket"] == "agora-snaps"
    assert bucket["serverSideEncryptionRule"] == {"sseAlgorithm": "AES256"}
    [rule] = bucket["lifecycleRules"]
    assert (rule["enabled"], rule["prefix"], rule["expirations"]) == (
        True,
        "snaps/",
        [{"days": 30}],
    )
    assert mocks.one("alicloud:oss/bucketAcl:BucketAcl").inputs["acl"] == "private"
    block = mocks.one("alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert block["blockPublicAccess"] is True


def test_custom_policy_is_upload_only_and_attached_to_the_keys_user(mocks: PulumiMocks) -> None:
    _build(mocks)
    policy = mocks.one("alicloud:ram/policy:Policy").inputs
    assert json.loads(policy["policyDocument"]) == policies.alibaba_upload_policy(
        "agora-snaps", "snaps/", tagging=True
    )
    attachment = mocks.one("alicloud:ram/userPolicyAttachment:UserPolicyAttachment").inputs
    user = mocks.one("alicloud:ram/user:User").inputs["name"]
    assert attachment == {
        "userName": user,
        "policyName": policy["policyName"],
        "policyType": "Custom",
    }
    assert mocks.one("alicloud:ram/accessKey:AccessKey").inputs["userName"] == user


def test_target_has_alibaba_codes_and_secret_keys(mocks: PulumiMocks) -> None:
    result = _build(mocks)
    assert result.value == {
        "vendor": 2,
        "region": 1,  # CN_Shanghai (S9)
        "bucket": "agora-snaps",
        "accessKey": "snaps-key-id",
        "secretKey": "mock-ali-secret-SECRET",
        "fileNamePrefix": ["snaps"],
        "extensionParams": {"tag": "team=video"},
    }
    assert result.secret
