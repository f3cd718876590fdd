"""What every storage component shares: arguments, validation, errors and the target it emits.

A storage component provisions a bucket and a least-privilege upload key at one vendor and hands
the session a ``StorageTarget`` (Agora's ``storageConfig``, target.py).  The vendor and region
*codes* in that target are derived here from ``rules.VENDORS``, never typed by hand: the user names
the region the way the vendor does (``us-east-1``), or by Agora's label or code, and the vendor's
own region id is what the vendor SDK receives (docs/storage.md section 1: "keep these tables
as data and fail fast on an unmapped region rather than silently sending 0").

The arguments are checked by spec.py's one storage checker (the same walk as a stack file's
storage entry), and the target is built by ``target.build_target``, as for a stack file.

Buckets are never force-destroyed: ``pulumi destroy`` fails on a bucket that still holds
snapshots rather than delete a customer's files; the lifecycle rule empties it over time.

Exceptions::

    StorageConfigError(SpecError, ValueError)   every rejected input at once, as spec.Problem
    MissingExtraError(ImportError)   the vendor's Pulumi package (an optional extra) is absent
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Final, TypeVar, cast

import pulumi

from snapshot_resources import rules, spec
from snapshot_resources.spec import SpecError
from snapshot_resources.storage import policies
from snapshot_resources.target import (
    StorageTarget,
    build_target,
    joined_prefix,
    with_session_prefix,
)

T = TypeVar("T")

TYPE_PREFIX: Final = "agora-snapshots:storage:"
"""Type tokens are ``agora-snapshots:storage:<Class>`` (docs/pulumi-dynamic.md section 5)."""



# --------------------------------------------------------------------------------------------------
# Errors


class StorageConfigError(SpecError, ValueError):
    """Storage arguments that break a rule; ``problems`` lists every failure, not just the first.

    Messages quote bucket names, regions and prefixes but never a key: keys are not validated for
    content, so they cannot end up in the text (CONTRIBUTING.md, secrets).

    ``problems`` (iterable of ``spec.Problem``): each with the ``path`` of the field (its
    ``dotted_path``), a ``message`` and the ``rule_id`` (``rules.RULES_BY_ID``); kept as the
    list ``.problems``.  The message is "invalid storage: " and each problem as ``path: message
    (rule <id>; sources)``, separated by "; ".  A ``spec.SpecError`` and a ``ValueError``.
    """

    def __str__(self) -> str:
        return "invalid storage: " + "; ".join(str(p) for p in self.problems)


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


def vendor_of(module_name: str) -> rules.Vendor:
    """The vendor whose provisioning component lives in ``module_name`` (a module of this
    package, ``snapshot_resources.storage.aws``), from the registry ``rules.VENDORS``."""
    short = module_name.rsplit(".", 1)[-1]
    for vendor in rules.VENDORS.values():
        if vendor.provisioning is not None and vendor.provisioning.module == short:
            return vendor
    raise LookupError(f"no vendor in rules.VENDORS is provisioned by {module_name}")


@contextlib.contextmanager
def vendor_sdk(module_name: str) -> Iterator[rules.Vendor]:
    """Around the imports of a vendor's Pulumi package in its storage module ``module_name``:
    a missing package raises ``MissingExtraError`` naming the extra to install (registry
    ``rules.VENDORS``).  Yields the vendor."""
    vendor = vendor_of(module_name)
    provisioning = cast(rules.Provisioning, vendor.provisioning)
    try:
        yield vendor
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            title=vendor.title, module=provisioning.sdk, extra=provisioning.extra
        ) from exc


def sdk_module(module_name: str, submodule: str = "") -> ModuleType:
    """The vendor's Pulumi package (or its ``submodule``) for the storage module ``module_name``,
    imported now (``import_extra``): for the SDKs the type checker cannot see."""
    vendor = vendor_of(module_name)
    provisioning = cast(rules.Provisioning, vendor.provisioning)
    name = f"{provisioning.sdk}.{submodule}" if submodule else provisioning.sdk
    return import_extra(name, title=vendor.title, extra=provisioning.extra)


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

    Fields: ``bucket`` (``pulumi.Input[str]``): the bucket name, by the vendor's naming rules
    (rule bucket_name); an ``Output`` (e.g. a name built from another resource's) is checked
    when it resolves.  The other fields decide which resources, policies and Agora codes are
    made, so they are plain values, checked before anything is registered.
    ``region`` (str | int): as above (rule storage_region; S9).  ``file_name_prefix`` (sequence of
    str, default empty): path segments of letters and digits, at most 128 characters joined (rule
    file_name_prefix; S3); the upload key and the lifecycle rule are scoped to it.
    ``retention_days`` (int, default 30, at least 1): days before the lifecycle rule deletes a
    snapshot (rule retention_days).  ``extension_params`` (mapping of str to str, or None): ``sse``
    (vendor 1: ``"kms"`` or ``"aes256"``) and ``tag`` (vendors 1, 2) (rules extension_sse,
    extension_tag; S3).  Nothing is checked at construction: ``resolve`` (called by every
    component) raises ``StorageConfigError`` listing every invalid field.
    """

    bucket: pulumi.Input[str]
    region: str | int
    file_name_prefix: Sequence[str] = ()
    retention_days: int = cast(int, rules.RETENTION_DAYS.default)
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
    bucket: pulumi.Input[str]
    file_name_prefix: tuple[str, ...]
    extension_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def named(self, build: Callable[[str], T]) -> T | pulumi.Output[T]:
        """``build(bucket name)``: at once for a name given as text, else when the ``Output`` it
        was given as resolves, the name checked then (``StorageConfigError`` fails the
        deployment, as at construction; a name unknown in a preview is not checked).  For the
        children whose arguments spell the name (policies, descriptions)."""
        if isinstance(self.bucket, str):
            return build(self.bucket)
        name: pulumi.Output[str] = pulumi.Output.from_input(self.bucket)
        return name.apply(functools.partial(_build_named, self, build))

    @property
    def object_prefix(self) -> str:
        """The key prefix snapshots land under: ``a/b/`` for ``["a", "b"]``; ``""`` for none.

        Agora writes ``<fileNamePrefix joined by '/'>/<file name>`` (S3, S8), so this is what the
        upload policy and the lifecycle rule scope to.  With no prefix they cover the whole bucket.
        """
        return "".join(f"{segment}/" for segment in self.file_name_prefix)


