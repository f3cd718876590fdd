"""The declarative stack: ``storage`` and ``sessions`` from stack config -> Pulumi resources.

``__main__.py`` calls :func:`main`, which reads ``<project>:storage`` and ``<project>:sessions``
(``<project>`` is the name in ``Pulumi.yaml``; a stack file may write them without the namespace)
and ``agora:appId``, validates them all at once with ``spec.parse_stack`` and, only when nothing
is wrong, calls :func:`deploy`.  A broken config registers nothing: every problem is listed and
the program stops before the first resource.  The config keys are checked as
``snapshot-resources validate`` checks them (``config_keys``): sessions under another project's
name, an unknown ``agora:`` setting or a stack without an App ID stop the program too, so that a
stack file passes both or neither.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from snapshot_resources import config_keys
from snapshot_resources.session import SnapshotSession, SnapshotSessionArgs
from snapshot_resources.spec import Problem, SpecError, StackSpec, StorageSpec, parse_stack
from snapshot_resources.storage import (
    SnapshotBucketComponent,
    bring_your_own,
    provision_storage,
)
from snapshot_resources.target import with_session_prefix


@dataclass(frozen=True)
class StackConfig:
    """The validated stack config and the mappings it was read from."""

    spec: StackSpec
    raw: Mapping[str, Any]
    app_id: str | None


@dataclass
class DeployedStack:
    storage: dict[str, SnapshotBucketComponent]
    sessions: dict[str, SnapshotSession]


def read_stack_config(config: pulumi.Config | None = None) -> StackConfig:
    """Read and validate the stack's ``storage`` and ``sessions``; raises ``SpecError`` with
    every problem.  Structured config arrives decrypted (``secure:`` leaves included), so the
    keys are wrapped as secrets again in :func:`deploy`.

    ``config`` (``pulumi.Config`` | None): the namespace holding ``storage`` and ``sessions``;
    None for the project's own (``<project>:storage``, ``<project>:sessions``), and then every
    key of the stack's config is checked too (``config_keys.key_problems``).  The stack's
    ``agora:appId`` is read too, as the default App ID of sessions without ``appId``; a session
    without either is a problem.  Must run inside a Pulumi program (it reads stack config).

    Returns a ``StackConfig``: ``spec`` (``StackSpec``), ``raw`` (the mappings as written) and
    ``app_id`` (str | None).  Raises ``SpecError`` listing every broken rule (``parse_stack``).
    """
    cfg = config if config is not None else pulumi.Config()
    raw = {
        "storage": cfg.get_object("storage") or {},
        "sessions": cfg.get_object("sessions") or {},
    }
    app_id = pulumi.Config(config_keys.NAMESPACE).get("appId") or None
    problems: list[Problem] = []
    if config is None:  # the project's own keys: then no key of the stack may be left unread
        problems += config_keys.key_problems(stack_config_keys(), pulumi.get_project())
    problems += config_keys.app_id_problems(raw["sessions"], app_id)
    # Paths of the stack's config keys are shown as the key, as `validate` shows them.
    problems = [Problem(p.path[1:], p.message, p.rule_id) for p in problems]
    try:
        checked = parse_stack(raw, default_app_id=app_id)
    except SpecError as err:
        raise SpecError([*problems, *err.problems]) from None
    if problems:
        raise SpecError(problems)
    return StackConfig(checked, raw, app_id)


def stack_config_keys() -> list[str]:
    """Every key of the running stack's config (``namespace:key``), as the engine handed them
    to the program."""
    from pulumi.runtime import config as runtime_config

    return sorted({*runtime_config.get_config_env(), *runtime_config.CONFIG.get()})


def deploy(stack: StackConfig) -> DeployedStack:
    """Create the storage components and the sessions; export per session its ``sid``, storage
    location and file-name pattern under the stack output ``sessions``.

    ``stack`` (``StackConfig``): what ``read_stack_config`` returned.  Storage entries with
    ``provision: true`` become ``provision_storage`` components, the others ``bring_your_own``;
    each session becomes a ``SnapshotSession`` named after its key, its storage target's prefix
    followed by its own ``fileNamePrefix``, its ``token`` a secret.  Must run inside a Pulumi
    program.

    Returns a ``DeployedStack`` (``storage``: components by name, ``sessions``:
    ``SnapshotSession`` by name).  Raises ``StorageConfigError`` or ``MissingExtraError`` from the
    storage components, ``ValueError`` for a session without App ID when ``agora:appId`` is unset.
    """
    components = {
        name: _storage_component(name, storage) for name, storage in stack.spec.storage.items()
    }
    written_sessions = stack.raw.get("sessions", {})
    sessions: dict[str, SnapshotSession] = {}
    for name, session in stack.spec.sessions.items():
        target = components[session.storage].target.apply(
            functools.partial(with_session_prefix, session_prefix=tuple(session.fileNamePrefix or ()))
        )
        token = pulumi.Output.secret(session.token) if session.token is not None else None
        args = SnapshotSessionArgs.from_spec(
            session,
            target,
            app_id=session.appId or stack.app_id,
            token=token,
            written=written_sessions.get(name),
        )
        sessions[name] = SnapshotSession(name, args)
    pulumi.export(
        "sessions",
        {
            name: {
                "sid": s.sid,
                "storageLocation": s.storage_location,
                "fileNamePattern": s.file_name_pattern,
            }
            for name, s in sessions.items()
        },
    )
    return DeployedStack(components, sessions)


def _storage_component(name: str, storage: StorageSpec) -> SnapshotBucketComponent:
    prefix = tuple(storage.fileNamePrefix or ())
    extension = (
        storage.extensionParams.model_dump(exclude_none=True) if storage.extensionParams else None
    )
    if storage.provision:
        return provision_storage(
            name,
            vendor=storage.vendorCode,
            region=storage.vendor_region if storage.vendor_region is not None else storage.regionCode,
            bucket=storage.bucket,
            file_name_prefix=prefix,
            retention_days=storage.retentionDays,
            extension_params=extension or None,
        )
    assert storage.accessKey is not None  # spec: required unless provision
    assert storage.secretKey is not None
    return bring_your_own(
        name,
        vendor=storage.vendorCode,
        region=storage.regionCode,
        bucket=storage.bucket,
        access_key=pulumi.Output.secret(storage.accessKey),
        secret_key=pulumi.Output.secret(storage.secretKey),
        file_name_prefix=prefix,
        extension_params=extension or None,
        sts_token=pulumi.Output.secret(storage.stsToken) if storage.stsToken else None,
        sts_expiration=storage.stsExpiration,
    )


def main() -> DeployedStack:
    """The program of ``Pulumi.yaml``: validate everything, then deploy; or list every problem."""
    try:
        stack = read_stack_config()
    except SpecError as err:
        count = len(err.problems)
        raise pulumi.RunError(
            f"the stack configuration has {count} problem{'s' if count != 1 else ''} "
            f"(nothing was deployed):\n{err}"
        ) from None
    return deploy(stack)
