"""A recording ``pulumi.runtime.Mocks`` for testing programs and components without an engine.

``set_mocks`` is process-global, so install fresh mocks in each test (an autouse fixture), never at
import time: two modules doing it at import broke each other (docs/storage.md section 3,
gotcha 1)::

    @pytest.fixture(autouse=True)
    def mocks() -> PulumiMocks:
        return PulumiMocks.install()

    def test_bucket(mocks: PulumiMocks) -> None:
        target = mocks.run(lambda: AwsSnapshotBucket("snaps", args).target)
        assert mocks.one("aws:s3/bucket:Bucket").inputs["bucket"] == "my-snapshots"

Recorded inputs are unwrapped: secrets appear as plain values, and ``Recorded.secret_paths`` lists
where the secrets were, so a test can assert that a key is secret without comparing wrappers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import pulumi
from pulumi.runtime import rpc

T = TypeVar("T")

# The SDK's test runner (pulumi.runtime.test) is untyped; give it the type it has.
_TEST: Callable[[Callable[[], Any]], Callable[[], None]] = pulumi.runtime.test

# Computed outputs the vendors' providers would return, by resource type; the mocks echo the inputs
# and add these so components can read them (docs/storage.md section 3).  Values are fake and
# distinctive, so a test can find them where they must not be (logs, non-secret outputs).
COMPUTED: dict[str, Mapping[str, Any]] = {
    "aws:s3/bucket:Bucket": {"arn": "arn:aws:s3:::mock"},
    "aws:iam/user:User": {"arn": "arn:aws:iam::123456789012:user/mock", "unique_id": "AIDAMOCK"},
    "aws:iam/accessKey:AccessKey": {"secret": "mock-aws-secret-SECRET"},
    "alicloud:ram/accessKey:AccessKey": {"secret": "mock-ali-secret-SECRET"},
    "gcp:serviceaccount/account:Account": {"email": "mock-sa@project.iam.gserviceaccount.com"},
    "gcp:storage/hmacKey:HmacKey": {
        "access_id": "GOOG1MOCKACCESSID",
        "secret": "mock-gcs-hmac-secret-SECRET",
    },
}

# azure-native resources output their name as ``name``, taken from a type-specific input (or
# autonamed from the logical name when that input is absent).
NAME_INPUTS: dict[str, str] = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:ManagementPolicy": "managementPolicyName",
}

# Answers to invokes, by token.
CALLS: dict[str, Mapping[str, Any]] = {
    "azure-native:storage:listStorageAccountKeys": {
        "keys": [
            {"keyName": "key1", "value": "mock-azure-key1-SECRET", "permissions": "FULL"},
            {"keyName": "key2", "value": "mock-azure-key2-SECRET", "permissions": "FULL"},
        ]
    },
}


@dataclass(frozen=True)
class Recorded:
    """One registered resource: type token, logical name, unwrapped inputs, and secret paths."""

    typ: str
    name: str
    inputs: dict[str, Any]
    secret_paths: frozenset[str]
    custom: bool
    provider: str


@dataclass(frozen=True)
class Resolved(Generic[T]):
    """An output's value after the program ran, and whether Pulumi kept it secret and known."""

    value: T
    secret: bool
    known: bool


@dataclass(frozen=True)
class Call:
    token: str
    args: dict[str, Any]


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    if rpc.is_rpc_secret(value):
        secrets.add(path)
        return _unwrap(rpc.unwrap_rpc_secret(value), path, secrets)
    if isinstance(value, dict):
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


@dataclass
class PulumiMocks(pulumi.runtime.Mocks):
    """Records every resource and invoke; answers with the inputs plus ``computed`` outputs.

    ``computed`` (mapping of type token to outputs): added to a resource's echoed inputs, by
    type (default: the vendors' computed outputs, fake and distinctive values).
    ``calls_answers`` (mapping of invoke token to result): what an invoke returns (default: the
    invokes the storage components make).  ``resources`` (list of ``Recorded``) and ``calls``
    (list of ``Call``): what the program registered and invoked, in order; empty at first.
    Install fresh mocks per test with ``PulumiMocks.install()``, run a program with ``run``,
    and assert with ``one``, ``of_type``, ``named``, ``types`` and ``urns``.
    """

    computed: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(COMPUTED))
    calls_answers: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(CALLS))
    resources: list[Recorded] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def install(
        cls, *, project: str = "agora-snapshots", stack: str = "test", preview: bool = False
    ) -> PulumiMocks:
        """Fresh mocks, installed process-wide; call once per test."""
        mocks = cls()
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview)
        return mocks

    # -- pulumi.runtime.Mocks

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        secrets: set[str] = set()
        inputs = {k: v for k, v in args.inputs.items() if k != "__provider"}
        plain = _unwrap(inputs, "", secrets)
        self.resources.append(
            Recorded(
                args.typ,
                args.name,
                plain,
                frozenset(secrets),
                bool(args.custom),
                str(args.provider or ""),
            )
        )
        outputs = {**dict(args.inputs), **self.computed.get(args.typ, {})}
        if args.typ in NAME_INPUTS:
            outputs["name"] = args.inputs.get(NAME_INPUTS[args.typ], args.name)
        return (f"{args.name}-id" if args.custom else None), outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(Call(args.token, dict(args.args)))
        # (outputs, check failures); the monitor iterates the failures, so never None.
        return dict(self.calls_answers.get(args.token, {})), []

    # -- running a program

    def run(self, program: Callable[[], pulumi.Output[T]]) -> Resolved[T]:
        """Run ``program`` as a Pulumi program and resolve what it returns.

        Exceptions raised by the program, or inside an ``apply``, propagate to the caller.
        """
        box: list[Resolved[T]] = []

        async def settle(output: pulumi.Output[T]) -> None:
            value = cast(T, await output.future(with_unknowns=True))
            box.append(Resolved(value, await output.is_secret(), await output.is_known()))

        def body() -> pulumi.Output[None]:
            output = pulumi.Output.from_input(program())
            return pulumi.Output.from_input(asyncio.ensure_future(settle(output)))

        _TEST(body)()  # the SDK's own runner: waits for every registration
        return box[0]

    # -- assertions

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Recorded:
        """The single resource of ``typ``; fails if there are none or several."""
        found = self.of_type(typ)
        if len(found) != 1:
            raise AssertionError(f"expected one {typ}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> Recorded:
        for recorded in self.resources:
            if recorded.name == name:
                return recorded
        raise AssertionError(f"no resource named {name!r}; have {[r.name for r in self.resources]}")

    def types(self) -> list[str]:
        return [r.typ for r in self.resources]

    def urns(self) -> list[str]:
        """URNs as the mock monitor built them; the type chain shows each resource's parents."""
        monitor = pulumi.runtime.settings.SETTINGS.monitor
        registered = monitor.get_registered_resources() if monitor is not None else {}
        return sorted(registered)
