"""What every storage component shares: arguments, validation, errors and the target it emits.

A storage component provisions a bucket and a least-privilege upload key at one vendor and hands
the session a ``StorageTarget`` (Agora's ``storageConfig``, target.py).  The vendor and region
*codes* in that target are derived here from ``rules.VENDORS``, never typed by hand: the user names
the region the way the vendor does (``us-east-1``), or by Agora's label or code, and the vendor's
own region id is what the vendor SDK receives (docs/storage.md section 1: "keep these tables
as data and fail fast on an unmapped region rather than silently sending 0").

Buckets are never force-destroyed: ``pulumi destroy`` fails on a bucket that still holds
snapshots rather than delete a customer's files; the lifecycle rule empties it over time.

Exceptions::

    StorageConfigError(ValueError)   every rejected input at once, each naming the field and rule
    MissingExtraError(ImportError)   the vendor's Pulumi package (an optional extra) is absent
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Final, cast

import pulumi

from snapshot_resources import rules
from snapshot_resources.target import ExtensionParams, StorageTarget

TYPE_PREFIX: Final = "agora-snapshots:storage:"
"""Type tokens are ``agora-snapshots:storage:<Class>`` (docs/pulumi-dynamic.md section 5)."""


EXTENSION_KEYS: Final = ("sse", "tag", "endpoint")  # target.ExtensionParams; S3 section 3.6


# --------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class StorageIssue:
    """One rejected input: the dotted path, what is wrong, and the rule (``rules.RULES_BY_ID``)."""

    path: str
    message: str
    rule_id: str

    def __str__(self) -> str:
        rule = rules.RULES_BY_ID.get(self.rule_id)
        cite = f"; {rule.cite()}" if rule is not None and rule.sources else ""
        return f"{self.path}: {self.message} (rule {self.rule_id}{cite})"


class StorageConfigError(ValueError):
    """Storage arguments that break a rule; ``issues`` lists every failure, not just the first.

    Messages quote bucket names, regions and prefixes but never a key: keys are not validated for
    content, so they cannot end up in the text (CONTRIBUTING.md, secrets).

    ``issues`` (sequence of ``StorageIssue``): each with the dotted ``path`` of the field, a
    ``message`` and the ``rule_id`` (``rules.RULES_BY_ID``); kept as the tuple ``.issues``.  The
    message is "invalid storage: " and each issue as ``path: message (rule <id>; sources)``,
    separated by "; ".  A ``ValueError``.
    """

    def __init__(self, issues: Sequence[StorageIssue]) -> None:
        self.issues: tuple[StorageIssue, ...] = tuple(issues)
        super().__init__("invalid storage: " + "; ".join(str(i) for i in self.issues))


class MissingExtraError(ImportError):
    """The vendor's Pulumi package is not installed; the message names the extra to add.

    Keyword arguments, kept as attributes: ``title`` (str): the vendor's name, e.g.
    ``"Amazon S3"``; ``module`` (str): the missing import, e.g. ``"pulumi_aws"`` (also the
    ``ImportError``'s ``name``); ``extra`` (str): the extra that brings it, e.g. ``"aws"``, so the
    message says ``pip install 'snapshot-resources[aws]'``.  An ``ImportError``.
    """

    def __init__(self, *, title: str, module: str, extra: str) -> None:
        self.title = title
        self.module = module
        self.extra = extra
        super().__init__(
            f"{title} storage needs the Pulumi package {module!r}, which is not installed; "
            f"add the extra: pip install 'snapshot-resources[{extra}]'",
            name=module,
        )


def import_extra(module: str, *, title: str, extra: str) -> ModuleType:
    """Import a vendor SDK that is an optional extra, or raise ``MissingExtraError``.

    Used for the SDKs the project's type checker cannot see (Tencent, Huawei: sdist-only packages
    that are not part of the test environment, docs/storage.md sections 2.3 and 2.6).
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(title=title, module=module.split(".")[0], extra=extra) from exc


def stable_suffix(name: str, length: int = 12) -> str:
    """Lowercase hex naming this component within its project and stack, stable across runs.

    Used where the vendor needs a name that is unique in an account (IAM user, RAM policy, service
    account id, Azure storage account) and Pulumi's random autonaming suffix cannot be used or
    checked: the engine applies autonaming, so tests under mocks would never see the real name.
    """
    seed = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


# --------------------------------------------------------------------------------------------------
# Arguments and validation


