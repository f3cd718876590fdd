"""Dispatch by vendor code, optional extras, validation before import, import cost (issue #5)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from snapshot_resources import rules
from snapshot_resources.storage import (
    FAMILIES,
    MissingExtraError,
    StorageConfigError,
    base,
    provision_storage,
    storage_component_for,
    validate_storage,
)
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

REPO = Path(__file__).resolve().parent.parent
VENDOR_SDKS = (
    "pulumi_aws",
    "pulumi_alicloud",
    "pulumi_gcp",
    "pulumi_azure_native",
    "tencentcloud_iac_pulumi",
    "pulumi_huaweicloud",
)


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize(
    ("vendor", "region", "component", "codes"),
    [
        ("aws", "us-west-2", "AwsSnapshotBucket", (1, 3)),
        (2, "cn-hangzhou", "AlicloudSnapshotBucket", (2, 0)),
        ("gcs", "EU", "GcpSnapshotBucket", (6, 0)),
        ("azure", "westeurope", "AzureSnapshotBucket", (5, 0)),
    ],
)
def test_provision_storage_dispatches_by_vendor(
    mocks: PulumiMocks, vendor: str | int, region: str, component: str, codes: tuple[int, int]
) -> None:
    def program() -> Any:
        made = provision_storage(
            "main",
            vendor=vendor,
            region=region,
            bucket="agora-snaps",
            file_name_prefix=["snaps"],
            retention_days=3,
            extension_params=None,
        )
        assert type(made).__name__ == component
        return made.target

    result = mocks.run(program)
    assert (result.value["vendor"], result.value["region"]) == codes


@pytest.mark.parametrize("vendor", [0, 4, 8, 11])
def test_vendors_without_a_provider_point_to_bring_your_own(vendor: int) -> None:
    with pytest.raises(StorageConfigError, match=r"provision: vendor .*\(bring your own\)"):
        storage_component_for(vendor)


@pytest.mark.parametrize("vendor", sorted(FAMILIES))
def test_a_missing_extra_names_the_pip_install(vendor: int, monkeypatch: pytest.MonkeyPatch) -> None:
    family = FAMILIES[vendor]
    # As if the extra were not installed: importing the vendor's SDK fails (a None entry in
    # sys.modules makes `import` raise ModuleNotFoundError), and its component module is unloaded.
    monkeypatch.setitem(sys.modules, family.sdk, None)
    monkeypatch.delitem(sys.modules, f"snapshot_resources.storage.{family.module}", raising=False)
    with pytest.raises(MissingExtraError) as info:
        storage_component_for(vendor)
    assert f"pip install 'snapshot-resources[{family.extra}]'" in str(info.value)
    assert (info.value.extra, info.value.module) == (family.extra, family.sdk)


def test_fields_are_validated_before_the_sdk_is_imported() -> None:
    with pytest.raises(StorageConfigError) as info:
        provision_storage(
            "main",
            vendor="tencent",
            region="ap-guangzhou",
            bucket="no-appid",
            file_name_prefix=[],
            retention_days=0,
            extension_params=None,
        )
    assert [p.dotted_path for p in info.value.problems] == ["bucket", "retentionDays"]


def test_every_family_is_a_known_vendor_with_a_region_table() -> None:
    for code, family in FAMILIES.items():
        assert rules.VENDORS[code].code == family.vendor


def test_the_vendor_registry_is_the_one_list_of_provisioned_vendors() -> None:
    # rules.VENDORS declares how each vendor is provisioned; the rest derives from it.
    assert set(FAMILIES) == set(rules.PROVISION_VENDORS)
    for code in rules.PROVISION_VENDORS:
        assert rules.VENDORS[code].name in rules.PROVISION.text
    for code, family in FAMILIES.items():
        module_name = f"snapshot_resources.storage.{family.module}"
        assert base.vendor_of(module_name).code == code
        try:
            module = importlib.import_module(module_name)
        except MissingExtraError:  # the second-tier SDKs are not in the test environment
            continue
        assert code == module.VENDOR
        assert getattr(module, family.component).__name__ == family.component


def test_every_vendor_extra_is_declared_in_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for family in FAMILIES.values():
        requirement = " ".join(extras[family.extra])
        assert family.sdk.split("_")[0] in requirement.replace("-", "_"), family


def test_region_error_lists_the_vendor_regions() -> None:
    with pytest.raises(
        StorageConfigError,
        match=r"'mars-1' is not in the region table of Amazon S3 \(vendor 1\); its regions: "
        r"us-east-1, us-east-2",
    ):
        validate_storage(1, region="mars-1", bucket="agora-snaps")


def test_extension_params_follow_the_vendor_rules() -> None:
    with pytest.raises(StorageConfigError) as info:
        validate_storage(
            2,
            region="cn-hangzhou",
            bucket="agora-snaps",
            extension_params={"sse": "kms", "tag": "a=b"},
        )
    assert [(p.dotted_path, p.rule_id) for p in info.value.problems] == [
        ("extensionParams.sse", "extension_sse")
    ]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_the_package_loads_no_vendor_sdk() -> None:
    done = _run("import snapshot_resources, snapshot_resources.storage")
    assert done.returncode == 0, done.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "snapshot_resources.storage.base" in loaded  # the probe sees our own modules
    assert not {m for m in loaded if m.split(".")[0] in VENDOR_SDKS}


def test_a_missing_installed_extra_fails_with_the_pip_install_line() -> None:
    # Hide pulumi_aws from the import system in a fresh process, as if the extra were absent.
    done = _run("""
        import sys
        from importlib.abc import MetaPathFinder

        class Hide(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "pulumi_aws":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
        from snapshot_resources.storage import MissingExtraError, storage_component_for
        try:
            storage_component_for("aws")
        except MissingExtraError as error:
            print(error)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Amazon S3 storage needs the Pulumi package 'pulumi_aws', which is not installed; "
        "add the extra: pip install 'snapshot-resources[aws]'"
    )


@pytest.mark.parametrize("vendor", ["azure", "gcp"])
def test_provisioning_azure_or_google_needs_a_location_not_a_code(vendor: str) -> None:
    with pytest.raises(StorageConfigError, match=r"region: 0: creating a .* needs its location"):
        validate_storage(vendor, region=0, bucket="agora-snaps", retention_days=1)


def test_an_existing_azure_bucket_can_be_given_region_code_0() -> None:
    assert validate_storage("azure", region=0, bucket="agora-snaps").region_code == 0
