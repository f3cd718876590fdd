"""A Pulumi-shaped Python API (issue 25): Python names in resource options, snake_case output
attributes over camelCase state, ``pulumi.Input`` bucket names for the storage components, and
nested arguments typed as Pulumi's packages type them.  The engine test
``tests/engine/test_engine_api.py`` runs the resource options under the real engine."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks as runtime_mocks
from support.sessions import APP_ID

from snapshot_resources import rules
from snapshot_resources.provider import OUTPUT_KEYS
from snapshot_resources.session import (
    PYTHON_NAMES,
    RecordingConfigArgsDict,
    SnapshotConfigArgsDict,
    SnapshotSession,
    SnapshotSessionArgs,
    StorageTargetArgsDict,
)
from snapshot_resources.storage import (
    SnapshotBucketArgs,
    bring_your_own,
    provision_storage,
)
from snapshot_resources.target import StorageTarget
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

STORAGE: StorageTarget = {"vendor": 2, "region": 3, "bucket": "snaps", "accessKey": "ak",
                          "secretKey": "sk"}


@pytest.fixture
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every RegisterResource request the mock monitor receives (the options as sent)."""
    seen: list[Any] = []
    original = runtime_mocks.MockMonitor.RegisterResource

    def record(self: Any, request: Any) -> Any:
        seen.append(request)
        return original(self, request)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(runtime_mocks.MockMonitor, "RegisterResource", record)
    return seen


def session(opts: pulumi.ResourceOptions | None = None) -> SnapshotSession:
    args = SnapshotSessionArgs(cname="lobby", uid="900001", storage=STORAGE, app_id=APP_ID,
                               recording_config={"subscribeVideoUids": ["1001"]},
                               snapshot_config={"captureInterval": 10})
    return SnapshotSession("lobby", args, opts)


def _session_request(requests: list[Any]) -> Any:
    found = [r for r in requests if r.type.endswith(":SnapshotSession")]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize(("option", "given", "sent"), [
    # The reproducer: ignore_changes with the argument's own name was ignored, and the session
    # was replaced when its interval changed.
    ("ignore_changes", ["snapshot_config"], ["snapshotConfig"]),
    ("ignore_changes", ["snapshot_config.capture_interval", "recording_config.max_idle_time"],
     ["snapshotConfig.captureInterval", "recordingConfig.maxIdleTime"]),
    ("ignore_changes", ["snapshotConfig", "recording_config.subscribeVideoUids[0]"],
     ["snapshotConfig", "recordingConfig.subscribeVideoUids[0]"]),
    ("replace_on_changes", ["recording_config.subscribe_video_uids", "app_id"],
     ["recordingConfig.subscribeVideoUids", "appId"]),
    ("replace_on_changes", ["resource_expired_hour"], ["resourceExpiredHour"]),
    ("additional_secret_outputs", ["storage_location", "file_name_pattern"],
     ["storageLocation", "fileNamePattern", "storage", "token"]),
])
def test_resource_options_take_the_python_names(
    mocks: PulumiMocks, requests: list[Any], option: str, given: list[str], sent: list[str]
) -> None:
    opts = pulumi.ResourceOptions(**{option: given})  # type: ignore[arg-type]
    mocks.run(lambda: session(opts).sid)
    request = _session_request(requests)
    field = {"ignore_changes": "ignoreChanges", "replace_on_changes": "replaceOnChanges",
             "additional_secret_outputs": "additionalSecretOutputs"}[option]
    assert sorted(getattr(request, field)) == sorted(sent)


def test_translation_covers_every_property_and_leaves_unknown_names_alone() -> None:
    resource = SnapshotSession.__new__(SnapshotSession)
    for name in (*rules.INPUT_KEYS, *OUTPUT_KEYS):
        assert resource.translate_input_property(PYTHON_NAMES[name]) == name
        assert resource.translate_input_property(name) == name  # camelCase passes through
        assert resource.translate_output_property(name) == PYTHON_NAMES[name]
    assert resource.translate_input_property("no_such_thing") == "no_such_thing"
    # Nested keys are Agora's: kept as they are in outputs (the state's own keys).
    assert resource.translate_output_property("channelType") == "channelType"


def test_outputs_are_snake_case_attributes_over_camel_case_state(
    mocks: PulumiMocks, requests: list[Any]
) -> None:
    created: list[SnapshotSession] = []

    def program() -> pulumi.Output[Any]:
        created.append(session())
        made = created[0]
        return pulumi.Output.all(made.app_id, made.snapshot_config, made.recording_config)

    resolved = mocks.run(program)
    assert resolved.value == [APP_ID, {"captureInterval": 10}, {"subscribeVideoUids": ["1001"]}]
    made = created[0]
    for name in OUTPUT_KEYS:
        assert isinstance(getattr(made, PYTHON_NAMES[name]), pulumi.Output), name
    # The state keeps Agora's keys: a stack deployed before sees no diff.
    inputs = mocks.one("pulumi-python:dynamic/agora:SnapshotSession").inputs
    assert {"appId", "recordingConfig", "snapshotConfig"} <= set(inputs)
    assert not {"app_id", "recording_config", "snapshot_config"} & set(inputs)
    sent = set(_session_request(requests).object.fields)
    assert {"appId", "recordingConfig", "snapshotConfig"} <= sent
    assert not any("_" in key for key in sent - {"__provider"})


