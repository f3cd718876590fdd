"""A state written by an earlier commit of this repository, under the current code: it refreshes,
previews with nothing to replace, and destroys (stopping the Agora tasks it names).

The model is pulumi-random's provider-upgrade test: a stack deployed by a released version is kept
as a recorded state, and each change of the provider must read it. Here each state is a
``fixtures/upgrade-<commit>/`` (how it was written, and how to write another: its README). What
it holds that the current code must honour:

* ``__provider``: the dynamic provider, pickled by reference
  (``snapshot_resources.provider.SnapshotSessionProvider``). On refresh (Read) and destroy
  (Delete) the SDK's provider process unpickles the string recorded in the *state*, not the
  program's (pulumi/pulumi, ``sdk/python/lib/pulumi/dynamic/__main__.py``: ``Read`` and
  ``Delete`` call ``get_provider(props)`` on the recorded properties, and ``Read`` writes the
  same string back); by reference, that is the class of the code installed now;
* each session's ``resourceId`` and ``sid``, which Agora must still know: the emulator takes the
  tasks over with those ids (``EmulatorAdmin.restore_task``);
* the provider's settings as recorded by the last ``up`` (refresh and destroy configure the
  default provider from them, docs/decisions.md).

Two things are rewritten before the import, because they are facts of the machine that wrote
the fixture rather than of the state's format: the emulator's address (a free loopback port
then, another now) and the age of the sessions (their ``startedAt``/``resourceExpiresAt`` are
moved by the time since the fixture was written, as if it had been written just now; otherwise
the 720-hour resource IDs would be due for renewal, and replaced, some weeks after the fixture
was made, which ``test_engine_expiry.py`` tests on its own).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from pulumi import automation as auto
from support.engine_stack import (
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    REPO,
    SESSION_TYPE,
    TIME_SCALE,
    running_tasks,
)

from snapshot_resources import engine
from snapshot_resources.agora import wire
from snapshot_resources.spec import parse_session
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

# Each directory holds a state written by an earlier commit (its README says which, and how).
FIXTURES: Final = sorted((Path(__file__).parent / "fixtures").glob("upgrade-*"))
STACK: Final = "upgrade"
# The passphrase the fixtures' secrets are encrypted with: a test value, written in their READMEs.
PASSPHRASE: Final = "agora-snapshots-upgrade-fixture"
TIME_KEYS: Final = ("startedAt", "resourceExpiresAt", "tokenExpiresAt")
PROVIDER_KEY: Final = "__provider"


def _shift(value: str, by: timedelta) -> str:
    """``value`` (ISO 8601 as the provider writes it, with or without milliseconds) moved ``by``,
    in the same form."""
    with_ms = "." in value
    moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + by
    text = moved.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moved.microsecond // 1000:03d}Z" if with_ms else f"{text}Z"


def _rebase(node: Any, by: timedelta) -> Any:
    if isinstance(node, dict):
        return {k: _shift(v, by) if k in TIME_KEYS and isinstance(v, str) else _rebase(v, by)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(item, by) for item in node]
    return node


def _fixture_state(fixture: Path, old_endpoint: str, new_endpoint: str) -> dict[str, Any]:
    text = (fixture / "state.json").read_text().replace(old_endpoint, new_endpoint)
    state: dict[str, Any] = json.loads(text)
    written = datetime.fromisoformat(state["deployment"]["manifest"]["time"][:26] + "+00:00")
    rebased: dict[str, Any] = _rebase(state, datetime.now(UTC) - written)
    return rebased


def _sessions(deployment: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["urn"].rsplit("::", 1)[1]: r for r in (deployment or {}).get("resources") or []
            if r["type"] == SESSION_TYPE}


def _plain(value: Any) -> Any:
    """A secret as ``export_stack`` (``--show-secrets``) writes it, unwrapped."""
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


def _restore_tasks(agora: EmulatorHandle, stack: auto.Stack) -> dict[str, str]:
    """Make the emulator run each session's task under the ids in the state (the task Agora
    kept running since the earlier ``up``), started with the body the provider sends for those
    inputs. Returns session name -> sid."""
    sids: dict[str, str] = {}
    for name, resource in _sessions(stack.export_stack().deployment).items():
        outputs = {k: _plain(v) for k, v in resource["outputs"].items()}
        session = {k: outputs[k] for k in ("cname", "uid", "recordingConfig", "snapshotConfig",
                                           "resourceExpiredHour") if k in outputs}
        body = wire.start_body(parse_session(session), outputs["storage"])
        agora.admin.restore_task(resource_id=outputs["resourceId"], sid=outputs["sid"],
                                 cname=body["cname"], uid=body["uid"],
                                 client_request=body["clientRequest"], app_id=outputs["appId"])
        sids[name] = outputs["sid"]
    return sids


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.name)
def test_an_earlier_commits_state_refreshes_previews_unchanged_and_destroys(
    fixture: Path, pulumi_cli: engine.PulumiCli, tmp_path: Path
) -> None:
    stack_file = yaml.safe_load((fixture / f"Pulumi.{STACK}.yaml").read_text())
    old_endpoint = stack_file["config"]["agora:endpoint"]
    with run_emulator(time_scale=TIME_SCALE, storage_dir=tmp_path / "emulator",
                      customer_id=CUSTOMER_ID, customer_secret=CUSTOMER_SECRET) as agora, \
            OfflinePulumi(pulumi_cli, root=tmp_path / "pulumi",
                          env={"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}) as offline:
        assert agora.app_id == stack_file["config"]["agora:appId"]
        project = offline.project(REPO)
        stack = offline.stack(project, STACK)
        # The stack file as it was (its encryption salt and ciphertexts), pointed at this emulator.
        (project / f"Pulumi.{STACK}.yaml").write_text(
            (fixture / f"Pulumi.{STACK}.yaml").read_text().replace(old_endpoint, agora.url))
        state = _fixture_state(fixture, old_endpoint, agora.url)
        recorded = {name: r["outputs"] for name, r in _sessions(state["deployment"]).items()}
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        offline.run("stack", "import", "--file", str(state_file), "--stack", STACK, cwd=project)
        sids = _restore_tasks(agora, stack)
        assert sids == {name: outs["sid"] for name, outs in recorded.items()}
        assert len(running_tasks(agora)) == 2

        # The pickled provider names the class by reference: the current code is what runs.
        pickled = {outs[PROVIDER_KEY] for outs in recorded.values()}
        assert len(pickled) == 1
        assert b"snapshot_resources.provider" in base64.b64decode(next(iter(pickled)))
        assert b"SnapshotSessionProvider" in base64.b64decode(next(iter(pickled)))

        before = len(agora.admin.request_log())
        refreshed = stack.refresh(color="never")
        queries = [r for r in agora.admin.request_log()[before:] if r["operation"] == "query"]
        print(f"refresh: {refreshed.summary.resource_changes}; Agora queries: {len(queries)}")
        assert refreshed.summary.result == "succeeded"
        assert len(queries) >= 2  # each session was read from Agora, by its recorded ids
        after = _sessions(offline.export(stack)["deployment"])
        assert {name: r["outputs"]["sid"] for name, r in after.items()} == sids
        # Read wrote back the recorded provider string, untouched.
        assert {r["outputs"][PROVIDER_KEY] for r in after.values()} == pickled

        steps: list[tuple[str, str, list[str]]] = []

        def on_event(event: auto.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is not None and pre.metadata.type == SESSION_TYPE:
                steps.append((str(pre.metadata.op.value), pre.metadata.urn.rsplit("::", 1)[1],
                              list(pre.metadata.diffs or [])))

        preview = stack.preview(color="never", diff=True, on_event=on_event)
        print(f"preview: {preview.change_summary}; session steps: {steps}")
        assert sorted(name for _, name, _ in steps) == ["lobby", "stage"]
        changed = [(op, name, diffs) for op, name, diffs in steps if op != "same"]
        assert changed == [], changed  # no replacement, and no update either
        assert not re.search(r"\breplace\b", preview.stdout)

        before = len(agora.admin.request_log())
        destroyed = stack.destroy(color="never")
        stops = [r for r in agora.admin.request_log()[before:] if r["operation"] == "stop"]
        print(f"destroy: {destroyed.summary.resource_changes}; Agora stops: {len(stops)}")
        assert destroyed.summary.result == "succeeded"
        assert len(stops) == 2
        assert running_tasks(agora) == []
        for sid in sids.values():
            assert agora.admin.task(sid)["state"] != "running"
        assert _sessions(offline.export(stack)["deployment"]) == {}
        assert offline.live_providers() == []
