"""AwsSnapshotBucket under pulumi.runtime.set_mocks: resources, private settings, lifecycle, policy,
and the target's codes and secrecy (issue #5, item 1)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pulumi
import pytest

from snapshot_resources.storage import SnapshotBucketArgs, StorageConfigError, policies
from snapshot_resources.storage.aws import AwsSnapshotBucket
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


def _args(**overrides: Any) -> SnapshotBucketArgs:
    values: dict[str, Any] = {
        "bucket": "agora-snaps",
        "region": "eu-west-1",
        "file_name_prefix": ("snapshots", "lobby"),
        "retention_days": 14,
    }
    values.update(overrides)
    return SnapshotBucketArgs(**values)


def _build(mocks: PulumiMocks, args: SnapshotBucketArgs | None = None, **kw: Any) -> Any:
    return mocks.run(lambda: AwsSnapshotBucket("snaps", args or _args(), **kw).target)


def test_registers_bucket_privacy_lifecycle_user_policy_and_key(mocks: PulumiMocks) -> None:
    _build(mocks)
    assert sorted(mocks.types()) == sorted(
        [
            "agora-snapshots:storage:AwsSnapshotBucket",
            "aws:s3/bucket:Bucket",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            ENCRYPTION,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "aws:iam/user:User",
            "aws:iam/userPolicy:UserPolicy",
            "aws:iam/accessKey:AccessKey",
        ]
    )


def test_children_are_parented_and_named_after_the_component(mocks: PulumiMocks) -> None:
    _build(mocks)
    children = [u for u in mocks.urns() if "AwsSnapshotBucket$" in u]
    assert len(children) == 8
    assert all(u.rsplit("::", 1)[1].startswith("snaps-") for u in children)


def test_bucket_has_the_exact_name_in_the_resolved_region(mocks: PulumiMocks) -> None:
    _build(mocks, _args(region="EU_WEST_1"))  # Agora's label resolves to the vendor's id
    bucket = mocks.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "agora-snaps"
    regions = {r.inputs.get("region") for r in mocks.resources if r.typ.startswith("aws:s3/")}
    assert regions == {"eu-west-1"}


def test_public_access_is_blocked_and_ownership_enforced(mocks: PulumiMocks) -> None:
    _build(mocks)
    block = mocks.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block[f] is True for f in flags)
    ownership = mocks.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_default_encryption_is_sse_s3(mocks: PulumiMocks) -> None:
    _build(mocks)
    rule = mocks.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_sse_kms_with_a_key_encrypts_with_it_and_grants_only_that_key(mocks: PulumiMocks) -> None:
    arn = "arn:aws:kms:eu-west-1:123456789012:key/abc"
    component: list[AwsSnapshotBucket] = []

    def program() -> pulumi.Output[Any]:
        component.append(
            AwsSnapshotBucket("snaps", _args(extension_params={"sse": "kms"}), kms_key_arn=arn)
        )
        return component[0].target

    mocks.run(program)
    rule = mocks.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": arn,
    }
    kms = [s for s in component[0].policy_document["Statement"] if s["Sid"] == "AgoraSnapshotKms"]
    assert kms == [
        {
            "Sid": "AgoraSnapshotKms",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": [arn],
        }
    ]


def test_lifecycle_expires_the_prefix_after_retention_days(mocks: PulumiMocks) -> None:
    _build(mocks)
    rules = mocks.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    assert len(rules) == 1
    assert rules[0]["status"] == "Enabled"
    assert rules[0]["filter"] == {"prefix": "snapshots/lobby/"}
    assert rules[0]["expiration"] == {"days": 14}
    assert rules[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_without_prefix_lifecycle_and_policy_cover_the_whole_bucket(mocks: PulumiMocks) -> None:
    _build(mocks, _args(file_name_prefix=()))
    rule = mocks.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ][0]
    assert rule["filter"] == {"prefix": ""}
    policy = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == ["arn:aws:s3:::agora-snaps/*"]


def test_inline_policy_is_exactly_the_upload_only_document(mocks: PulumiMocks) -> None:
    _build(mocks)
    attached = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    assert attached == policies.aws_upload_policy("agora-snaps", "snapshots/lobby/")
    assert attached["Statement"][0]["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]


def test_tagging_is_granted_only_when_a_tag_is_configured(mocks: PulumiMocks) -> None:
    _build(mocks, _args(extension_params={"tag": "team=video"}))
    attached = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    actions = [a for s in attached["Statement"] for a in s["Action"]]
    assert actions == ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectTagging"]


def test_china_regions_use_the_aws_cn_partition(mocks: PulumiMocks) -> None:
    _build(mocks, _args(region="cn-north-1"))
    attached = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    assert attached["Statement"][0]["Resource"] == ["arn:aws-cn:s3:::agora-snaps/snapshots/lobby/*"]


def test_key_belongs_to_the_policy_user(mocks: PulumiMocks) -> None:
    _build(mocks)
    user = mocks.one("aws:iam/user:User").inputs["name"]
    assert mocks.one("aws:iam/userPolicy:UserPolicy").inputs["user"] == user
    assert mocks.one("aws:iam/accessKey:AccessKey").inputs["user"] == user


def test_target_carries_codes_bucket_prefix_and_keys(mocks: PulumiMocks) -> None:
    result = _build(mocks, _args(extension_params={"sse": "aes256"}))
    assert result.value == {
        "vendor": 1,
        "region": 4,  # eu-west-1 in Agora's S3 table (S9)
        "bucket": "agora-snaps",
        "accessKey": "snaps-key-id",
        "secretKey": "mock-aws-secret-SECRET",
        "fileNamePrefix": ["snapshots", "lobby"],
        "extensionParams": {"sse": "aes256"},
    }
    assert result.secret


def test_keys_are_secret_outputs(mocks: PulumiMocks) -> None:
    def program() -> pulumi.Output[list[bool]]:
        bucket = AwsSnapshotBucket("snaps", _args())
        checks = [
            bucket.access_key.is_secret(),
            bucket.secret_key.is_secret(),
            bucket.bucket.is_secret(),
        ]
        return pulumi.Output.from_input(asyncio.gather(*checks))

    assert mocks.run(program).value == [True, True, False]


def test_target_waits_for_the_policy_and_bucket_settings(mocks: PulumiMocks) -> None:
    def program() -> pulumi.Output[list[str]]:
        target = AwsSnapshotBucket("snaps", _args()).target

        async def names() -> list[str]:
            return sorted(type(r).__name__ for r in await target.resources())

        return pulumi.Output.from_input(asyncio.ensure_future(names()))

    depends: list[str] = mocks.run(program).value
    for needed in (
        "UserPolicy",
        "AccessKey",
        "Bucket",
        "BucketLifecycleConfiguration",
        "BucketPublicAccessBlock",
    ):
        assert needed in depends


def test_invalid_arguments_are_rejected_before_anything_registers(mocks: PulumiMocks) -> None:
    with pytest.raises(StorageConfigError) as info:
        AwsSnapshotBucket("snaps", _args(bucket="Agora_Snaps", region="mars-1", retention_days=0))
    assert [p.dotted_path for p in info.value.problems] == ["region", "bucket", "retentionDays"]
    assert mocks.resources == []


def test_sse_kms_without_a_key_uses_the_aws_managed_key_and_grants_no_kms(
    mocks: PulumiMocks,
) -> None:
    _build(mocks, _args(extension_params={"sse": "kms"}))
    rule = mocks.one(ENCRYPTION).inputs["rules"][0]
    assert rule == {
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"},
        "bucketKeyEnabled": True,
    }
    attached = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    assert [s["Sid"] for s in attached["Statement"]] == ["AgoraSnapshotUpload"]


def test_a_kms_key_is_ignored_unless_sse_is_kms(mocks: PulumiMocks) -> None:
    mocks.run(lambda: AwsSnapshotBucket("snaps", _args(), kms_key_arn="arn:aws:kms:x").target)
    attached = json.loads(mocks.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    assert "kms" not in json.dumps(attached)