@dataclass(frozen=True)
class SnapshotBucketArgs:
    """What every provisioning component takes (the component's name is its first argument, as in
    every Pulumi component: ``AwsSnapshotBucket(name, args, opts)``).

    ``region`` is the vendor's own region id (``us-east-1``, ``cn-hangzhou``), Agora's label
    (``US_EAST_1``) or Agora's code (``0``); for Azure and Google it is the location the bucket is
    created in (``westeurope``, ``EU``), and Agora's code is 0 (rules.VENDORS, S9).
    ``bucket`` is the exact bucket name Agora uploads to (the container name for Azure).

    Fields: ``bucket`` (str): the bucket name, by the vendor's naming rules (rule bucket_name).
    ``region`` (str | int): as above (rule storage_region; S9).  ``file_name_prefix`` (sequence of
    str, default empty): path segments of letters and digits, at most 128 characters joined (rule
    file_name_prefix; S3); the upload key and the lifecycle rule are scoped to it.
    ``retention_days`` (int, default 30, at least 1): days before the lifecycle rule deletes a
    snapshot (rule retention_days).  ``extension_params`` (mapping of str to str, or None): ``sse``
    (vendor 1: ``"kms"`` or ``"aes256"``) and ``tag`` (vendors 1, 2) (rules extension_sse,
    extension_tag; S3).  Nothing is checked at construction: ``resolve`` (called by every
    component) raises ``StorageConfigError`` listing every invalid field.
    """

    bucket: str
    region: str | int
    file_name_prefix: Sequence[str] = ()
    retention_days: int = 30
    extension_params: Mapping[str, str] | None = None

    def resolve(self, vendor: int) -> ResolvedStorage:
        """Validate these args for ``vendor`` (every problem at once) and resolve its codes."""
        return validate_storage(
            vendor,
            region=self.region,
            bucket=self.bucket,
            file_name_prefix=self.file_name_prefix,
            extension_params=self.extension_params,
            retention_days=self.retention_days,
        )


@dataclass(frozen=True)
class ResolvedStorage:
    """Validated arguments with the codes Agora wants and the id the vendor SDK wants."""

    vendor: rules.Vendor
    region_code: int
    region_id: str
    bucket: str
    file_name_prefix: tuple[str, ...]
    extension_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def object_prefix(self) -> str:
        """The key prefix snapshots land under: ``a/b/`` for ``["a", "b"]``; ``""`` for none.

        Agora writes ``<fileNamePrefix joined by '/'>/<file name>`` (S3, S8), so this is what the
        upload policy and the lifecycle rule scope to.  With no prefix they cover the whole bucket.
        """
        return "".join(f"{segment}/" for segment in self.file_name_prefix)


def resolve_region(vendor: rules.Vendor, region: str | int) -> tuple[int, str] | None:
    """Agora's region code and the vendor's region id, or None if the vendor has no such region.

    For the ``any_region`` vendors (Azure, Google, S3-compatible) the code is 0 and the id is the
    location exactly as given (S9: "region: 0" for them).
    """
    code = vendor.region_code(region)
    if code is None:
        return None
    if vendor.any_region:
        return code, str(region).strip() if isinstance(region, str) else ""
    return code, vendor.regions[code][1]


def _region_issue(vendor: rules.Vendor, region: object) -> StorageIssue:
    if vendor.any_region:
        expected = "a non-empty location (Agora's region code is 0 for this vendor)"
    else:
        expected = "one of " + ", ".join(vendor.region_names())
    return StorageIssue(
        "region",
        f"{region!r} is not a {vendor.title} region; expected {expected}",
        rules.STORAGE_REGION.id,
    )


def _prefix_issues(prefix: Sequence[str]) -> list[StorageIssue]:
    issues: list[StorageIssue] = []
    rule = rules.FILE_NAME_PREFIX
    if isinstance(prefix, str):
        # A bare string would be iterated character by character; Agora wants a list (S3).
        return [StorageIssue(rule.path, "must be a list of path segments, not a string", rule.id)]
    for index, segment in enumerate(prefix):
        if not isinstance(segment, str) or not rule.matches(segment):
            issues.append(
                StorageIssue(f"{rule.path}[{index}]", f"{segment!r}: {rule.text}", rule.id)
            )
    if not issues and rules.file_name_prefix_length(list(prefix)) > rules.FILE_NAME_PREFIX_MAX:
        length = rules.file_name_prefix_length(list(prefix))
        issues.append(StorageIssue(rule.path, f"is {length} characters long: {rule.text}", rule.id))
    return issues


