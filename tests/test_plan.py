"""``snapshot-resources plan`` (issue 6 item 4): what ``pulumi up`` does to each session and storage
entry when a stack file changes, decided exactly as the provider's diff decides.

The proof that plan reuses the provider's rule: for every case ``tests/test_changes.py`` and the
provider lifecycle tests exercise, the session's planned action equals ``changes.classify`` on the
inputs plan built and equals ``SnapshotSessionProvider().diff`` on the same inputs (old outputs =
old inputs + outputs); and those inputs are the ones ``stack.deploy`` registers (under mocks).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.dynamic import DiffResult
from support.sessions import CAPTURE_INTERVAL, SNAPSHOT_CONFIG

from snapshot_resources import changes, cli
from snapshot_resources.plan import (
    REPLACE_TEXT,
    Action,
    PlannedChange,
    plan,
    session_inputs,
    stack_config,
    summary,
)
from snapshot_resources.props import plain
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.stack import StackConfig, deploy
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

ACCESS_KEY = "AK-distinctive-plain-1"
SECRET_KEY = "SK-distinctive-plain-2"

BASE: dict[str, Any] = {
    "storage": {
        "main": {
            "vendor": "alibaba",
            "region": "cn-beijing",
            "bucket": "snaps",
            "accessKey": ACCESS_KEY,
            "secretKey": SECRET_KEY,
            "fileNamePrefix": ["a"],
        },
    },
    "sessions": {
        "lobby": {
            "appId": "app",
            "cname": "lobby",
            "uid": "527841",
            "storage": "main",
            "fileNamePrefix": ["b"],
            "resourceExpiredHour": 720,
            "recordingConfig": {
                "channelType": 1,
                "streamTypes": 2,
                "maxIdleTime": 300,
                "subscribeVideoUids": ["101", "102"],
            },
            "snapshotConfig": SNAPSHOT_CONFIG,
        },
    },
}

DELETE = object()
Edit = dict[str, Any]


def edited(edits: Edit, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted paths set (or removed with DELETE)."""
    doc = copy.deepcopy(BASE if base is None else base)
    for path, value in edits.items():
        *parents, leaf = path.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        if value is DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return doc


# Outputs the provider adds to the inputs at create (CONTRIBUTING.md): the engine hands diff the
# old outputs, not the old inputs.
# A session started an hour ago: far from its resource ID's expiry (which diff also weighs).
_STARTED = datetime.now(UTC) - timedelta(hours=1)
OUTPUTS: dict[str, Any] = {
    "sid": "sid-1",
    "resourceId": "rid-1",
    "status": 5,
    "startedAt": _STARTED.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    "fileNamePattern": "^a/b/sid-1_lobby.*$",
    "storageLocation": {"vendor": 2, "bucket": "snaps", "prefix": "a/b"},
    "tokenExpiresAt": None,
}

RL = "sessions.lobby.recordingConfig"
STS = {"storage.main.stsExpiration": 4102444800}

