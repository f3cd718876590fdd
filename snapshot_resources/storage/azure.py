"""Azure Blob Storage (Agora vendor 5): a dedicated storage account holding one private container.

Agora's ``storageConfig`` has no SAS or connection-string field, only ``accessKey``/``secretKey``;
the one consistent reading is accessKey = storage account name, secretKey = account key,
bucket = container (docs/storage.md 2.4, UNCONFIRMED by Agora: confirm with one real
recording).
An account key opens the whole account, so least privilege here means a **dedicated account** that
holds nothing but this container.

Resources (pulumi-azure-native 3):

- ``resources.ResourceGroup`` (unless ``resource_group_name`` is given);
- ``storage.StorageAccount`` (StorageV2, Standard_LRS, no public blob access, TLS 1.2, HTTPS only;
  shared-key access stays enabled because Agora signs with the key);
- ``storage.BlobContainer`` named exactly ``bucket``, ``public_access`` None;
- ``storage.ManagementPolicy`` (the account's only policy, which Azure names ``default``) deleting
  block blobs under ``<container>/<prefix>`` ``retention_days`` after their last modification;
- the key from the ``listStorageAccountKeys`` invoke, marked secret.
"""

from __future__ import annotations

from typing import Final

import pulumi

from snapshot_resources.storage import base

with base.vendor_sdk(__name__) as _vendor:
    from pulumi_azure_native import resources, storage

VENDOR: Final = _vendor.code
MANAGEMENT_POLICY_NAME = "default"  # the only name Azure accepts for an account's policy


def storage_account_name(name: str) -> str:
    """A storage account name for component ``name``: 3-24 lowercase letters and digits, globally
    unique (Azure naming rules), stable for the project and stack (base.stable_suffix).  Not
    autonamed: azure-native's autonaming would keep the hyphens of ``<name>-account``."""
    return f"agorasnap{base.stable_suffix(name, 14)}"


class AzureSnapshotBucket(base.ProvisionedSnapshotBucket):
    """A dedicated storage account and private container for snapshots, as a ``StorageTarget``."""

    def __init__(
        self,
        name: str,
        args: base.SnapshotBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        resource_group_name: pulumi.Input[str] | None = None,
    ) -> None:
        self._group = resource_group_name
        super().__init__(name, args, opts)

    def _provision(self, name: str) -> None:
        resolved, resource_group_name = self.resolved, self._group
        location = resolved.region_id
        if resource_group_name is None:
            group = resources.ResourceGroup(f"{name}-group", location=location, opts=self._child())
            resource_group_name = group.name
        account = storage.StorageAccount(
            f"{name}-account",
            account_name=storage_account_name(name),
            resource_group_name=resource_group_name,
            location=location,
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_blob_public_access=False,
            allow_shared_key_access=True,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            opts=self._child(),
        )
        container = storage.BlobContainer(
            f"{name}-bucket",
            container_name=resolved.bucket,
            account_name=account.name,
            resource_group_name=resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=self._child(),
        )
        lifecycle = storage.ManagementPolicy(
            f"{name}-lifecycle",
            management_policy_name=MANAGEMENT_POLICY_NAME,
            account_name=account.name,
            resource_group_name=resource_group_name,
            policy={"rules": [_lifecycle_rule(resolved, self.retention_days)]},
            opts=self._child(),
        )
        keys = storage.list_storage_account_keys_output(
            account_name=account.name,
            resource_group_name=resource_group_name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self._emit(container.name, account.name, keys.keys[0].value, ready=[lifecycle.id])


def _lifecycle_rule(
    resolved: base.ResolvedStorage, retention_days: int
) -> storage.ManagementPolicyRuleArgsDict:
    return {
        "name": "expire-agora-snapshots",
        "enabled": True,
        "type": "Lifecycle",
        "definition": {
            "actions": {
                "base_blob": {"delete": {"days_after_modification_greater_than": retention_days}}
            },
            # prefixMatch starts with the container name (Azure lifecycle management docs).
            "filters": {
                "blob_types": ["blockBlob"],
                "prefix_match": [resolved.named(
                    lambda bucket: f"{bucket}/{resolved.object_prefix}")],
            },
        },
    }