def test_the_camel_case_attributes_still_work_with_a_deprecation_warning(
    mocks: PulumiMocks
) -> None:
    created: list[SnapshotSession] = []

    def program() -> pulumi.Output[str]:
        created.append(session())
        return created[0].sid

    mocks.run(program)
    with pytest.warns(DeprecationWarning, match=r"SnapshotSession.storageLocation is deprecated: "
                                                r"use .storage_location"):
        alias = created[0].storageLocation  # type: ignore[attr-defined]
    assert alias is created[0].storage_location
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert created[0].resource_id is not None  # the new name warns about nothing


# --------------------------------------------------------------------------------------------------
# Nested arguments typed as Pulumi's packages type them


@pytest.mark.parametrize(("typed", "shape"), [
    (RecordingConfigArgsDict, rules.RECORDING), (SnapshotConfigArgsDict, rules.SNAPSHOT),
    (StorageTargetArgsDict, rules.STORAGE)])
def test_the_args_dicts_name_the_tables_keys(typed: Any, shape: rules.Shape) -> None:
    hints: dict[str, object] = typed.__annotations__
    accepted = {f.name for f in shape.fields if f.input} | {
        f.sent_as for f in shape.fields if f.sent_as}
    assert set(hints) == accepted
    for key, hint in hints.items():
        text = getattr(hint, "__forward_arg__", hint)
        assert str(text).startswith("pulumi.Input["), (key, hint)  # each may be an Output


# --------------------------------------------------------------------------------------------------
# Storage components take a bucket name from another resource


def _provision_aws(bucket: pulumi.Input[str]) -> Callable[[], Any]:
    return lambda: provision_storage("snaps", vendor="aws", region="eu-west-1", bucket=bucket,
                                     file_name_prefix=["snapshots"], retention_days=7).target


def _byo(bucket: pulumi.Input[str]) -> Callable[[], Any]:
    return lambda: bring_your_own("snaps", vendor="s3-compatible", region=0, bucket=bucket,
                                  access_key="ak", secret_key="sk",
                                  extension_params={"endpoint": "minio.local:9000"}).target


def _provision(vendor: str, region: str) -> Callable[[pulumi.Input[str]], Callable[[], Any]]:
    def make(bucket: pulumi.Input[str]) -> Callable[[], Any]:
        return lambda: provision_storage("snaps", vendor=vendor, region=region, bucket=bucket,
                                         file_name_prefix=["snapshots"], retention_days=7).target
    return make


COMPONENTS = {
    "aws": _provision_aws, "bring your own": _byo,
    "alibaba": _provision("alibaba", "cn-beijing"), "gcp": _provision("gcp", "EU"),
    "azure": _provision("azure", "westeurope"),
}


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_a_bucket_name_from_another_resource_registers_the_same_resources(
    component: str
) -> None:
    # The reproducer: `bucket: is <pulumi.output.Output object ...>`.
    make = COMPONENTS[component]
    plain = PulumiMocks.install()
    expected = plain.run(make("acme-snaps-7"))
    given = PulumiMocks.install()
    got = given.run(make(pulumi.Output.from_input("acme-snaps").apply(lambda p: f"{p}-7")))
    assert (got.value, got.secret) == (expected.value, expected.secret)
    # The same resources with the same inputs (registered in another order: some wait for the
    # name to resolve).
    assert sorted(((r.typ, r.name, r.inputs) for r in given.resources), key=repr) == sorted(
        ((r.typ, r.name, r.inputs) for r in plain.resources), key=repr)


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_a_bad_bucket_name_from_an_output_fails_when_it_resolves(component: str) -> None:
    mocks = PulumiMocks.install()
    # A StorageConfigError (a ValueError), which the SDK may wrap in the ValueError of the
    # resource whose input failed to resolve.
    with pytest.raises(ValueError, match=r"bucket: is 'Not_A_Bucket'.*rule bucket_name"):
        mocks.run(COMPONENTS[component](pulumi.Output.from_input("Not_A_Bucket")))


def test_the_component_args_take_an_input_bucket() -> None:
    args = SnapshotBucketArgs(bucket=pulumi.Output.from_input("x"), region="eu-west-1")
    assert isinstance(args.bucket, pulumi.Output)
