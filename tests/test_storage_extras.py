"""Tencent COS and Huawei OBS components (optional extras, issue #5 item 5).

Their SDKs (``tencentcloud-iac-pulumi``, ``pulumi-huaweicloud``) are not installed here, so these
tests put a stand-in package in ``sys.modules``: plain ``CustomResource`` classes with the real type
tokens and the argument and output names of the real generated SDKs (tencentcloudstack/
pulumi-tencentcloud, huaweicloud/pulumi-huaweicloud; docs/storage.md 2.3, 2.6).  They check
this project's wiring (resources, policy, names, target), not the vendors' SDKs; the missing-extra
path is tested in test_storage_factory.py.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from snapshot_resources.storage import SnapshotBucketArgs, policies, storage_component_for
from snapshot_resources.testing.pulumi_mocks import COMPUTED, PulumiMocks

TENCENT_OUTPUTS = {
    "tencentcloud:Cam/user:User": {"uin": "100012345678"},
    "tencentcloud:Cam/accessKey:AccessKey": {
        "access_key": "AKIDMOCK",
        "secret_access_key": "mock-cos-secret-SECRET",
    },
}
HUAWEI_OUTPUTS = {"huaweicloud:Iam/accessKey:AccessKey": {"secret": "mock-obs-secret-SECRET"}}


def _resource_class(token: str, outputs: tuple[str, ...]) -> type[pulumi.CustomResource]:
    class Stand(pulumi.CustomResource):
        # ``resource_name`` first, as in the generated SDKs: ``name`` is often a property.
        def __init__(
            self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **props: Any
        ) -> None:
            super().__init__(token, resource_name, {**dict.fromkeys(outputs), **props}, opts)

    return Stand


def _package(
    name: str, modules: dict[str, dict[str, tuple[str, tuple[str, ...]]]]
) -> dict[str, types.ModuleType]:
    root = types.ModuleType(name)
    found = {name: root}
    for sub, classes in modules.items():
        module = types.ModuleType(f"{name}.{sub}")
        for cls, (token, outputs) in classes.items():
            setattr(module, cls, _resource_class(token, outputs))
        setattr(root, sub, module)
        found[f"{name}.{sub}"] = module
    return found


@pytest.fixture(autouse=True)
def mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulumiMocks]:
    packages = {
        **_package(
            "tencentcloud_iac_pulumi",
            {
                "cos": {"Bucket": ("tencentcloud:Cos/bucket:Bucket", ("bucket",))},
                "cam": {
                    "User": ("tencentcloud:Cam/user:User", ("uin", "name")),
                    "Policy": ("tencentcloud:Cam/policy:Policy", ()),
                    "UserPolicyAttachment": (
                        "tencentcloud:Cam/userPolicyAttachment:UserPolicyAttachment",
                        (),
                    ),
                    "AccessKey": (
                        "tencentcloud:Cam/accessKey:AccessKey",
                        ("access_key", "secret_access_key"),
                    ),
                },
            },
        ),
        **_package(
            "pulumi_huaweicloud",
            {
                "obs": {"Bucket": ("huaweicloud:Obs/bucket:Bucket", ("bucket",))},
                "iam": {
                    "User": ("huaweicloud:Iam/user:User", ()),
                    "Role": ("huaweicloud:Iam/role:Role", ()),
                    "UserRoleAssignment": (
                        "huaweicloud:Iam/userRoleAssignment:UserRoleAssignment",
                        (),
                    ),
                    "AccessKey": ("huaweicloud:Iam/accessKey:AccessKey", ("secret",)),
                },
            },
        ),
    }

    class TencentProvider(pulumi.ProviderResource):
        def __init__(
            self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **props: Any
        ) -> None:
            super().__init__("tencentcloud", resource_name, props, opts)

    setattr(packages["tencentcloud_iac_pulumi"], "Provider", TencentProvider)  # noqa: B010
    for name, module in packages.items():
        monkeypatch.setitem(sys.modules, name, module)
    for ours in ("snapshot_resources.storage.tencent", "snapshot_resources.storage.huawei"):
        monkeypatch.delitem(sys.modules, ours, raising=False)
    mocks = PulumiMocks(computed={**COMPUTED, **TENCENT_OUTPUTS, **HUAWEI_OUTPUTS})
    pulumi.runtime.set_mocks(mocks, project="agora-snapshots", stack="test", preview=False)
    yield mocks
    for ours in ("snapshot_resources.storage.tencent", "snapshot_resources.storage.huawei"):
        sys.modules.pop(ours, None)  # built against the stand-ins: never reuse


def test_tencent_bucket_policy_and_target(mocks: PulumiMocks) -> None:
    component = storage_component_for("tencent")
    args = SnapshotBucketArgs(
        bucket="snaps-1250000000",
        region="ap-guangzhou",
        file_name_prefix=("a",),
        retention_days=5,
    )
    result = mocks.run(lambda: component("cos", args).target)
    assert mocks.one("pulumi:providers:tencentcloud").inputs["region"] == "ap-guangzhou"
    bucket = mocks.one("tencentcloud:Cos/bucket:Bucket").inputs
    assert bucket == {
        "bucket": "snaps-1250000000",
        "acl": "private",
        "lifecycle_rules": [{"filter_prefix": "a/", "expiration": {"days": 5}}],
    }
    policy = mocks.one("tencentcloud:Cam/policy:Policy").inputs
    assert json.loads(policy["document"]) == policies.tencent_upload_policy(
        "snaps-1250000000", "a/", region="ap-guangzhou"
    )
    attachment = mocks.one("tencentcloud:Cam/userPolicyAttachment:UserPolicyAttachment").inputs
    assert attachment["policy_id"] == "cos-upload-policy-id"
    assert mocks.one("tencentcloud:Cam/accessKey:AccessKey").inputs["target_uin"] == "100012345678"
    assert result.value == {
        "vendor": 3,
        "region": 3,
        "bucket": "snaps-1250000000",
        "accessKey": "AKIDMOCK",
        "secretKey": "mock-cos-secret-SECRET",
        "fileNamePrefix": ["a"],
    }
    assert result.secret


def test_huawei_bucket_role_and_target(mocks: PulumiMocks) -> None:
    component = storage_component_for("huawei")
    args = SnapshotBucketArgs(bucket="snaps", region="CN_North_4", retention_days=9)
    result = mocks.run(lambda: component("obs", args).target)
    bucket = mocks.one("huaweicloud:Obs/bucket:Bucket").inputs
    assert (bucket["region"], bucket["acl"], bucket["sse_algorithm"]) == (
        "cn-north-4",
        "private",
        "AES256",
    )
    assert bucket["lifecycle_rules"] == [
        {"name": "expire-agora-snapshots", "enabled": True, "expirations": [{"days": 9}]}
    ]
    role = mocks.one("huaweicloud:Iam/role:Role").inputs
    assert json.loads(role["policy"]) == policies.huawei_upload_policy("snaps")
    assignment = mocks.one("huaweicloud:Iam/userRoleAssignment:UserRoleAssignment").inputs
    assert assignment == {
        "user_id": "obs-uploader-id",
        "role_id": "obs-upload-policy-id",
        "enterprise_project_id": "0",
    }
    assert result.value == {
        "vendor": 7,
        "region": 1,
        "bucket": "snaps",
        "accessKey": "obs-key-id",
        "secretKey": "mock-obs-secret-SECRET",
    }
    assert result.secret
