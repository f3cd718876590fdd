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

from typing import Any, Final

import pulumi

from snapshot_resources.storage import base, policies

VENDOR: Final = base.vendor_of(__name__).code
_obs, _iam = (base.sdk_module(__name__, part) for part in ("obs", "iam"))
DEFAULT_ENTERPRISE_PROJECT = "0"  # Huawei's default enterprise project (obs.Bucket docs)


class HuaweiSnapshotBucket(base.ProvisionedSnapshotBucket):
    """An OBS bucket for snapshots and a least-privilege IAM key, as a ``StorageTarget``."""

    def __init__(
        self,
        name: str,
        args: base.SnapshotBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        enterprise_project_id: str = DEFAULT_ENTERPRISE_PROJECT,
    ) -> None:
        self._project = enterprise_project_id
        super().__init__(name, args, opts)

    def _provision(self, name: str) -> None:
        resolved = self.resolved
        rule: dict[str, Any] = {
            "name": "expire-agora-snapshots",
            "enabled": True,
            "expirations": [{"days": self.retention_days}],
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
        suffix = base.stable_suffix(name)
        user = _iam.User(
            f"{name}-uploader",
            name=f"agora-snapshots-{suffix}",
            access_type="programmatic",
            description=resolved.named(lambda bucket: f"Agora Cloud Recording uploads to obs {bucket}"),
            opts=self._child(),
        )
        self.policy_document = resolved.named(
            lambda bucket: policies.huawei_upload_policy(bucket, resolved.object_prefix))
        role = _iam.Role(
            f"{name}-upload-policy",
            name=f"AgoraSnapshotUpload-{suffix}",
            type="AX",  # account-level: OBS is a global service in Huawei IAM
            description=resolved.named(
                lambda bucket: f"Upload-only access to {bucket}/{resolved.object_prefix}"),
            policy=base.policy_json(self.policy_document),
            opts=self._child(),
        )
        assignment = _iam.UserRoleAssignment(
            f"{name}-upload-policy-assignment",
            user_id=user.id,
            role_id=role.id,
            enterprise_project_id=self._project,
            opts=self._child(),
        )
        key = _iam.AccessKey(f"{name}-key", user_id=user.id, opts=self._child())
        self._emit(bucket.bucket, key.id, key.secret, ready=[assignment.id])