def _extension_issues(vendor: rules.Vendor, params: Mapping[str, str]) -> list[StorageIssue]:
    issues: list[StorageIssue] = []
    for key in params:
        if key not in EXTENSION_KEYS:
            issues.append(
                StorageIssue(f"extensionParams.{key}", rules.UNKNOWN_KEY.text, rules.UNKNOWN_KEY.id)
            )
    sse, tag, endpoint = params.get("sse"), params.get("tag"), params.get("endpoint")
    if sse is not None and (vendor.code not in rules.SSE_VENDORS or sse not in rules.SSE_VALUES):
        rule = rules.EXTENSION_SSE
        issues.append(
            StorageIssue(rule.path, f"{sse!r} for vendor {vendor.code}: {rule.text}", rule.id)
        )
    if tag is not None and (vendor.code not in rules.TAG_VENDORS or not tag):
        tag_rule = rules.EXTENSION_TAG
        issues.append(
            StorageIssue(tag_rule.path, f"for vendor {vendor.code}: {tag_rule.text}", tag_rule.id)
        )
    needs_endpoint = vendor.code in rules.ENDPOINT_VENDORS
    rule_ep = rules.EXTENSION_ENDPOINT
    if needs_endpoint and endpoint is None:
        issues.append(StorageIssue(rule_ep.path, f"is missing: {rule_ep.text}", rule_ep.id))
    elif endpoint is not None and (not needs_endpoint or not rule_ep.matches(endpoint)):
        issues.append(
            StorageIssue(
                rule_ep.path, f"{endpoint!r} for vendor {vendor.code}: {rule_ep.text}", rule_ep.id
            )
        )
    return issues


def validate_storage(
    vendor: int | str,
    *,
    region: str | int,
    bucket: str,
    file_name_prefix: Sequence[str] = (),
    extension_params: Mapping[str, str] | None = None,
    retention_days: int | None = None,
) -> ResolvedStorage:
    """Check every storage field against rules.py at once; raise ``StorageConfigError`` listing all.

    ``retention_days`` is given exactly when a bucket is to be provisioned (bring-your-own targets
    have no lifecycle); then Azure and Google also need a real location, not Agora's code 0.
    """
    found = rules.vendor_by_name(vendor)
    if found is None:
        raise StorageConfigError(
            [
                StorageIssue(
                    "vendor", f"{vendor!r}: {rules.STORAGE_VENDOR.text}", rules.STORAGE_VENDOR.id
                )
            ]
        )
    issues: list[StorageIssue] = []
    resolved_region = resolve_region(found, region)
    if resolved_region is None:
        issues.append(_region_issue(found, region))
    if not isinstance(bucket, str) or not found.bucket.matches(bucket):
        issues.append(StorageIssue("bucket", f"{bucket!r}: {found.bucket.text}", found.bucket.id))
    issues += _prefix_issues(file_name_prefix)
    params = dict(extension_params or {})
    issues += _extension_issues(found, params)
    # Whole days, at least one, is what every vendor's lifecycle rule takes (S3 Expiration.Days
    # "must be a positive integer", OSS Days, GCS age, Azure daysAfterModificationGreaterThan).
    rule = rules.RETENTION_DAYS
    if retention_days is not None and (
        isinstance(retention_days, bool)
        or not isinstance(retention_days, int)
        or not rule.minimum <= retention_days <= rule.maximum
    ):
        issues.append(StorageIssue(rule.path, f"{retention_days!r}: {rule.text}", rule.id))
    if retention_days is not None and resolved_region is not None and not resolved_region[1]:
        issues.append(
            StorageIssue(
                "region",
                f"{region!r}: creating a {found.title} bucket needs its location "
                "(e.g. westeurope, EU); Agora's region code is 0 either way",
                rules.STORAGE_REGION.id,
            )
        )
    if issues or resolved_region is None:
        raise StorageConfigError(issues)
    code, region_id = resolved_region
    return ResolvedStorage(
        vendor=found,
        region_code=code,
        region_id=region_id,
        bucket=bucket,
        file_name_prefix=tuple(file_name_prefix),
        extension_params=MappingProxyType(params),
    )


# --------------------------------------------------------------------------------------------------
# The component base class and the target it emits


def _target_dict(
    resolved: ResolvedStorage,
    bucket: str,
    access_key: str,
    secret_key: str,
    sts_token: str | None,
    sts_expiration: int | None,
) -> StorageTarget:
    target: StorageTarget = {
        "vendor": resolved.vendor.code,
        "region": resolved.region_code,
        "bucket": bucket,
        "accessKey": access_key,
        "secretKey": secret_key,
    }
    # Optional keys are left out rather than sent empty: Agora's reference marks them optional (S3).
    if resolved.file_name_prefix:
        target["fileNamePrefix"] = list(resolved.file_name_prefix)
    if resolved.extension_params:
        target["extensionParams"] = cast(ExtensionParams, dict(resolved.extension_params))
    if sts_token is not None:
        target["stsToken"] = sts_token
    if sts_expiration is not None:
        target["stsExpiration"] = int(sts_expiration)
    return target


