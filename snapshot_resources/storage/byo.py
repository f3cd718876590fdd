"""Bring your own bucket: validate an existing bucket and keys and emit them as a ``StorageTarget``.

This is the path for every vendor code, including those no Pulumi provider manages: Qiniu (0),
Kingsoft (4) and Baidu (8) have none on PyPI or npm (docs/storage.md 2.7, option (b)), and a
self-hosted S3-compatible store is vendor 11 with ``extensionParams.endpoint`` (S14).  Nothing is
created: the component has no children and only checks the fields against rules.py.  Keys arrive as
inputs and leave as secrets; they should be write-only keys (S19).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import pulumi

from snapshot_resources.storage.base import SnapshotBucketComponent, validate_storage


class ExistingSnapshotBucket(SnapshotBucketComponent):
    """An existing bucket and its keys, checked and emitted as ``target``: a ``StorageTarget``
    for any vendor code (rules.VENDORS); ``bring_your_own(...)`` is the same call.

    Nothing is created: the fields are checked and emitted as the component's ``target``.
    ``name`` (str): the component's Pulumi name.  ``vendor`` (int | str): any of Agora's vendor
    codes or names, e.g. 0 ``qiniu``, 1 ``aws``, 8 ``baidu``, 11 ``s3-compatible`` (rule
    storage_vendor; S9).  ``region`` (int | str): Agora's code, Agora's label or the vendor's
    region id; 0 for Azure, Google and S3-compatible (rule storage_region; S9).  ``bucket``
    (``pulumi.Input[str]``): by the vendor's naming rules (rule bucket_name); a name from
    another resource (an ``Output``) is checked when it resolves.  ``access_key``, ``secret_key``
    (``pulumi.Input[str]``): the key Agora uploads with, ideally write-only (S19); emitted as
    secrets.  ``file_name_prefix`` (sequence of str, default empty): segments of letters and
    digits, at most 128 characters joined (rule file_name_prefix; S3).  ``extension_params``
    (mapping of str to str, or None): ``sse`` (vendor 1), ``tag`` (vendors 1, 2), ``endpoint``
    (required for vendor 11) (rules extension_sse, extension_tag, extension_endpoint).
    ``sts_token`` (``pulumi.Input[str]`` | None, secret) and ``sts_expiration``
    (``pulumi.Input[int]`` | None, Unix seconds): temporary credentials, both or neither,
    vendors 1, 2 and 3 only (rule sts_fields; S5, S14).  ``opts`` (``pulumi.ResourceOptions`` |
    None): options of the component.

    A ``SnapshotBucketComponent`` whose ``target`` is a session's ``storage``.  Raises
    ``StorageConfigError`` listing every invalid field.
    """

    def __init__(
        self,
        name: str,
        *,
        vendor: int | str,
        region: int | str,
        bucket: pulumi.Input[str],
        access_key: pulumi.Input[str],
        secret_key: pulumi.Input[str],
        file_name_prefix: Sequence[str] = (),
        extension_params: Mapping[str, str] | None = None,
        sts_token: pulumi.Input[str] | None = None,
        sts_expiration: pulumi.Input[int] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        resolved = validate_storage(
            vendor,
            region=region,
            bucket=bucket,
            file_name_prefix=file_name_prefix,
            extension_params=extension_params,
            sts_token=sts_token,
            sts_expiration=sts_expiration,
        )
        super().__init__("ExistingSnapshotBucket", name, resolved, opts)
        self._emit(
            resolved.bucket, access_key, secret_key,
            sts_token=sts_token, sts_expiration=sts_expiration,
        )


bring_your_own: Final = ExistingSnapshotBucket
"""``bring_your_own(name, *, vendor, region, bucket, access_key, secret_key, ...)``: the same
signature, declared once (``ExistingSnapshotBucket``)."""
