"""Google Cloud Storage (Agora vendor 6): a private bucket and an HMAC key that can only create.

Resources (docs/storage.md 2.5; pulumi-gcp 10):

- ``storage.Bucket`` named exactly ``bucket`` in ``location`` (the region as given: Agora ignores
  it for Google and sends code 0, S9), with uniform bucket-level access, public access prevention
  ``enforced``, and a lifecycle rule deleting objects under the prefix after ``retention_days``;
- ``serviceaccount.Account`` + ``storage.BucketIAMMember`` granting ``roles/storage.objectCreator``
  on this bucket only; ``storage.HmacKey`` for that account: ``accessKey`` = HMAC access id,
  ``secretKey`` = HMAC secret (berkmancenter/frankly#354: objectCreator covers Agora's HMAC writes).

Limits, stated rather than hidden: objectCreator cannot overwrite an object (that needs
``storage.objects.delete``, google-github-actions/upload-cloud-storage#388); snapshots have unique
names, so it is enough here, but recordings that rewrite ``.m3u8`` would fail
(AgoraIO/Docs-Source#690).  The grant covers the whole bucket, not only the prefix: an IAM condition
on ``resource.name`` could narrow it, but whether Agora's XML-API uploads satisfy it is unverified.
The org policy ``constraints/storage.disableServiceAccountHmacKeyCreation`` blocks the key.
"""

from __future__ import annotations

from typing import Final

from snapshot_resources.storage import base

with base.vendor_sdk(__name__) as _vendor:
    from pulumi_gcp import serviceaccount, storage

VENDOR: Final = _vendor.code
UPLOAD_ROLE = "roles/storage.objectCreator"


def service_account_id(name: str) -> str:
    """A service account id for component ``name``: 6-30 characters ``[a-z]([-a-z0-9]*[a-z0-9])``
    (GCP IAM ``accountId`` rule), stable for the project and stack (base.stable_suffix)."""
    return f"agora-snap-{base.stable_suffix(name)}"


class GcpSnapshotBucket(base.ProvisionedSnapshotBucket):
    """A Cloud Storage bucket and an object-creator HMAC key, as a ``StorageTarget``."""

    def _provision(self, name: str) -> None:
        resolved = self.resolved
        bucket = storage.Bucket(
            f"{name}-bucket",
            name=resolved.bucket,
            location=resolved.region_id,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            lifecycle_rules=[_lifecycle_rule(resolved, self.retention_days)],
            opts=self._child(),
        )
        account = serviceaccount.Account(
            f"{name}-uploader",
            account_id=service_account_id(name),
            display_name="Agora snapshot uploader",
            description=resolved.named(
                lambda bucket: f"Agora Cloud Recording uploads to gs://{bucket}"),
            opts=self._child(),
        )
        grant = storage.BucketIAMMember(
            f"{name}-object-creator",
            bucket=bucket.name,
            role=UPLOAD_ROLE,
            member=account.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=self._child(),
        )
        key = storage.HmacKey(
            f"{name}-key", service_account_email=account.email, opts=self._child()
        )
        self._emit(bucket.name, key.access_id, key.secret, ready=[grant.id])


def _lifecycle_rule(
    resolved: base.ResolvedStorage, retention_days: int
) -> storage.BucketLifecycleRuleArgsDict:
    condition: storage.BucketLifecycleRuleConditionArgsDict = {"age": retention_days}
    if resolved.object_prefix:
        condition["matches_prefixes"] = [resolved.object_prefix]
    return {"action": {"type": "Delete"}, "condition": condition}