class SnapshotBucketComponent(pulumi.ComponentResource):
    """Base of every storage component: holds the resolved codes and emits ``target``.

    ``target`` is one ``Output[StorageTarget]``; because it carries the keys, Pulumi marks the whole
    value secret (secrecy propagates through ``Output.all``).  Passing the fields as a dict of
    separate inputs would not help: ``Output.from_input`` unwraps nested outputs into one, and the
    SDK can only mark top-level properties secret (pulumi/runtime/rpc.py, deserialize_property;
    measured in tests/test_storage_byo.py).  ``bucket``, ``vendor``, ``region`` and
    ``file_name_prefix`` are exposed separately, not secret, for stack outputs and display.

    Constructor (called by the vendor components, not by users): ``type_name`` (str): the class
    name, giving the type token ``agora-snapshots:storage:<type_name>``; ``name`` (str): the
    component's Pulumi name; ``resolved`` (``ResolvedStorage``): the validated arguments with
    Agora's codes (from ``SnapshotBucketArgs.resolve`` or ``validate_storage``); ``opts``
    (``pulumi.ResourceOptions`` | None): the component's options.  Raises nothing itself.
    Attributes: ``target`` (``Output[StorageTarget]``, secret), ``bucket`` (``Output[str]``),
    ``access_key`` and ``secret_key`` (``Output[str]``, secret), ``vendor`` and ``region`` (int,
    Agora's codes; S9), ``file_name_prefix`` (tuple of str); ``target_with_prefix(segments)`` adds
    a session's own prefix.
    """

    target: pulumi.Output[StorageTarget]
    bucket: pulumi.Output[str]
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]
    vendor: int
    region: int
    file_name_prefix: tuple[str, ...]
    resolved: ResolvedStorage

    def __init__(
        self,
        type_name: str,
        name: str,
        resolved: ResolvedStorage,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        super().__init__(TYPE_PREFIX + type_name, name, None, opts)
        self.resolved = resolved
        self.vendor = resolved.vendor.code
        self.region = resolved.region_code
        self.file_name_prefix = resolved.file_name_prefix

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        """Options for a child: ``parent=self`` (style.md, Pulumi components) plus ``extra``."""
        return pulumi.ResourceOptions(parent=self, **extra)

    def _regional(
        self,
        opts: pulumi.ResourceOptions | None,
        make_provider: Callable[[str, pulumi.ResourceOptions], pulumi.ProviderResource],
    ) -> pulumi.ResourceOptions:
        """Child options pinned to the resolved region, for SDKs whose resources take no region
        argument (OSS, COS): a child provider ``<name>-provider`` made by ``make_provider(region,
        opts)``, unless the caller passed a provider of their own, which the children inherit."""
        if opts is not None and (opts.provider is not None or opts.providers):
            return self._child()
        provider = make_provider(self.resolved.region_id, self._child())
        return self._child(provider=provider)

    def _emit(
        self,
        *,
        bucket: pulumi.Input[str],
        access_key: pulumi.Input[str],
        secret_key: pulumi.Input[str],
        ready: Sequence[pulumi.Input[Any]] = (),
        sts_token: pulumi.Input[str] | None = None,
        sts_expiration: pulumi.Input[int] | None = None,
    ) -> None:
        """Build ``target`` and register outputs (last, as Pulumi's component docs require).

        ``ready`` holds outputs of the children that must exist before an upload can succeed (the
        policy attachment, the lifecycle rule): the target depends on them, so a session that
        consumes it is created only after the key can really write.
        """
        gate = pulumi.Output.all(*ready)
        self.bucket = pulumi.Output.all(pulumi.Output.from_input(bucket), gate).apply(
            lambda values: str(values[0])
        )
        self.access_key = pulumi.Output.secret(access_key)
        self.secret_key = pulumi.Output.secret(secret_key)
        sts_token_out = pulumi.Output.secret(sts_token) if sts_token is not None else None
        resolved = self.resolved

        def build(values: list[Any]) -> StorageTarget:
            name, access, secret, token, expiration = values
            return _target_dict(resolved, name, access, secret, token, expiration)

        self.target = pulumi.Output.all(
            self.bucket, self.access_key, self.secret_key, sts_token_out, sts_expiration
        ).apply(build)
        self.register_outputs({"target": self.target})

    def target_with_prefix(self, extra_prefix: Sequence[str]) -> pulumi.Output[StorageTarget]:
        """``target`` with a session's own ``fileNamePrefix`` appended after the storage prefix.

        The combined prefix is checked against rules.FILE_NAME_PREFIX now (segments and the
        128-character total, S3), so a too-long session prefix fails at construction, not at start.
        The result stays secret as a whole, like ``target``.
        """
        prefix = [*self.file_name_prefix, *extra_prefix]
        issues = _prefix_issues(prefix)
        if issues:
            raise StorageConfigError(issues)

        def extend(target: StorageTarget) -> StorageTarget:
            combined: StorageTarget = {**target}
            if prefix:
                combined["fileNamePrefix"] = list(prefix)
            return combined

        return self.target.apply(extend)
