"""Bring your own bucket: validate an existing bucket and keys and emit them as a ``StorageTarget``.

This is the path for every vendor code, including those no Pulumi provider manages: Qiniu (0),
Kingsoft (4) and Baidu (8) have none on PyPI or npm (docs/storage.md 2.7, option (b)), and a
self-hosted S3-compatible store is vendor 11 with ``extensionParams.endpoint`` (S14).  Nothing is
created: the component has no children and only checks the fields against rules.py.  Keys arrive as
inputs and leave as secrets; they should be write-only keys (S19).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from snapshot_resources import rules
from snapshot_resources.storage.base import (
    SnapshotBucketComponent,
    StorageConfigError,
    StorageIssue,
    validate_storage,
)


class ExistingSnapshotBucket(SnapshotBucketComponent):
    """An existing bucket and its keys, checked and emitted as ``target``."""

    def __init__(
        self,
        name: str,
        *,
        vendor: int | str,
        region: int | str,
        bucket: str,
        access_key: pulumi.Input[str],
        secret_key: pulumi.Input[str],
        file_name_prefix: Sequence[str] = (),
        extension_params: Mapping[str, str] | None = None,
        sts_token: pulumi.Input[str] | None = None,
        sts_expiration: pulumi.Input[int] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        try:
            resolved = validate_storage(
                vendor,
                region=region,
                bucket=bucket,
                file_name_prefix=file_name_prefix,
                extension_params=extension_params,
            )
        except StorageConfigError as error:
            issues = list(error.issues)
        else:
            issues = []
        found = rules.vendor_by_name(vendor)
        if found is not None:
            issues += _sts_issues(found, sts_token is not None, sts_expiration is not None)
        if issues:
            raise StorageConfigError(issues)
        super().__init__("ExistingSnapshotBucket", name, resolved, opts)
        self._emit(
            bucket=resolved.bucket,
            access_key=access_key,
            secret_key=secret_key,
            sts_token=sts_token,
            sts_expiration=sts_expiration,
        )


def _sts_issues(vendor: rules.Vendor, has_token: bool, has_expiration: bool) -> list[StorageIssue]:
    rule = rules.STS_FIELDS
    if not has_token and not has_expiration:
        return []
    if vendor.code not in rules.STS_VENDORS:
        return [
            StorageIssue(rule.path, f"not accepted for vendor {vendor.code}: {rule.text}", rule.id)
        ]
    if has_token != has_expiration:
        missing = "stsExpiration" if has_token else "stsToken"
        return [StorageIssue(missing, f"is missing: {rule.text}", rule.id)]
    return []


def bring_your_own(
    name: str,
    *,
    vendor: int | str,
    region: int | str,
    bucket: str,
    access_key: pulumi.Input[str],
    secret_key: pulumi.Input[str],
    file_name_prefix: Sequence[str] = (),
    extension_params: Mapping[str, str] | None = None,
    sts_token: pulumi.Input[str] | None = None,
    sts_expiration: pulumi.Input[int] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> ExistingSnapshotBucket:
    """A ``StorageTarget`` from an existing bucket and keys, for any vendor code (rules.VENDORS).

    Nothing is created: the fields are checked and emitted as the component's ``target``.
    ``name`` (str): the component's Pulumi name.  ``vendor`` (int | str): any of Agora's vendor
    codes or names, e.g. 0 ``qiniu``, 1 ``aws``, 8 ``baidu``, 11 ``s3-compatible`` (rule
    storage_vendor; S9).  ``region`` (int | str): Agora's code, Agora's label or the vendor's
    region id; 0 for Azure, Google and S3-compatible (rule storage_region; S9).  ``bucket``
    (str): by the vendor's naming rules (rule bucket_name).  ``access_key``, ``secret_key``
    (``pulumi.Input[str]``): the key Agora uploads with, ideally write-only (S19); emitted as
    secrets.  ``file_name_prefix`` (sequence of str, default empty): segments of letters and
    digits, at most 128 characters joined (rule file_name_prefix; S3).  ``extension_params``
    (mapping of str to str, or None): ``sse`` (vendor 1), ``tag`` (vendors 1, 2), ``endpoint``
    (required for vendor 11) (rules extension_sse, extension_tag, extension_endpoint).
    ``sts_token`` (``pulumi.Input[str]`` | None, secret) and ``sts_expiration``
    (``pulumi.Input[int]`` | None, Unix seconds): temporary credentials, both or neither,
    vendors 1, 2 and 3 only (rule sts_fields; S5, S14).  ``opts`` (``pulumi.ResourceOptions`` |
    None): options of the component.

    Returns an ``ExistingSnapshotBucket`` (a ``SnapshotBucketComponent``) whose ``target`` is a
    session's ``storage``.  Raises ``StorageConfigError`` listing every invalid field.
    """
    return ExistingSnapshotBucket(
        name,
        vendor=vendor,
        region=region,
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        file_name_prefix=file_name_prefix,
        extension_params=extension_params,
        sts_token=sts_token,
        sts_expiration=sts_expiration,
        opts=opts,
    )
