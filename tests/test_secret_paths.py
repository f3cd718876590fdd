"""Every declared secret (rules.SECRET_PATHS) is secret on every path: the Python API, the stack
program, check-failure texts, `validate` and `plan`. The cases are built from the declaration, so a
secret path added later is covered by these tests, or fails the first one until it is.
(The engine itself: tests/engine/test_engine_secrets.py searches the whole backend.)"""

from __future__ import annotations

import base64
import copy
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from support.sessions import APP_ID, SESSION_TYPE, SNAPSHOT_CONFIG

from snapshot_resources import cli, rules
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.session import SnapshotSession, SnapshotSessionArgs
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

REPO = Path(__file__).resolve().parent.parent
# A distinctive value per declared path, valid where it stands.
VALUES: dict[tuple[str, ...], str] = {
    ("storage", "accessKey"): "AKIDsecretpathQ7",
    ("storage", "secretKey"): "SKsecretpathW3x9",
    ("storage", "stsToken"): "STSsecretpathZ1k",
    ("token",): "006TOKENsecretpathR4",
    ("recordingConfig", "secret"): "DECRYPTsecretpathM2",
    ("recordingConfig", "salt"): base64.b64encode(b"SALTsecretpath-0123456789abcdefgh"[:32]).decode(),
}
# A value at the same path that breaks a rule there, so a problem is reported about it.
BROKEN: dict[tuple[str, ...], Any] = {
    ("storage", "accessKey"): "",
    ("storage", "secretKey"): "",
    ("storage", "stsToken"): "",
    ("token",): "007" + "x" * 20,  # unreadable AccessToken2
    ("recordingConfig", "secret"): "",
    ("recordingConfig", "salt"): "c2FsdA==" + "SALTbrokenV9",  # not 32 bytes
}


def test_every_declared_secret_path_has_a_case() -> None:
    assert set(VALUES) == set(rules.SECRET_PATHS) == set(BROKEN)


def _inputs(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """SnapshotSession inputs that hold ``value`` at ``path`` and are valid otherwise."""
    inputs: dict[str, Any] = {
        "appId": APP_ID, "cname": "lobby", "uid": "527841",
        "recordingConfig": {"channelType": 1, "decryptionMode": 7,
                            "secret": VALUES[("recordingConfig", "secret")],
                            "salt": VALUES[("recordingConfig", "salt")]},
        "snapshotConfig": SNAPSHOT_CONFIG,
        "storage": {"vendor": 1, "region": 0, "bucket": "snaps",
                    "accessKey": VALUES[("storage", "accessKey")],
                    "secretKey": VALUES[("storage", "secretKey")],
                    "stsToken": VALUES[("storage", "stsToken")], "stsExpiration": 1_900_000_000},
        "token": VALUES[("token",)],
    }
    node = inputs
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return inputs


def _covered(path: tuple[str, ...], secret_paths: frozenset[str]) -> bool:
    """``path`` is secret itself or inside a secret (PulumiMocks reports dotted paths, and lifts
    a nested secret to its container: docs/engine.md, difference 11)."""
    dotted = ".".join(path)
    return any(dotted == p or dotted.startswith(p + ".") for p in secret_paths)


@pytest.mark.parametrize("path", rules.SECRET_PATHS, ids=".".join)
def test_the_python_api_registers_each_secret_as_a_secret(path: tuple[str, ...]) -> None:
    mocks = PulumiMocks.install()
    inputs = _inputs(path, VALUES[path])
    args = SnapshotSessionArgs(
        cname=inputs["cname"], uid=inputs["uid"], storage=inputs["storage"], app_id=APP_ID,
        recording_config=inputs["recordingConfig"], snapshot_config=inputs["snapshotConfig"],
        token=inputs["token"])
    mocks.run(lambda: SnapshotSession("s", args).sid)
    recorded = mocks.one(SESSION_TYPE)
    assert _covered(path, recorded.secret_paths), recorded.secret_paths
    # Nothing else is secret: appId, cname, uid and snapshotConfig stay reviewable.
    assert recorded.secret_paths <= {".".join(p[:1]) for p in rules.SECRET_PATHS}


@pytest.mark.parametrize("path", rules.SECRET_PATHS, ids=".".join)
def test_the_stack_program_registers_each_secret_as_a_secret(path: tuple[str, ...]) -> None:
    mocks = PulumiMocks.install(project="agora-snapshots", stack="dev")
    inputs = _inputs(path, VALUES[path])
    storage = {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "snaps",
                        **{k: inputs["storage"][k] for k in ("accessKey", "secretKey", "stsToken",
                                                             "stsExpiration")}}}
    session = {k: inputs[k] for k in ("cname", "uid", "recordingConfig", "snapshotConfig",
                                      "token")}
    config = {"agora:appId": APP_ID, "agora-snapshots:storage": json.dumps(storage),
              "agora-snapshots:sessions": json.dumps({"s": {**session, "storage": "main"}})}
    # The engine marks a config key secret when any leaf of it was set with --secret.
    pulumi.runtime.set_all_config(config, secret_keys=["agora-snapshots:storage",
                                                       "agora-snapshots:sessions"])
    try:
        mocks.run(lambda: pulumi.Output.from_input(bool(runpy.run_path(str(REPO / "__main__.py")))))
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])  # config is process-wide: leave none
    recorded = mocks.one(SESSION_TYPE)
    assert _covered(path, recorded.secret_paths), recorded.secret_paths