# (id, old edits, new edits, expected action); the same cases as tests/test_changes.py and the
# provider lifecycle tests, written as stack-file edits.
CASES: list[tuple[str, Edit, Edit, Action]] = [
    ("unchanged", {}, {}, Action.UNCHANGED),
    ("region-name-or-code", {}, {"storage.main.region": 3}, Action.UNCHANGED),
    ("uid-number-or-digits", {}, {"sessions.lobby.uid": 527841}, Action.UNCHANGED),
    ("video-list", {}, {f"{RL}.subscribeVideoUids": ["101"]}, Action.UPDATE),
    ("unsubscribe-list",
     {f"{RL}.subscribeVideoUids": DELETE, f"{RL}.unsubscribeVideoUids": ["7"]},
     {f"{RL}.subscribeVideoUids": DELETE, f"{RL}.unsubscribeVideoUids": ["7", "8"]},
     Action.UPDATE),
    ("audio-list", {}, {f"{RL}.subscribeAudioUids": ["#allstream#"]}, Action.UPDATE),
    ("secret-key", {}, {"storage.main.secretKey": "rotated-secret"}, Action.UPDATE),
    ("access-key", {}, {"storage.main.accessKey": "rotated-access"}, Action.UPDATE),
    ("sts-token", {"storage.main.stsToken": "sts-1", **STS},
     {"storage.main.stsToken": "sts-2", **STS}, Action.UPDATE),
    ("capture-interval", {}, {"sessions.lobby.snapshotConfig.captureInterval": 10},
     Action.REPLACE),
    ("max-idle-time", {}, {f"{RL}.maxIdleTime": 600}, Action.REPLACE),
    ("stream-types", {}, {f"{RL}.streamTypes": 1}, Action.REPLACE),
    ("uid-group", {}, {f"{RL}.subscribeUidGroup": 2}, Action.REPLACE),
    ("bucket", {}, {"storage.main.bucket": "other"}, Action.REPLACE),
    ("storage-prefix", {}, {"storage.main.fileNamePrefix": ["c"]}, Action.REPLACE),
    ("session-prefix", {}, {"sessions.lobby.fileNamePrefix": ["c"]}, Action.REPLACE),
    ("storage-region", {}, {"storage.main.region": "cn-shanghai"}, Action.REPLACE),
    ("cname", {}, {"sessions.lobby.cname": "hall"}, Action.REPLACE),
    ("uid", {}, {"sessions.lobby.uid": "527842"}, Action.REPLACE),
    ("app-id", {}, {"sessions.lobby.appId": "other-app"}, Action.REPLACE),
    ("resource-expired-hour", {}, {"sessions.lobby.resourceExpiredHour": 24}, Action.REPLACE),
    ("token", {"sessions.lobby.token": "token-1"}, {"sessions.lobby.token": "token-2"},
     Action.REPLACE),
    ("list-and-idle-time", {},
     {f"{RL}.subscribeVideoUids": ["101"], f"{RL}.maxIdleTime": 900}, Action.REPLACE),
]


def stacks(old_edits: Edit, new_edits: Edit) -> tuple[StackConfig, StackConfig]:
    return stack_config(edited(old_edits)), stack_config(edited(new_edits))


def entry(planned: list[PlannedChange], kind: str, name: str) -> PlannedChange:
    (found,) = [c for c in planned if c.kind == kind and c.name == name]
    return found


def from_classify(change: changes.Change) -> Action:
    return {
        changes.ChangeKind.NONE: Action.UNCHANGED,
        changes.ChangeKind.UPDATE: Action.UPDATE,
        changes.ChangeKind.REPLACE: Action.REPLACE,
    }[change.kind]


def from_diff(diff: DiffResult) -> Action:
    if diff.changes is False:
        return Action.UNCHANGED
    return Action.REPLACE if diff.replaces else Action.UPDATE


# --------------------------------------------------------------------------------------------------
# Sessions: the provider's rule


