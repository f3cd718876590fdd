"""AzureSnapshotBucket under set_mocks (issue #5, item 4)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from snapshot_resources.storage import SnapshotBucketArgs
from snapshot_resources.storage.azure import AzureSnapshotBucket, storage_account_name
from snapshot_resources.testing.pulumi_mocks import PulumiMocks, Resolved


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


ARGS = SnapshotBucketArgs(
    bucket="agora-snaps", region="westeurope", file_name_prefix=("snaps",), retention_days=10
)


def _build(mocks: PulumiMocks, **kw: Any) -> Resolved[Any]:
    return mocks.run(lambda: AzureSnapshotBucket("snaps", ARGS, **kw).target)


def test_registers_group_dedicated_account_container_and_policy(mocks: PulumiMocks) -> None:
    _build(mocks)
    assert sorted(mocks.types()) == sorted(
        [
            "agora-snapshots:storage:AzureSnapshotBucket",
            "azure-native:resources:ResourceGroup",
            "azure-native:storage:StorageAccount",
            "azure-native:storage:BlobContainer",
            "azure-native:storage:ManagementPolicy",
        ]
    )
    assert mocks.one("azure-native:resources:ResourceGroup").inputs["location"] == "westeurope"


def test_an_existing_resource_group_can_be_used(mocks: PulumiMocks) -> None:
    _build(mocks, resource_group_name="my-group")
    assert mocks.of_type("azure-native:resources:ResourceGroup") == []
    assert (
        mocks.one("azure-native:storage:StorageAccount").inputs["resourceGroupName"] == "my-group"
    )


def test_account_is_private_and_keeps_shared_key_access(mocks: PulumiMocks) -> None:
    _build(mocks)
    account = mocks.one("azure-native:storage:StorageAccount").inputs
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is True  # Agora signs with the account key
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["enableHttpsTrafficOnly"] is True
    assert re.fullmatch(r"[a-z0-9]{3,24}", account["accountName"])


def test_container_is_the_bucket_and_private(mocks: PulumiMocks) -> None:
    _build(mocks)
    container = mocks.one("azure-native:storage:BlobContainer").inputs
    assert (container["containerName"], container["publicAccess"]) == ("agora-snaps", "None")


def test_management_policy_deletes_the_prefix_after_retention_days(mocks: PulumiMocks) -> None:
    _build(mocks)
    policy = mocks.one("azure-native:storage:ManagementPolicy").inputs
    assert policy["managementPolicyName"] == "default"
    [rule] = policy["policy"]["rules"]
    definition = rule["definition"]
    assert definition["actions"] == {
        "baseBlob": {"delete": {"daysAfterModificationGreaterThan": 10}}
    }
    assert definition["filters"] == {
        "blobTypes": ["blockBlob"],
        "prefixMatch": ["agora-snaps/snaps/"],
    }


def test_keys_come_from_the_list_keys_invoke(mocks: PulumiMocks) -> None:
    result = _build(mocks)
    [call] = mocks.calls
    assert call.token == "azure-native:storage:listStorageAccountKeys"
    assert call.args["accountName"] == storage_account_name("snaps")
    assert result.value["secretKey"] == "mock-azure-key1-SECRET"


def test_target_has_azure_codes_and_account_name_as_access_key(mocks: PulumiMocks) -> None:
    result = _build(mocks)
    assert result.value == {
        "vendor": 5,
        "region": 0,  # Azure: region is 0 (S9)
        "bucket": "agora-snaps",
        "accessKey": storage_account_name("snaps"),
        "secretKey": "mock-azure-key1-SECRET",
        "fileNamePrefix": ["snaps"],
    }
    assert result.secret