@pytest.mark.parametrize("path", rules.SECRET_PATHS, ids=".".join)
def test_check_failures_never_show_a_secret(path: tuple[str, ...]) -> None:
    broken = BROKEN[path]
    result = SnapshotSessionProvider().check({}, _inputs(path, broken))
    assert result.failures, "the broken value must be reported"
    for failure in result.failures:
        text = f"{failure.property} {failure.reason}"
        for value in (*VALUES.values(), broken):
            assert not value or value not in text, (value, text)
        # The engine prints the named property's value: a secret-bearing one is never named.
        assert failure.property not in rules.SECRET_BEARING_INPUTS


def _stack_file(tmp: Path, name: str, path: tuple[str, ...], value: Any) -> Path:
    inputs = _inputs(path, value)
    storage = {"vendor": "aws", "region": "us-east-1", "bucket": "snaps",
               **{k: inputs["storage"][k] for k in ("accessKey", "secretKey", "stsToken",
                                                    "stsExpiration")}}
    session = {k: inputs[k] for k in ("cname", "uid", "recordingConfig", "snapshotConfig",
                                      "token")}
    document = {"config": {"agora:appId": APP_ID,
                           "agora-snapshots:storage": {"main": storage},
                           "agora-snapshots:sessions": {"s": {**session, "storage": "main"}}}}
    out = tmp / name
    out.write_text(yaml.safe_dump(copy.deepcopy(document)))
    return out


@pytest.mark.parametrize("path", rules.SECRET_PATHS, ids=".".join)
def test_validate_reports_a_broken_secret_without_showing_it(
    path: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = BROKEN[path]
    code = cli.main(["validate", str(_stack_file(tmp_path, "Pulumi.dev.yaml", path, broken))])
    out, err = capsys.readouterr()
    assert code == 1
    assert path[-1] in out + err  # the problem is named...
    for value in (*VALUES.values(), broken):
        assert not value or value not in out + err  # ...its value never shown


@pytest.mark.parametrize("path", rules.SECRET_PATHS, ids=".".join)
def test_plan_of_a_changed_secret_never_shows_either_value(
    path: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _stack_file(tmp_path, "old.yaml", path, VALUES[path])
    new_value = VALUES[path][::-1] if path[-1] != "salt" else base64.b64encode(b"N" * 32).decode()
    new = _stack_file(tmp_path, "new.yaml", path, new_value)
    cli.main(["plan", str(old), str(new)])
    out, err = capsys.readouterr()
    assert "session s: " in out
    assert f"{'.'.join(path[-2:]) if path[0] == 'storage' else '.'.join(path)} (rotated)" in out
    for value in (VALUES[path], new_value):
        assert value not in out + err