def _build_named(resolved: ResolvedStorage, build: Callable[[str], T], name: str) -> T:
    return build(checked_bucket(resolved, name))


def checked_bucket(resolved: ResolvedStorage, name: object) -> str:
    """``name``, a bucket name that arrived as an ``Output``, checked for ``resolved``'s vendor
    as any other (rule bucket_name); raises ``StorageConfigError``."""
    entry: dict[str, object] = {"vendor": resolved.vendor.code, "region": resolved.region_code,
                                "bucket": name, "accessKey": _GIVEN, "secretKey": _GIVEN}
    if resolved.extension_params:
        entry["extensionParams"] = dict(resolved.extension_params)
    try:
        spec.checked_storage(entry, is_unknown=lambda value: value is _GIVEN)
    except SpecError as error:
        raise StorageConfigError(error.problems) from None
    return cast(str, name)


def policy_json(document: policies.PolicyDocument | pulumi.Output[policies.PolicyDocument]
                ) -> pulumi.Input[str]:
    """A policy document (``ResolvedStorage.named``'s) as the JSON text a policy resource takes."""
    if isinstance(document, pulumi.Output):
        return document.apply(policies.to_json)
    return policies.to_json(document)


def resolve_region(vendor: rules.Vendor, region: str | int) -> tuple[int, str] | None:
    """Agora's region code and the vendor's region id, or None if the vendor has no such region.

    For the ``any_region`` vendors (Azure, Google, S3-compatible) the code is 0 and the id is the
    location exactly as given (S9: "region: 0" for them).
    """
    code = vendor.region_code(region)
    if code is None:
        return None
    if vendor.any_region:
        return code, region.strip() if isinstance(region, str) else ""
    return code, vendor.regions[code][1]


_GIVEN: Final = object()
"""Stands for a value the components take but never read (keys, STS token and expiry, which may
be Pulumi outputs): present, and counted as valid."""


def validate_storage(
    vendor: int | str,
    *,
    region: str | int,
    bucket: pulumi.Input[str],
    file_name_prefix: Sequence[str] = (),
    extension_params: Mapping[str, str] | None = None,
    retention_days: int | None = None,
    sts_token: object = None,
    sts_expiration: object = None,
) -> ResolvedStorage:
    """Check every storage field against rules.py at once; raise ``StorageConfigError`` listing all.

    The fields are checked by spec.py's storage checker, as a stack file's storage entry is.
    ``retention_days`` is given exactly when a bucket is to be provisioned (bring-your-own targets
    have no lifecycle); then Azure and Google also need a real location, not Agora's code 0.
    ``sts_token`` and ``sts_expiration`` (any value, not read; None when not given): a
    bring-your-own target's temporary credentials, both or neither, for vendors 1, 2 and 3 only
    (rule sts_fields).  No prefix (``()``) means none.  ``bucket`` may be a ``pulumi.Output``
    (the name of a bucket another resource makes): it is checked when it resolves
    (``ResolvedStorage.named``, ``checked_bucket``).
    """
    given_bucket = _GIVEN if isinstance(bucket, pulumi.Output) else bucket
    entry: dict[str, object] = {"vendor": vendor, "region": region, "bucket": given_bucket}
    if isinstance(file_name_prefix, str) or file_name_prefix:
        # A bare string stays one, to be refused: Agora wants a list of segments (S3).
        entry["fileNamePrefix"] = (
            file_name_prefix if isinstance(file_name_prefix, str) else list(file_name_prefix)
        )
    if extension_params is not None:
        entry["extensionParams"] = extension_params
    if retention_days is not None:
        entry |= {"provision": True, "retentionDays": retention_days}
    else:  # the keys are the caller's, never read here
        entry |= {"accessKey": _GIVEN, "secretKey": _GIVEN}
    entry |= {key: _GIVEN for key, value in (("stsToken", sts_token),
                                             ("stsExpiration", sts_expiration)) if value is not None}
    try:
        checked = spec.checked_storage(entry, is_unknown=lambda value: value is _GIVEN,
                                       creates_bucket=retention_days is not None)
    except SpecError as error:
        raise StorageConfigError(error.problems) from None
    found = cast(rules.Vendor, rules.vendor_by_name(vendor))
    code, region_id = cast(tuple[int, str], resolve_region(found, region))
    extension = checked.get("extensionParams", {})
    return ResolvedStorage(
        vendor=found,
        region_code=code,
        region_id=region_id,
        bucket=bucket,
        file_name_prefix=tuple(cast(Iterable[str], checked.get("fileNamePrefix", ()))),
        extension_params=MappingProxyType(dict(cast(Mapping[str, str], extension))),
    )


