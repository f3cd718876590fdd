"""Huawei Cloud OBS (Agora vendor 7): a private bucket and an IAM user whose key can only upload.

An optional extra (``snapshot-resources[huawei]``): ``pulumi-huaweicloud`` is stale (0.0.12,
2025-04) and sdist-only (docs/storage.md 2.6), so it is imported when this module loads,
never by ``import snapshot_resources``.  It is not installed in the project's test environment:
argument names follow docs/storage.md 2.6 and huaweicloud/pulumi-huaweicloud's generated SDK
(``obs.Bucket(bucket, acl, region, lifecycle_rules, sse_algorithm)``, ``iam.Role(name,
description, type, policy)``, ``iam.UserRoleAssignment(user_id, role_id, enterprise_project_id)``);
UNVERIFIED here beyond that.

Resources:

- ``obs.Bucket`` named exactly ``bucket`` in the resolved region (OBS takes ``region=`` per
  resource), ACL private, SSE AES256, a lifecycle rule expiring the prefix;
- ``iam.User`` (programmatic access only) + ``iam.Role`` (a custom policy,
  policies.huawei_upload_policy) + ``iam.UserRoleAssignment`` + ``iam.AccessKey``:
  ``accessKey`` = AK, ``secretKey`` = SK.  The SDK notes that a role assignment takes 15 to 30
  minutes to take effect: a session started at once may fail its first uploads.
"""

from __future__ import annotations

from typing import Any

import pulumi

from snapshot_resources.storage import policies
from snapshot_resources.storage.base import (
    SnapshotBucketArgs,
    SnapshotBucketComponent,
    import_extra,
    stable_suffix,
)

VENDOR = 7
TITLE = "Huawei Cloud OBS"
_obs = import_extra("pulumi_huaweicloud.obs", title=TITLE, extra="huawei")
_iam = import_extra("pulumi_huaweicloud.iam", title=TITLE, extra="huawei")
DEFAULT_ENTERPRISE_PROJECT = "0"  # Huawei's default enterprise project (obs.Bucket docs)


class HuaweiSnapshotBucket(SnapshotBucketComponent):
    """An OBS bucket for snapshots and a least-privilege IAM key, as a ``StorageTarget``."""

    def __init__(
        self,
        name: str,
        args: SnapshotBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        enterprise_project_id: str = DEFAULT_ENTERPRISE_PROJECT,
    ) -> None:
        resolved = args.resolve(VENDOR)
        super().__init__("HuaweiSnapshotBucket", name, resolved, opts)
        rule: dict[str, Any] = {
            "name": "expire-agora-snapshots",
            "enabled": True,
            "expirations": [{"days": args.retention_days}],
        }
        if resolved.object_prefix:
            rule["prefix"] = resolved.object_prefix
        bucket = _obs.Bucket(
            f"{name}-bucket",
            bucket=resolved.bucket,
            region=resolved.region_id,
            acl="private",
            sse_algorithm="AES256",
            lifecycle_rules=[rule],
            opts=self._child(),
        )
        suffix = stable_suffix(name)
        user = _iam.User(
            f"{name}-uploader",
            name=f"agora-snapshots-{suffix}",
            access_type="programmatic",
            description=f"Agora Cloud Recording uploads to obs {resolved.bucket}",
            opts=self._child(),
        )
        self.policy_document = policies.huawei_upload_policy(
            resolved.bucket, resolved.object_prefix
        )
        role = _iam.Role(
            f"{name}-upload-policy",
            name=f"AgoraSnapshotUpload-{suffix}",
            type="AX",  # account-level: OBS is a global service in Huawei IAM
            description=f"Upload-only access to {resolved.bucket}/{resolved.object_prefix}",
            policy=policies.to_json(self.policy_document),
            opts=self._child(),
        )
        assignment = _iam.UserRoleAssignment(
            f"{name}-upload-policy-assignment",
            user_id=user.id,
            role_id=role.id,
            enterprise_project_id=enterprise_project_id,
            opts=self._child(),
        )
        key = _iam.AccessKey(f"{name}-key", user_id=user.id, opts=self._child())
        self._emit(
            bucket=bucket.bucket,
            access_key=key.id,
            secret_key=key.secret,
            ready=[assignment.id],
        )