@pytest.mark.parametrize(("old_edits", "new_edits", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_session_action_is_the_providers_diff(
    old_edits: Edit, new_edits: Edit, expected: Action
) -> None:
    old, new = stacks(old_edits, new_edits)
    planned = entry(plan(old, new), "session", "lobby")

    old_inputs, new_inputs = session_inputs(old, "lobby"), session_inputs(new, "lobby")
    change = changes.classify(old_inputs, new_inputs)
    diff = SnapshotSessionProvider().diff("sid-1", {**old_inputs, **OUTPUTS}, new_inputs)

    assert planned.action is expected
    assert from_classify(change) is expected
    assert from_diff(diff) is expected
    assert planned.details == change.details
    if expected is Action.REPLACE:
        assert list(change.replaces) == diff.replaces


def test_stack_app_id_change_replaces_sessions_that_inherit_it() -> None:
    doc = edited({"sessions.lobby.appId": DELETE})
    old, new = stack_config(doc, "app-one"), stack_config(doc, "app-two")
    planned = entry(plan(old, new), "session", "lobby")
    diff = SnapshotSessionProvider().diff(
        "sid-1", {**session_inputs(old, "lobby"), **OUTPUTS}, session_inputs(new, "lobby"))
    assert (planned.action, planned.details) == (Action.REPLACE, ("appId",))
    assert diff.replaces == ["appId"]


def test_a_session_added_is_created() -> None:
    old = stack_config(edited({"sessions": {}}))
    planned = entry(plan(old, stack_config(BASE)), "session", "lobby")
    assert planned.action is Action.CREATE


def test_a_session_removed_is_deleted() -> None:
    new = stack_config(edited({"sessions": {}}))
    planned = entry(plan(stack_config(BASE), new), "session", "lobby")
    assert planned.action is Action.DELETE
    assert "snapshots stay" in planned.note


def test_renaming_a_session_warns_of_the_task_conflict() -> None:
    renamed = edited({"sessions": {"hall": BASE["sessions"]["lobby"]}})
    planned = plan(stack_config(BASE), stack_config(renamed))
    created = entry(planned, "session", "hall")
    assert (created.action, entry(planned, "session", "lobby").action) == (
        Action.CREATE, Action.DELETE)
    assert "task conflict" in created.note
    assert "'lobby'" in created.note


# --------------------------------------------------------------------------------------------------
# The inputs are deploy's


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> PulumiMocks:
    monkeypatch.setattr(pulumi, "export", lambda _name, _value: None)
    return PulumiMocks.install(project="agora-snapshots", stack="plan")


def registered_inputs(mocks: PulumiMocks, stack: StackConfig, name: str) -> dict[str, Any]:
    mocks.run(lambda: pulumi.Output.from_input(bool(deploy(stack))))
    inputs = mocks.named(name).inputs
    # The program passes unset optional inputs as None; the provider never sees those keys.
    registered: dict[str, Any] = plain(
        {k: inputs[k] for k in changes.INPUT_KEYS if inputs.get(k) is not None})
    return registered


DEPLOYED: dict[str, Edit] = {
    "base": {},
    "token": {"sessions.lobby.token": "token-1"},
    "sts-token": {"storage.main.stsToken": "sts-1", **STS},
    "unsubscribe-list": {f"{RL}.subscribeVideoUids": DELETE, f"{RL}.unsubscribeVideoUids": ["7"]},
    "defaults-left-out": {"sessions.lobby.resourceExpiredHour": DELETE,
                          "sessions.lobby.snapshotConfig": {"captureInterval": CAPTURE_INTERVAL}},
}


@pytest.mark.parametrize("edits", list(DEPLOYED.values()), ids=list(DEPLOYED))
def test_session_inputs_are_what_deploy_registers(mocks: PulumiMocks, edits: Edit) -> None:
    stack = stack_config(edited(edits))
    assert registered_inputs(mocks, stack, "lobby") == session_inputs(stack, "lobby")


def test_provisioned_session_inputs_are_what_deploy_registers(mocks: PulumiMocks) -> None:
    doc = edited({"storage.main": {"vendor": "aws", "region": "us-east-1", "bucket": "snaps-1",
                                   "provision": True, "fileNamePrefix": ["a"]}})
    stack = stack_config(doc, "app")
    registered = registered_inputs(mocks, stack, "lobby")
    planned = session_inputs(stack, "lobby")
    for keys in (registered["storage"], planned["storage"]):  # the mocks' key vs a stand-in
        del keys["accessKey"], keys["secretKey"]
    assert registered == planned


# --------------------------------------------------------------------------------------------------
# Storage entries


PROVISIONED: dict[str, Any] = edited({"storage.main": {
    "vendor": "aws", "region": "us-east-1", "bucket": "snaps-1", "provision": True,
    "retentionDays": 30, "fileNamePrefix": ["a"]}})


@pytest.mark.parametrize(
    ("edits", "action", "session"),
    [
        ({"storage.main.bucket": "snaps-2"}, Action.REPLACE, Action.REPLACE),
        ({"storage.main.region": "eu-west-1"}, Action.REPLACE, Action.REPLACE),
        ({"storage.main.region": "US_EAST_1"}, Action.UNCHANGED, Action.UNCHANGED),
        ({"storage.main.vendor": "alibaba", "storage.main.region": "cn-beijing"},
         Action.REPLACE, Action.REPLACE),
        ({"storage.main.retentionDays": 60}, Action.UPDATE, Action.UNCHANGED),
        # The target's extensionParams change: not a credential, so the provider replaces.
        ({"storage.main.extensionParams": {"sse": "kms"}}, Action.UPDATE, Action.REPLACE),
        ({"storage.main.fileNamePrefix": ["c"]}, Action.UPDATE, Action.REPLACE),
    ],
    ids=["bucket", "region", "region-label", "vendor", "retention", "sse", "prefix"],
)
def test_provisioned_storage(edits: Edit, action: Action, session: Action) -> None:
    planned = plan(stack_config(PROVISIONED), stack_config(edited(edits, PROVISIONED)))
    assert entry(planned, "storage", "main").action is action
    assert entry(planned, "session", "lobby").action is session


def test_a_new_provisioned_bucket_warns_that_the_old_one_is_deleted() -> None:
    new = edited({"storage.main.bucket": "snaps-2"}, PROVISIONED)
    storage = entry(plan(stack_config(PROVISIONED), stack_config(new)), "storage", "main")
    assert storage.details == ("bucket",)
    assert "creates 'snaps-2', then deletes 'snaps-1' with the snapshots" in storage.note


def test_a_provisioned_location_change_replaces_storage_but_not_its_sessions() -> None:
    # Google: Agora's region code is 0 wherever the bucket is (S9), so the session's inputs stay.
    gcs = edited({"storage.main": {"vendor": "gcp", "region": "EU", "bucket": "snaps-1",
                                   "provision": True}})
    planned = plan(stack_config(gcs), stack_config(edited({"storage.main.region": "US"}, gcs)))
    assert entry(planned, "storage", "main").action is Action.REPLACE
    session = entry(planned, "session", "lobby")
    assert session.action is Action.UNCHANGED
    assert "'main' is replaced" in session.note


def test_switching_to_bring_your_own_deletes_the_provisioned_bucket() -> None:
    planned = plan(stack_config(PROVISIONED), stack_config(edited({"storage.main": {
        "vendor": "aws", "region": "us-east-1", "bucket": "snaps-1", "fileNamePrefix": ["a"],
        "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}})))
    storage = entry(planned, "storage", "main")
    assert storage.action is Action.REPLACE
    assert "deleted with the old component" in storage.note
    assert "which will no longer exist" in storage.note
    # Same bucket, new keys: the provider rotates them in place.
    session = entry(planned, "session", "lobby")
    assert (session.action, session.details) == (
        Action.UPDATE, ("storage.accessKey", "storage.secretKey"))


def test_bring_your_own_key_rotation_is_an_update() -> None:
    planned = plan(stack_config(BASE),
                   stack_config(edited({"storage.main.secretKey": "rotated-secret"})))
    storage = entry(planned, "storage", "main")
    assert (storage.action, storage.details, storage.rotated) == (
        Action.UPDATE, ("secretKey",), ("secretKey",))
    assert entry(planned, "session", "lobby").rotated == ("storage.secretKey",)


def test_storage_added_and_removed() -> None:
    old = edited({"storage.spare": {"vendor": "aws", "region": "us-east-1", "bucket": "spare-1",
                                    "provision": True}})
    new = edited({"storage.extra": {"vendor": "aws", "region": "us-east-1", "bucket": "extra-1",
                                    "provision": True}})
    planned = plan(stack_config(old), stack_config(new))
    assert entry(planned, "storage", "extra").action is Action.CREATE
    deleted = entry(planned, "storage", "spare")
    assert deleted.action is Action.DELETE
    assert "deletes bucket 'spare-1'" in deleted.note


def test_summary_counts_every_action() -> None:
    new = edited({"sessions.lobby.snapshotConfig.captureInterval": 10,
                  "sessions.hall": {**BASE["sessions"]["lobby"], "cname": "hall"}})
    assert summary(plan(stack_config(BASE), stack_config(new))) == {
        "create": 1, "delete": 0, "update": 0, "replace": 1, "unchanged": 1}


# --------------------------------------------------------------------------------------------------
# Secrets in Pulumi stack files


def pulumi_file(doc: dict[str, Any], app_id: object = "0123456789abcdef0123456789abcdef") -> str:
    config: dict[str, Any] = {"agora:appId": app_id,
                              "agora:customerSecret": secure("CUSTOMER-CIPHERTEXT")}
    config.update({f"agora-snapshots:{k}": v for k, v in doc.items()})
    return yaml.safe_dump({"config": config}, sort_keys=False)


def secure(label: str) -> dict[str, str]:
    """A well-formed passphrase ciphertext, ``v1:<12-byte nonce>:<data>`` (validate refuses
    anything else as a placeholder), whose text holds ``label``'s letters and digits."""
    data = re.sub("[^A-Za-z0-9]", "", label)
    data += "A" * (-len(data) % 4)
    data += "A" * max(0, 24 - len(data))
    return {"secure": f"v1:AAAAAAAAAAAAAAAA:{data}"}


SECURE = edited({"sessions.lobby.appId": DELETE,
                 "storage.main.accessKey": secure("v1:ACCESS-CIPHERTEXT-1"),
                 "storage.main.secretKey": secure("v1:SECRET-CIPHERTEXT-1"),
                 "sessions.lobby.token": secure("v1:TOKEN-CIPHERTEXT-1")})


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_rotated_secure_key_is_an_update_and_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.yaml", pulumi_file(SECURE))
    new = write(tmp_path, "new.yaml", pulumi_file(
        edited({"storage.main.secretKey": secure("v1:SECRET-CIPHERTEXT-2")}, SECURE)))
    code, out, _err = run(capsys, "plan", old, new)
    assert code == 0
    assert out.splitlines()[:1] == [" ~ storage main: update in place: secretKey (rotated)"]
    assert " ~ session lobby: update in place: storage.secretKey (rotated)" in out.splitlines()
    code, json_out, _err = run(capsys, "plan", "--format", "json", old, new)
    for text in (out, json_out):
        assert "CIPHERTEXT" not in text
        assert "secure-" not in text  # nor the stand-in
        assert ACCESS_KEY not in text


def test_unchanged_secure_values_are_no_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.yaml", pulumi_file(SECURE, secure("v1:APP-CIPHERTEXT")))
    new = write(tmp_path, "new.yaml", pulumi_file(SECURE, secure("v1:APP-CIPHERTEXT")))
    code, out, _err = run(capsys, "plan", "--detailed-exitcode", old, new)
    assert (code, out) == (0, "Plan: 0 to create, 0 to update in place, 0 to replace, "
                              "0 to delete (2 unchanged).\n")


def test_a_rotated_secure_token_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.yaml", pulumi_file(SECURE))
    new = write(tmp_path, "new.yaml", pulumi_file(
        edited({"sessions.lobby.token": secure("v1:TOKEN-CIPHERTEXT-2")}, SECURE)))
    code, out, _err = run(capsys, "plan", old, new)
    assert code == 0
    assert f"+- session lobby: {REPLACE_TEXT}: token (rotated)" in out.splitlines()
    assert "CIPHERTEXT" not in out


def test_a_secret_plan_cannot_compare_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.yaml", pulumi_file(SECURE))
    new = write(tmp_path, "new.yaml", pulumi_file(
        edited({"storage.main.bucket": secure("v1:BUCKET-CIPHERTEXT")}, SECURE)))
    code, out, err = run(capsys, "plan", old, new)
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{new}:")
    assert "agora-snapshots:storage.main.bucket: is a Pulumi secret" in line
    assert "CIPHERTEXT" not in out + err
    assert "no plan was made" in err


# --------------------------------------------------------------------------------------------------
# The command


def example_pair(tmp_path: Path) -> tuple[str, str]:
    example = (Path(__file__).resolve().parent.parent / "Pulumi.example.yaml").read_text()
    changed = (example.replace("captureInterval: 10", "captureInterval: 15")
               .replace('["1001", "1002"]', '["1001", "1003"]')
               .replace("retentionDays: 30", "retentionDays: 60"))
    assert changed.count("1003") == 2
    return write(tmp_path, "Pulumi.old.yaml", example), write(tmp_path, "Pulumi.new.yaml", changed)


def test_table_output_on_the_example_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = example_pair(tmp_path)
    code, out, err = run(capsys, "plan", old, new)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        " ~ storage main: update in place: retentionDays",
        "      note: in place: the lifecycle rule",
        f"+- session lobby: {REPLACE_TEXT}: snapshotConfig.captureInterval",
        "      note: stops the task, then starts a new one (same channel and uid)",
        " ~ session stage: update in place: recordingConfig.subscribeAudioUids, "
        "recordingConfig.subscribeVideoUids",
        "      note: in place through Agora's update API (same sid)",
        "Plan: 0 to create, 2 to update in place, 1 to replace, 0 to delete (0 unchanged).",
    ]


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = example_pair(tmp_path)
    code, out, _err = run(capsys, "plan", "--format", "json", old, new)
    assert code == 0
    report = json.loads(out)
    assert report["summary"] == {"create": 0, "delete": 0, "update": 2, "replace": 1,
                                 "unchanged": 0}
    assert report["problems"] == []
    assert [(c["kind"], c["name"], c["action"]) for c in report["changes"]] == [
        ("storage", "main", "update"), ("session", "lobby", "replace"),
        ("session", "stage", "update")]
    assert report["changes"][1]["details"] == ["snapshotConfig.captureInterval"]


@pytest.mark.parametrize(("detailed", "same", "expected"),
                         [(False, False, 0), (False, True, 0), (True, False, 2), (True, True, 0)])
def test_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], detailed: bool, same: bool, expected: int
) -> None:
    old, new = example_pair(tmp_path)
    argv = ["plan", old, old if same else new] + (["--detailed-exitcode"] if detailed else [])
    assert run(capsys, *argv)[0] == expected


def test_an_invalid_file_is_reported_as_validate_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = example_pair(tmp_path)
    broken = write(tmp_path, "Pulumi.broken.yaml",
                   Path(new).read_text().replace("captureInterval: 15", "captureInterval: 1"))
    code, out, err = run(capsys, "plan", old, broken)
    _code, validated, _err = run(capsys, "validate", broken)
    assert code == 1
    assert out == validated
    assert "snapshotConfig.captureInterval" in out
    assert "1 problem in 1 file(s); no plan was made" in err
    code, out, _err = run(capsys, "plan", "--format", "json", old, broken)
    report = json.loads(out)
    assert (code, report["changes"], report["summary"]) == (1, [], None)
    assert report["problems"][0]["path"].endswith("snapshotConfig.captureInterval")


def test_a_new_stack_file_plans_everything_as_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pull-request workflow plans from "config: {}" when the base branch has no such stack.
    _old, new = example_pair(tmp_path)
    empty = write(tmp_path, "Pulumi.empty.yaml", "config: {}\n")
    code, out, _err = run(capsys, "plan", empty, new)
    assert code == 0
    assert out.splitlines()[-1] == (
        "Plan: 3 to create, 0 to update in place, 0 to replace, 0 to delete (0 unchanged).")
    assert " + storage main: create" in out.splitlines()
