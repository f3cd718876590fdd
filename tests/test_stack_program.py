"""``__main__.py`` run under ``pulumi.runtime.set_mocks`` with the example stack's config
(issue 6 acceptance): the storage component, its children and both sessions are registered with
the expected inputs; a broken config lists every problem and registers nothing."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from support.sessions import SESSION_TYPE

from snapshot_resources.testing.pulumi_mocks import PulumiMocks

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def mocks() -> Iterator[PulumiMocks]:
    yield PulumiMocks.install(project="agora-snapshots", stack="example")
    # Pulumi's config is process-wide: leave none behind for the tests that run next.
    pulumi.runtime.set_all_config({}, secret_keys=[])


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: captured.__setitem__(name, value))
    return captured


def example_config() -> dict[str, Any]:
    """The example's config with its keys as the engine hands them over: namespaced (the example
    writes storage and sessions without a namespace, which means this project's)."""
    config: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.example.yaml").read_text())["config"]
    return {key if ":" in key else f"agora-snapshots:{key}": value for key, value in config.items()}


def set_config(config: dict[str, Any]) -> None:
    """As the engine hands config to a program: objects as JSON text, ``secure:`` values
    decrypted (here: replaced by distinctive plain values) and listed as secret keys."""
    values: dict[str, str] = {}
    secret_keys = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = f"decrypted-{key}"
            secret_keys.append(key)
        elif isinstance(value, dict | list):
            values[key] = json.dumps(value)
        else:
            values[key] = str(value)
    pulumi.runtime.set_all_config(values, secret_keys=secret_keys)


def run_program(mocks: PulumiMocks) -> None:
    mocks.run(lambda: pulumi.Output.from_input(bool(runpy.run_path(str(REPO / "__main__.py")))))


def test_example_stack_registers_storage_and_both_sessions(
    mocks: PulumiMocks, exports: dict[str, Any]
) -> None:
    set_config(example_config())
    run_program(mocks)

    types = mocks.types()
    assert types.count("agora-snapshots:storage:AwsSnapshotBucket") == 1
    for child in ("aws:s3/bucket:Bucket", "aws:iam/user:User", "aws:iam/userPolicy:UserPolicy",
                  "aws:iam/accessKey:AccessKey",
                  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        assert child in types
    assert types.count(SESSION_TYPE) == 2
    lobby = mocks.named("lobby")
    assert lobby.inputs["appId"] == "0123456789abcdef0123456789abcdef"
    assert lobby.inputs["cname"] == "lobby"
    assert lobby.inputs["uid"] == "900001"
    assert lobby.inputs["recordingConfig"]["subscribeVideoUids"] == ["#allstream#"]
    assert lobby.inputs["snapshotConfig"] == {"captureInterval": 10}
    storage = lobby.inputs["storage"]
    assert (storage["vendor"], storage["region"], storage["bucket"]) == (1, 0, "acme-agora-snapshots")
    assert storage["fileNamePrefix"] == ["snapshots", "lobby"]  # storage prefix + session prefix
    assert "storage" in lobby.secret_paths  # the upload keys travel as secrets
    stage = mocks.named("stage")
    assert stage.inputs["recordingConfig"]["subscribeAudioUids"] == ["1001", "1002"]
    # Only written keys become inputs: a derived subscribeUidGroup must not force replacements.
    assert "subscribeUidGroup" not in stage.inputs["recordingConfig"]
    assert set(exports["sessions"]) == {"lobby", "stage"}
    assert set(exports["sessions"]["lobby"]) == {"sid", "storageLocation", "fileNamePattern"}


def test_bring_your_own_storage_keeps_keys_secret(mocks: PulumiMocks) -> None:
    config = example_config()
    config["agora-snapshots:storage"] = {
        "byo": {"vendor": "alibaba", "region": "cn-beijing", "bucket": "snaps",
                "accessKey": "AK-distinctive-1", "secretKey": "SK-distinctive-2"},
    }
    for session in config["agora-snapshots:sessions"].values():
        session["storage"] = "byo"
    set_config(config)
    run_program(mocks)

    lobby = mocks.named("lobby")
    assert (lobby.inputs["storage"]["vendor"], lobby.inputs["storage"]["region"]) == (2, 3)
    assert lobby.inputs["storage"]["secretKey"] == "SK-distinctive-2"
    assert "storage" in lobby.secret_paths


def test_broken_config_lists_every_problem_and_registers_nothing(mocks: PulumiMocks) -> None:
    config = example_config()
    sessions = config["agora-snapshots:sessions"]
    sessions["lobby"]["snapshotConfig"]["captureInterval"] = 4000
    sessions["stage"]["storage"] = "missing"
    sessions["stage"]["recordingConfig"]["streamTypes"] = 0
    set_config(config)

    with pytest.raises(pulumi.RunError) as raised:
        run_program(mocks)

    text = str(raised.value)
    assert "3 problems" in text
    assert "sessions.lobby.snapshotConfig.captureInterval" in text
    assert "sessions.stage.storage" in text
    assert "sessions.stage.recordingConfig.streamTypes" in text
    assert mocks.resources == []


def test_the_session_type_token_is_the_one_urns_were_made_with() -> None:
    # URNs hold the type token: changing it would make every deployed session "new" (a replace).
    from snapshot_resources import session

    assert session.SESSION_TYPE == SESSION_TYPE
