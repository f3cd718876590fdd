"""Storage for snapshots: per-vendor components that provision a bucket and an upload-only key.

Each component exposes ``target: Output[StorageTarget]`` (Agora's ``storageConfig``, keys secret).
Vendor SDKs are optional extras and are imported only when a vendor is asked for, so importing this
package (or ``snapshot_resources``) loads no ``pulumi_aws``/``pulumi_alicloud``/``pulumi_gcp``/
``pulumi_azure_native`` module; a vendor whose extra is absent raises ``MissingExtraError`` naming
the ``pip install 'snapshot-resources[<extra>]'`` to run.

Which vendors are provisioned, by which module and class, with which extra, is declared once in
the vendor registry (``rules.VENDORS``, ``rules.Provisioning``); ``FAMILIES`` and each module's
``VENDOR`` derive from it.  Provisioning covers the vendors with a Pulumi provider
(docs/storage.md section 0); every
vendor code, including Qiniu (0), Kingsoft (4), Baidu (8) and S3-compatible stores (11), can
``bring_your_own`` bucket and keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, cast

import pulumi

from snapshot_resources import rules
from snapshot_resources.spec import Problem
from snapshot_resources.storage.base import (
    MissingExtraError,
    ResolvedStorage,
    SnapshotBucketArgs,
    SnapshotBucketComponent,
    StorageConfigError,
    validate_storage,
)
from snapshot_resources.storage.byo import ExistingSnapshotBucket, bring_your_own


@dataclass(frozen=True)
class VendorFamily:
    """Where the component for a vendor lives and which extra brings its SDK: a vendor's
    ``rules.Provisioning`` with its code (``vendor``)."""

    vendor: int
    module: str  # under snapshot_resources.storage
    component: str
    extra: str  # pyproject [project.optional-dependencies]
    sdk: str  # the import name of the vendor's Pulumi package


FAMILIES: Final = {
    code: VendorFamily(code, p.module, p.component, p.extra, p.sdk)
    for code, vendor in rules.VENDORS.items()
    if (p := vendor.provisioning) is not None
}
"""Vendors this package can provision, from the registry ``rules.VENDORS``. The rest (0, 4, 8,
11) have no Pulumi provider to drive (docs/storage.md 2.7): they are bring-your-own only."""


class SnapshotBucketClass(Protocol):
    """What every provisioning component class is called with: ``(name, args, opts)``."""

    def __call__(
        self, name: str, args: SnapshotBucketArgs, opts: pulumi.ResourceOptions | None = None, /
    ) -> SnapshotBucketComponent: ...


def storage_component_for(vendor: int | str) -> SnapshotBucketClass:
    """The provisioning component class for ``vendor`` (code or name), importing its SDK now.

    ``vendor`` (int | str): Agora's vendor code or a name or alias (``1``, ``"aws"``, ``"gcs"``;
    ``rules.VENDORS``, S9).  Returns the component class, called as
    ``(name, args: SnapshotBucketArgs, opts=None)``: ``AwsSnapshotBucket`` (1),
    ``AlicloudSnapshotBucket`` (2),
    ``TencentSnapshotBucket`` (3), ``AzureSnapshotBucket`` (5), ``GcpSnapshotBucket`` (6) or
    ``HuaweiSnapshotBucket`` (7).

    Raises ``StorageConfigError`` for an unknown vendor (rule storage_vendor) or one that cannot
    be provisioned (0, 4, 8, 11: bring your own), and ``MissingExtraError`` when the vendor's
    extra is not installed.
    """
    found = rules.vendor_by_name(vendor)
    if found is None:
        rule = rules.STORAGE_VENDOR
        raise StorageConfigError([Problem(("vendor",), f"{vendor!r}: {rule.text}", rule.id)])
    family = FAMILIES.get(found.code)
    if family is None:
        provisionable = ", ".join(f"{code} ({rules.VENDORS[code].name})" for code in FAMILIES)
        raise StorageConfigError([Problem(
            ("provision",),
            f"vendor {found.code} ({found.title}) has no Pulumi provider to create buckets with; "
            "set provision: false and give accessKey/secretKey (bring your own), or use one of "
            f"{provisionable}",
            rules.STORAGE_VENDOR.id,
        )])
    try:
        module = importlib.import_module(f"snapshot_resources.storage.{family.module}")
    except MissingExtraError:
        raise
    except ModuleNotFoundError as exc:
        # The vendor module imports its SDK at the top; a missing transitive dependency of the SDK
        # is the same user problem (the extra is not installed properly).
        raise MissingExtraError(title=found.title, module=family.sdk, extra=family.extra) from exc
    return cast(SnapshotBucketClass, getattr(module, family.component))


def provision_storage(
    name: str,
    *,
    vendor: int | str,
    region: str | int,
    bucket: pulumi.Input[str],
    file_name_prefix: Sequence[str] = (),
    retention_days: int,
    extension_params: Mapping[str, str] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> SnapshotBucketComponent:
    """Create the bucket and upload-only key for a ``StorageSpec`` with ``provision: true``.

    Every field is validated before the vendor SDK is imported, so a typo is reported (all at once)
    even where the vendor's extra is not installed.

    ``name`` (str): the component's Pulumi name (its children are named after it).
    ``vendor`` (int | str): a provisionable vendor, by code or name: 1 ``aws``, 2 ``alibaba``,
    3 ``tencent``, 5 ``azure``, 6 ``gcp``, 7 ``huawei`` (rules storage_vendor, provision; S9).
    ``region`` (str | int): the vendor's region id (``us-east-1``), Agora's label
    (``US_EAST_1``) or Agora's code; for Azure and Google the location to create in
    (``westeurope``, ``EU``) (rule storage_region; S9).  ``bucket`` (``pulumi.Input[str]``): the
    exact bucket name (the container for Azure), by the vendor's naming rules (rule
    bucket_name); a name from another resource (an ``Output``) is checked when it resolves.
    ``file_name_prefix`` (sequence of str, default empty): path segments of letters and digits, at
    most 128 characters joined (rule file_name_prefix; S3); the key may upload only under it.
    ``retention_days`` (int, at least 1): days before a snapshot is deleted by the bucket's
    lifecycle rule (rule retention_days).  ``extension_params`` (mapping of str to str, or None):
    ``sse`` (vendor 1) or ``tag`` (vendors 1, 2) (rules extension_sse, extension_tag; S3).
    ``opts`` (``pulumi.ResourceOptions`` | None): options of the component.

    Returns the ``SnapshotBucketComponent``; its ``target`` (``Output[StorageTarget]``, secret)
    is a session's ``storage``.  Raises ``StorageConfigError`` listing every invalid field,
    ``MissingExtraError`` when the vendor's extra is not installed.
    """
    validate_storage(
        vendor,
        region=region,
        bucket=bucket,
        file_name_prefix=file_name_prefix,
        extension_params=extension_params,
        retention_days=retention_days,
    )
    component = storage_component_for(vendor)
    args = SnapshotBucketArgs(
        bucket=bucket,
        region=region,
        file_name_prefix=tuple(file_name_prefix),
        retention_days=retention_days,
        extension_params=dict(extension_params) if extension_params else None,
    )
    return component(name, args, opts)


__all__ = [
    "FAMILIES",
    "ExistingSnapshotBucket",
    "MissingExtraError",
    "ResolvedStorage",
    "SnapshotBucketArgs",
    "SnapshotBucketClass",
    "SnapshotBucketComponent",
    "StorageConfigError",
    "VendorFamily",
    "bring_your_own",
    "provision_storage",
    "storage_component_for",
    "validate_storage",
]
