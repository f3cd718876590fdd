"""Amazon S3 (Agora vendor 1): a private bucket and an IAM user whose key can only upload.

Resources (docs/storage.md 2.1; pulumi-aws 7 names, the ``*V2`` names are deprecated):

- ``s3.Bucket`` named exactly ``bucket`` (no autonaming suffix: Agora's ``storageConfig.bucket``
  must be the real name, and S3 names are global, so a taken name fails the deployment loudly
  instead of silently producing a different bucket than the one the user wrote down), in the
  region resolved from the vendor region id (pulumi-aws 7 takes ``region=`` per resource);
- ``s3.BucketPublicAccessBlock`` (all four flags) and ``s3.BucketOwnershipControls``
  (``BucketOwnerEnforced``): new buckets default to both, declaring them makes intent reviewable;
- ``s3.BucketServerSideEncryptionConfiguration``: SSE-S3 (AES256), or SSE-KMS when
  ``extensionParams.sse`` is ``kms`` (with ``kms_key_arn`` if given, else the AWS-managed key);
- ``s3.BucketLifecycleConfiguration``: expire objects under the prefix after ``retention_days``
  and abort incomplete multipart uploads after a day;
- ``iam.User`` + inline ``iam.UserPolicy`` (policies.aws_upload_policy) + ``iam.AccessKey``:
  ``accessKey`` = key id, ``secretKey`` = key secret.
"""

from __future__ import annotations

from typing import Final

import pulumi

from snapshot_resources.storage import base, policies

with base.vendor_sdk(__name__) as _vendor:
    from pulumi_aws import iam, s3

VENDOR: Final = _vendor.code
INCOMPLETE_UPLOAD_DAYS = 1
"""Abort unfinished multipart uploads after a day: snapshot JPGs upload in seconds, and orphaned
parts are billed storage that no prefix expiry removes (S3 AbortIncompleteMultipartUpload)."""


class AwsSnapshotBucket(base.ProvisionedSnapshotBucket):
    """An S3 bucket for snapshots and a least-privilege upload key, as a ``StorageTarget``."""

    def __init__(
        self,
        name: str,
        args: base.SnapshotBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        kms_key_arn: str | None = None,
    ) -> None:
        self._kms_key_arn = kms_key_arn
        super().__init__(name, args, opts)

    def _provision(self, name: str) -> None:
        resolved = self.resolved
        region = resolved.region_id
        sse = resolved.extension_params.get("sse")
        # The KMS statement is needed only for a customer-managed key: the AWS-managed aws/s3 key's
        # own key policy already lets any principal of the account use it through S3 (AWS KMS
        # Developer Guide, "AWS managed keys"). UNCONFIRMED against real S3 in this project.
        key_arn = self._kms_key_arn if sse == "kms" else None

        bucket = s3.Bucket(
            f"{name}-bucket", bucket=resolved.bucket, region=region, opts=self._child()
        )
        public = s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            region=region,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child(),
        )
        ownership = s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            region=region,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=self._child(),
        )
        encryption = s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            region=region,
            rules=[_encryption_rule(sse, key_arn)],
            opts=self._child(),
        )
        lifecycle = s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            region=region,
            rules=[_lifecycle_rule(resolved, self.retention_days)],
            opts=self._child(),
        )

        user = iam.User(
            f"{name}-uploader",
            name=f"agora-snapshots-{base.stable_suffix(name)}",
            path="/agora-snapshots/",
            tags={"purpose": "agora-snapshot-upload", "bucket": resolved.bucket},
            opts=self._child(),
        )
        self.policy_document = upload_policy(resolved, key_arn)
        policy = iam.UserPolicy(
            f"{name}-upload-policy",
            user=user.name,
            policy=base.policy_json(self.policy_document),
            opts=self._child(),
        )
        key = iam.AccessKey(f"{name}-key", user=user.name, opts=self._child())
        ready = [public.id, ownership.id, encryption.id, lifecycle.id, policy.id]
        self._emit(bucket.bucket, key.id, key.secret, ready=ready)


def upload_policy(
    resolved: base.ResolvedStorage, kms_key_arn: str | None
) -> policies.PolicyDocument | pulumi.Output[policies.PolicyDocument]:
    """The inline policy for ``resolved``: upload-only under its prefix (policies.py); an
    ``Output`` when the bucket name is one."""
    return resolved.named(lambda bucket: policies.aws_upload_policy(
        bucket,
        resolved.object_prefix,
        tagging="tag" in resolved.extension_params,
        kms_key_arn=kms_key_arn,
        partition=policies.aws_partition(resolved.region_id),
    ))


def _encryption_rule(
    sse: str | None, kms_key_arn: str | None
) -> s3.BucketServerSideEncryptionConfigurationRuleArgsDict:
    default: (
        s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict
    )
    default = {"sse_algorithm": "aws:kms" if sse == "kms" else "AES256"}
    if kms_key_arn is not None:
        default["kms_master_key_id"] = kms_key_arn
    # Bucket keys cut KMS request costs; they have no effect with SSE-S3 (S3 user guide).
    return {"apply_server_side_encryption_by_default": default, "bucket_key_enabled": sse == "kms"}


def _lifecycle_rule(
    resolved: base.ResolvedStorage, retention_days: int
) -> s3.BucketLifecycleConfigurationRuleArgsDict:
    return {
        "id": "expire-agora-snapshots",
        "status": "Enabled",
        # An empty prefix filter selects the whole bucket, which is then all Agora writes.
        "filter": {"prefix": resolved.object_prefix},
        "expiration": {"days": retention_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": INCOMPLETE_UPLOAD_DAYS},
    }
