"""Alibaba Cloud OSS (Agora vendor 2): a private bucket and a RAM user whose key can only upload.

Resources (docs/storage.md 2.2; pulumi-alicloud 4):

- an ``alicloud.Provider`` pinned to the resolved region, because OSS buckets take their region
  from the provider (``oss.Bucket`` has no region argument) and Agora's region code must match the
  bucket's real region.  An explicit provider does not read the ``alicloud:`` stack config, only the
  environment (``ALIBABA_CLOUD_ACCESS_KEY_ID`` ...); pass your own provider in ``opts``
  (``provider=`` or ``providers=``) to use other credentials; it must be in the same region;
- ``oss.Bucket`` named exactly ``bucket``, with a lifecycle rule expiring the prefix after
  ``retention_days`` and SSE (AES256); ``oss.BucketAcl`` private (the bucket's own ``acl`` field is
  deprecated since provider 1.220.0); ``oss.BucketPublicAccessBlock``;
- ``ram.User`` + ``ram.Policy`` (policies.alibaba_upload_policy) + ``ram.UserPolicyAttachment``
  (``Custom``) + ``ram.AccessKey``: ``accessKey`` = AccessKeyId, ``secretKey`` = its secret.
"""

from __future__ import annotations

from typing import Final

from snapshot_resources.storage import base, policies

with base.vendor_sdk(__name__) as _vendor:
    import pulumi_alicloud as alicloud
    from pulumi_alicloud import oss, ram

VENDOR: Final = _vendor.code
INCOMPLETE_UPLOAD_DAYS = 1  # as for S3 (aws.py): orphaned parts are billed and never expire


class AlicloudSnapshotBucket(base.ProvisionedSnapshotBucket):
    """An OSS bucket for snapshots and a least-privilege RAM key, as a ``StorageTarget``."""

    def _provision(self, name: str) -> None:
        resolved = self.resolved
        regional = self._regional(
            lambda region, child: alicloud.Provider(f"{name}-provider", region=region, opts=child)
        )

        bucket = oss.Bucket(
            f"{name}-bucket",
            bucket=resolved.bucket,
            lifecycle_rules=[_lifecycle_rule(resolved, self.retention_days)],
            server_side_encryption_rule={"sse_algorithm": "AES256"},
            opts=regional,
        )
        acl = oss.BucketAcl(f"{name}-acl", bucket=bucket.bucket, acl="private", opts=regional)
        public = oss.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.bucket,
            block_public_access=True,
            opts=regional,
        )

        suffix = base.stable_suffix(name)
        user = ram.User(
            f"{name}-uploader",
            name=f"agora-snapshots-{suffix}",
            comments=resolved.named(lambda bucket: f"Agora Cloud Recording uploads to oss://{bucket}"),
            opts=regional,
        )
        self.policy_document = resolved.named(lambda bucket: policies.alibaba_upload_policy(
            bucket, resolved.object_prefix, tagging="tag" in resolved.extension_params
        ))
        policy = ram.Policy(
            f"{name}-upload-policy", policy_name=f"AgoraSnapshotUpload-{suffix}",
            policy_document=base.policy_json(self.policy_document),
            description=resolved.named(
                lambda bucket: f"Upload-only access to oss://{bucket}/{resolved.object_prefix}"),
            opts=regional,
        )
        # A custom policy, attached to the uploader by name (RAM).
        attachment = ram.UserPolicyAttachment(
            f"{name}-upload-policy-attachment", user_name=user.name,
            policy_name=policy.policy_name, policy_type="Custom", opts=regional,
        )
        key = ram.AccessKey(f"{name}-key", user_name=user.name, opts=regional)
        self._emit(bucket.bucket, key.id, key.secret, ready=[acl.id, public.id, attachment.id])


def _lifecycle_rule(resolved: base.ResolvedStorage, days: int) -> oss.BucketLifecycleRuleArgsDict:
    return {
        "id": "expire-agora-snapshots",
        "enabled": True,
        # An empty prefix applies the rule to the whole bucket, which is then all Agora writes.
        "prefix": resolved.object_prefix,
        "expirations": [{"days": days}],
        "abort_multipart_uploads": [{"days": INCOMPLETE_UPLOAD_DAYS}],
    }
