"""``SnapshotSession``: one Agora Cloud Recording snapshot task as a Pulumi resource.

>>> session = SnapshotSession(
...     "lobby",
...     SnapshotSessionArgs(cname="lobby", uid="527841", storage=bucket.target,
...                         snapshot_config={"captureInterval": 5, "fileType": ["jpg"]}),
... )

The type token is ``pulumi-python:dynamic/agora:SnapshotSession``.  It and the resource name are
part of the URN: renaming either replaces the session unless an alias is given.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi import dynamic

from snapshot_resources import changes, rules
from snapshot_resources.provider import OUTPUT_KEYS, SnapshotSessionProvider
from snapshot_resources.spec import SessionSpec
from snapshot_resources.target import StorageTarget

# Outputs secret as a whole (rules.SECRET_WHOLE_INPUTS): the provider echoes its inputs, and the
# engine re-marks an output secret only where the input of the same path was (annotateSecrets;
# docs/engine.md, difference 1), so they are named here too. Nested secrets
# (rules.SECRET_NESTED_PATHS) are marked on the input leaf; the engine carries that mark into the
# output of the same path (tests/engine/test_engine_secrets.py proves it).
SECRET_OUTPUTS = list(rules.SECRET_WHOLE_INPUTS)


@dataclass
class SnapshotSessionArgs:
    """Inputs of a snapshot session, in Agora's vocabulary (see ``spec.SessionSpec``).

    ``recording_config`` and ``snapshot_config`` are dictionaries with Agora's camelCase keys.
    ``storage`` is a ``StorageTarget`` (Agora's ``storageConfig``), usually a storage component's
    ``target``.  ``app_id`` defaults to the stack config ``agora:appId``.
    """

    cname: pulumi.Input[str]
    uid: pulumi.Input[str]
    storage: pulumi.Input[StorageTarget] | pulumi.Input[Mapping[str, Any]]
    app_id: pulumi.Input[str] | None = None
    recording_config: pulumi.Input[Mapping[str, Any]] | None = None
    snapshot_config: pulumi.Input[Mapping[str, Any]] | None = None
    region: pulumi.Input[str] | None = None
    resource_expired_hour: pulumi.Input[int] | None = None
    token: pulumi.Input[str] | None = None

    @classmethod
    def from_spec(
        cls,
        spec: SessionSpec,
        storage: pulumi.Input[StorageTarget] | pulumi.Input[Mapping[str, Any]],
        *,
        app_id: pulumi.Input[str] | None = None,
        token: pulumi.Input[str] | None = None,
        written: Mapping[str, Any] | None = None,
    ) -> SnapshotSessionArgs:
        """Args from a validated ``SessionSpec`` (as ``stack.deploy`` builds them).

        ``written`` is the mapping the spec was parsed from: only the keys the user wrote become
        inputs (with the spec's normalised values), so a default derived by the spec, such as
        ``subscribeUidGroup``, never turns a later subscription-list edit into a replacement.
        """
        data = resource_inputs(spec, written)
        return cls(
            cname=data["cname"],
            uid=data["uid"],
            storage=storage,
            app_id=app_id if app_id is not None else data.get("appId"),
            recording_config=data.get("recordingConfig"),
            snapshot_config=data.get("snapshotConfig"),
            region=data.get("region"),
            resource_expired_hour=data.get("resourceExpiredHour"),
            token=token if token is not None else data.get("token"),
        )

    def props(self) -> dict[str, Any]:
        app_id = self.app_id if self.app_id is not None else pulumi.Config("agora").get("appId")
        if app_id is None:
            raise ValueError(
                "SnapshotSession needs an App ID: pass app_id or set the stack config agora:appId"
            )
        props: dict[str, Any] = {
            "appId": app_id,
            "cname": self.cname,
            "uid": self.uid,
            "storage": self.storage,
            "recordingConfig": (
                rules.canonical_blacklists(self.recording_config)
                if isinstance(self.recording_config, Mapping) else self.recording_config
            ),
            "snapshotConfig": self.snapshot_config,
            "region": self.region,
            "resourceExpiredHour": self.resource_expired_hour,
            "token": self.token,
        }
        mark_secrets(props)
        # Declared outputs must exist as keys, or the attributes are missing (reference 4A).
        props.update({key: None for key in OUTPUT_KEYS})
        return props


def mark_secrets(props: dict[str, Any]) -> None:
    """Wrap every secret of ``props`` (a SnapshotSession's inputs) as a Pulumi secret, in place:
    the inputs of ``rules.SECRET_WHOLE_INPUTS`` as a whole, the leaves of
    ``rules.SECRET_NESTED_PATHS`` one by one. A leaf can be marked alone only inside a plain
    mapping; when its object is itself an Output, the whole object becomes secret (an Output is
    secret or not as a whole)."""
    for key in rules.SECRET_WHOLE_INPUTS:
        if props.get(key) is not None:
            props[key] = pulumi.Output.secret(props[key])
    for path in rules.SECRET_NESTED_PATHS:
        top, rest = path[0], path[1:]
        value = props.get(top)
        if isinstance(value, Mapping):
            props[top] = _with_secret_leaf(value, rest)
        elif value is not None:
            props[top] = pulumi.Output.from_input(value).apply(
                functools.partial(_with_secret_leaf, path=rest)
            )


def _with_secret_leaf(value: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(value, Mapping) or path[0] not in value or value[path[0]] is None:
        return value
    copied = dict(value)
    if len(path) == 1:
        copied[path[0]] = pulumi.Output.secret(copied[path[0]])
    else:
        copied[path[0]] = _with_secret_leaf(copied[path[0]], path[1:])
    return copied


def resource_inputs(spec: SessionSpec, written: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A spec's SnapshotSession inputs, limited to the keys (and nested keys) in ``written``.

    Defaults the spec fills in stay out of the inputs; the provider applies them when it builds the
    request. Otherwise a default that is derived from other values (``subscribeUidGroup`` from the
    subscribed uids) would change with a list edit and turn an in-place update into a replacement.
    """
    full = spec.resource_inputs()
    if written is None:
        return full
    inputs: dict[str, Any] = {}
    written = changes.canonical_inputs(written)  # either blacklist spelling was written
    for key, value in full.items():
        if key not in written:
            continue
        nested = written[key]
        if isinstance(value, dict) and isinstance(nested, Mapping):
            value = {k: v for k, v in value.items() if k in nested}
        inputs[key] = value
    return inputs


class SnapshotSession(dynamic.Resource, module="agora", name="SnapshotSession"):
    """A running snapshot task: JPGs of each subscribed user's video every ``captureInterval`` s."""

    sid: pulumi.Output[str]
    """Agora's recording id; also the resource id. A replacement gets a new one."""
    resourceId: pulumi.Output[str]  # noqa: N815 - Agora's own name, as the property is called
    status: pulumi.Output[int]
    """Query status at the last create/refresh: 4 or 5 = running (S10)."""
    startedAt: pulumi.Output[str]  # noqa: N815
    fileNamePattern: pulumi.Output[str]  # noqa: N815
    """A regular expression matching the object keys of this session's snapshots."""
    storageLocation: pulumi.Output[dict[str, Any]]  # noqa: N815
    tokenExpiresAt: pulumi.Output[str | None]  # noqa: N815
    resourceExpiresAt: pulumi.Output[str]  # noqa: N815
    """When Agora stops accepting query and stop for this task (``resourceExpiredHour`` after
    start, S2); `pulumi up` replaces the session ahead of it."""

    def __init__(
        self,
        resource_name: str,
        args: SnapshotSessionArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        secret_opts = pulumi.ResourceOptions(
            additional_secret_outputs=SECRET_OUTPUTS,
            # Same channel and recorder uid: the old task must stop before the new one starts (S7 53).
            delete_before_replace=True,
        )
        super().__init__(
            SnapshotSessionProvider(),
            resource_name,
            args.props(),
            pulumi.ResourceOptions.merge(secret_opts, opts),
        )
