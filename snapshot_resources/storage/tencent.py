"""Tencent Cloud COS (Agora vendor 3): a private bucket and a CAM user whose key can only upload.

An optional extra (``snapshot-resources[tencent]``): the Pulumi package ``tencentcloud-iac-pulumi``
(import ``tencentcloud_iac_pulumi``) is sdist-only and unusual (docs/storage.md 2.3), so it is
imported when this module loads, never by ``import snapshot_resources``.  It is not installed in the
project's test environment: argument names follow docs/storage.md 2.3 (checked there by
introspection of 0.2.3) and tencentcloudstack/pulumi-tencentcloud's generated SDK
(``cam.UserPolicyAttachment(user_name, policy_id)``); UNVERIFIED here beyond that.

Resources:

- a ``Provider`` pinned to the resolved region: COS buckets take their region from the provider;
- ``cos.Bucket`` named exactly ``bucket`` (COS names carry the ``-APPID`` suffix, and Agora's
  ``bucket`` must be that full name), ACL private, a lifecycle rule expiring the prefix;
- ``cam.User`` (no console login, no key of its own: ``use_api`` would create a second, unmanaged
  key) + ``cam.Policy`` (policies.tencent_upload_policy) + ``cam.UserPolicyAttachment`` +
  ``cam.AccessKey``: ``accessKey`` = SecretId, ``secretKey`` = SecretKey.
"""

from __future__ import annotations

from typing import Any, Final

from snapshot_resources.storage import base, policies

VENDOR: Final = base.vendor_of(__name__).code
_sdk, _cos, _cam = (base.sdk_module(__name__, part) for part in ("", "cos", "cam"))


class TencentSnapshotBucket(base.ProvisionedSnapshotBucket):
    """A COS bucket for snapshots and a least-privilege CAM key, as a ``StorageTarget``."""

    def _provision(self, name: str) -> None:
        resolved = self.resolved
        regional = self._regional(
            lambda region, child: _sdk.Provider(f"{name}-provider", region=region, opts=child)
        )

        rule: dict[str, Any] = {"expiration": {"days": self.retention_days}}
        if resolved.object_prefix:
            rule["filter_prefix"] = resolved.object_prefix
        bucket = _cos.Bucket(
            f"{name}-bucket",
            bucket=resolved.bucket,
            acl="private",
            lifecycle_rules=[rule],
            opts=regional,
        )
        suffix = base.stable_suffix(name)
        user = _cam.User(
            f"{name}-uploader",
            name=f"agora-snapshots-{suffix}",
            console_login=False,
            use_api=False,
            remark=resolved.named(lambda bucket: f"Agora Cloud Recording uploads to cos {bucket}"),
            opts=regional,
        )
        self.policy_document = resolved.named(lambda bucket: policies.tencent_upload_policy(
            bucket, resolved.object_prefix, region=resolved.region_id))
        policy = _cam.Policy(
            f"{name}-upload-policy",
            name=f"AgoraSnapshotUpload-{suffix}",
            document=base.policy_json(self.policy_document),
            description=resolved.named(
                lambda bucket: f"Upload-only access to {bucket}/{resolved.object_prefix}"),
            opts=regional,
        )
        attachment = _cam.UserPolicyAttachment(
            f"{name}-upload-policy-attachment",
            user_name=user.name,
            policy_id=policy.id,
            opts=regional,
        )
        key = _cam.AccessKey(f"{name}-key", target_uin=user.uin, opts=regional)
        self._emit(bucket.bucket, key.access_key, key.secret_access_key, ready=[attachment.id])