# --------------------------------------------------------------------------------------------------
# The component base class and the target it emits


class SnapshotBucketComponent(pulumi.ComponentResource):
    """Base of every storage component: holds the resolved codes and emits ``target``.

    ``target`` is one ``Output[StorageTarget]``; because it carries the keys, Pulumi marks the whole
    value secret (secrecy propagates through ``Output.all``).  Passing the fields as a dict of
    separate inputs would not help: ``Output.from_input`` unwraps nested outputs into one, and the
    SDK can only mark top-level properties secret (pulumi/runtime/rpc.py, deserialize_property;
    measured in tests/test_storage_byo.py).  ``bucket``, ``vendor``, ``region`` and
    ``file_name_prefix`` are exposed separately, not secret, for stack outputs and display.

    Constructor (called by ``ProvisionedSnapshotBucket`` and ``ExistingSnapshotBucket``, not by
    users): ``type_name`` (str): the class
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
        """Options for a child: ``parent=self`` (docs/pulumi-dynamic.md section 5) plus ``extra``."""
        return pulumi.ResourceOptions(parent=self, **extra)

    def _emit(
        self,
        bucket: pulumi.Input[str],
        access_key: pulumi.Input[str],
        secret_key: pulumi.Input[str],
        *,
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
        resolved_storage = self.resolved
        self.bucket = pulumi.Output.all(pulumi.Output.from_input(bucket), gate).apply(
            lambda values: checked_bucket(resolved_storage, values[0])
        )
        self.access_key = pulumi.Output.secret(access_key)
        self.secret_key = pulumi.Output.secret(secret_key)
        sts_token_out = pulumi.Output.secret(sts_token) if sts_token is not None else None
        resolved = self.resolved

        def build(values: list[Any]) -> StorageTarget:
            name, access, secret, token, expiration = values
            return build_target({
                "vendor": resolved.vendor.code,
                "region": resolved.region_code,
                "bucket": name,
                "fileNamePrefix": list(resolved.file_name_prefix),
                "extensionParams": dict(resolved.extension_params),
                "accessKey": access,
                "secretKey": secret,
                "stsToken": token,
                "stsExpiration": None if expiration is None else int(expiration),
            })

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
        problems = spec.prefix_problems(joined_prefix(self.file_name_prefix, extra_prefix))
        if problems:
            raise StorageConfigError(problems)
        extra = tuple(extra_prefix)
        return self.target.apply(functools.partial(with_session_prefix, session_prefix=extra))


class ProvisionedSnapshotBucket(SnapshotBucketComponent):
    """Base of the components that create a bucket and its upload key at one vendor: the vendor
    is the one whose ``rules.Provisioning`` names the subclass's module (the registry), and the
    type token is ``agora-snapshots:storage:<class name>``.

    ``ProvisionedSnapshotBucket(name, args, opts=None)``: ``name`` (str): the component's Pulumi
    name, which its children's names start with; ``args`` (``SnapshotBucketArgs``): checked for
    the vendor at once (``StorageConfigError`` lists every invalid field; nothing registers);
    ``opts`` (``pulumi.ResourceOptions`` | None): the component's options.  A subclass creates
    its children in ``_provision(name)`` from ``resolved`` and ``retention_days``, and ends with
    ``_emit``.
    """

    retention_days: int

    def __init__(
        self, name: str, args: SnapshotBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        resolved = args.resolve(vendor_of(type(self).__module__).code)
        super().__init__(type(self).__name__, name, resolved, opts)
        self.retention_days = args.retention_days
        self._opts = opts
        self._provision(name)

    def _provision(self, name: str) -> None:
        raise NotImplementedError

    def _regional(
        self, make_provider: Callable[[str, pulumi.ResourceOptions], pulumi.ProviderResource]
    ) -> pulumi.ResourceOptions:
        """Child options pinned to the resolved region, for SDKs whose resources take no region
        argument (OSS, COS): a child provider ``<name>-provider`` made by ``make_provider(region,
        opts)``, unless the caller passed a provider of their own, which the children inherit."""
        opts = self._opts
        if opts is not None and (opts.provider is not None or opts.providers):
            return self._child()
        return self._child(provider=make_provider(self.resolved.region_id, self._child()))
