"""Issue 24, the reconciler for every program: declared sessions come from the program (by URN),
names may hold ``::``, stacks may be named fully qualified, and an exit is confirmed with Agora
before a session is forgotten.  (Under the real engine: tests/engine/test_engine_reconcile_python.py.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.fake_stack import FakeStack, exit_event
from support.sessions import APP_ID

from snapshot_resources import cli
from snapshot_resources.engine import PulumiCli
from snapshot_resources.reconcile import Controller, ControllerSettings
from snapshot_resources.reconcile.confirm import TaskState, Verdict
from snapshot_resources.reconcile.declared import ProgramSessions
from snapshot_resources.reconcile.inventory import (
    SESSION_TYPE,
    SessionRecord,
    declared_sessions,
    program_problem,
    session_urn,
    sessions_from_export,
    stack_short_name,
    urn_name,
)
from snapshot_resources.reconcile.stack_ops import StackOperationError

PARENTED = f"urn:pulumi:dev::agora-snapshots::acme:venue:Hall${SESSION_TYPE}::hall"


# -- URNs and stack names -------------------------------------------------------------------------


@pytest.mark.parametrize(("name"), ["a::b", "lobby", "x::y::z", "::", "a:b", "ends::"])
def test_a_urn_s_name_is_everything_after_its_third_delimiter(name: str) -> None:
    # Reproducer: a session named `a::b` was called `b` (URNs were split on the last `::`).
    assert urn_name(session_urn("dev", "agora-snapshots", name)) == name


def test_a_parented_urn_s_name() -> None:
    assert urn_name(PARENTED) == "hall"


@pytest.mark.parametrize("text", ["lobby", "urn:pulumi:dev::p::t", "urn:other:a::b::c::d", ""])
def test_what_is_no_urn_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Pulumi URN"):
        urn_name(text)


def test_sessions_named_with_the_delimiter_are_read_from_the_state() -> None:
    document = {"deployment": {"resources": [
        {"urn": session_urn("dev", "p", "a::b"), "type": SESSION_TYPE,
         "outputs": {"sid": "s1", "cname": "c", "uid": "1", "resourceId": "rid"}},
        {"urn": session_urn("dev", "p", "b"), "type": SESSION_TYPE,
         "outputs": {"sid": "s2", "cname": "c2", "uid": "2"}},
    ]}}
    records = sessions_from_export(document)
    assert set(records) == {"a::b", "b"}
    assert records["a::b"].resource_id == "rid"


@pytest.mark.parametrize(("stack", "short"), [("dev", "dev"), ("acme/dev", "dev"),
                                              ("organization/agora-snapshots/dev", "dev")])
def test_fully_qualified_stack_names(stack: str, short: str, tmp_path: Path) -> None:
    # Reproducer: `--stack organization/<project>/dev` looked for
    # Pulumi.organization/agora-snapshots/dev.yaml.
    assert stack_short_name(stack) == short
    assert session_urn(stack, "agora-snapshots", "x").startswith(f"urn:pulumi:{short}::")
    (tmp_path / "Pulumi.yaml").write_text("name: agora-snapshots\nruntime: python\n")
    (tmp_path / f"Pulumi.{short}.yaml").write_text(
        "config:\n  agora-snapshots:sessions:\n    lobby: {}\n")
    assert declared_sessions(tmp_path, stack) == {"lobby"}


@pytest.mark.parametrize(("pulumi_yaml", "stack", "main", "problem"), [
    ("runtime: python", "dev", True, None),
    ("runtime: {name: python, options: {toolchain: pip}}", "org/agora-snapshots/dev", True, None),
    ("runtime: nodejs", "dev", True, "runtime 'nodejs'"),
    ("runtime: yaml", "dev", True, "runtime 'yaml'"),
    ("runtime: python\nmain: src/", "dev", True, "main 'src/'"),
    ("runtime: python", "dev", False, "no __main__.py"),
    ("runtime: python", "org/other-project/dev", True, "names project 'other-project'"),
    ("runtime: python", "a/b/c/d", True, "expected STACK"),
    ("runtime: python", "org//dev", True, "expected STACK"),
])
def test_programs_the_reconciler_cannot_run_are_named_in_one_line(
    tmp_path: Path, pulumi_yaml: str, stack: str, main: bool, problem: str | None,
) -> None:
    (tmp_path / "Pulumi.yaml").write_text(f"name: agora-snapshots\n{pulumi_yaml}\n")
    if main:
        (tmp_path / "__main__.py").write_text("")
    found = program_problem(tmp_path, "agora-snapshots", stack)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert "\n" not in found


def test_the_command_refuses_to_start_on_such_a_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: agora-snapshots\nruntime: nodejs\n")
    code = cli.main(["reconcile", "--stack", "dev", "--cwd", str(tmp_path), "--once"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "runtime 'nodejs'" in err


# -- declared sessions from the program -------------------------------------------------------------


class Previews:
    def __init__(self, urns: Sequence[str]) -> None:
        self.urns = list(urns)
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        return list(self.urns)


def test_the_program_s_sessions_are_previewed_once_until_something_changes(
    tmp_path: Path,
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    main = tmp_path / "__main__.py"
    main.write_text("# v1\n")
    previews = Previews([session_urn("dev", "p", "lobby"), PARENTED])
    declared = ProgramSessions(previews, tmp_path, "dev")
    assert declared() == {"lobby": session_urn("dev", "p", "lobby"), "hall": PARENTED}
    assert declared() == declared()
    assert previews.calls == 1
    main.write_text("# v2, longer\n")  # the program changed
    previews.urns = [PARENTED]
    assert declared() == {"hall": PARENTED}
    assert previews.calls == 2
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")  # its stack file appears
    declared()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "venue.py").write_text("")  # a module it may import
    declared()
    assert previews.calls == 4
    declared.invalidate()  # a sweep, or a failed round
    declared()
    assert previews.calls == 5


def test_two_sessions_of_one_name_under_different_parents_fail_the_read(tmp_path: Path) -> None:
    declared = ProgramSessions(Previews([session_urn("dev", "p", "hall"), PARENTED]),
                               tmp_path, "dev")
    with pytest.raises(StackOperationError, match="same name under different parents"):
        declared()


class Stack(FakeStack):
    """The model stack, with a preview of a program that declares ``program``."""

    def __init__(self, sessions: dict[str, str], program: dict[str, str]) -> None:
        super().__init__(sessions)
        self.program = program

    def preview(self) -> list[str]:
        return list(self.program.values())


def test_the_controller_targets_the_program_s_urns(tmp_path: Path) -> None:
    # Reproducer: with sessions declared in Python, `stack dev: 0 sessions`, nothing restarted.
    program = {"lobby": session_urn("dev", "agora-snapshots", "lobby"), "hall": PARENTED}
    stack = Stack({}, program)
    stack.export()  # nothing deployed yet: the model stack holds only itself
    stack.sids["lobby"] = "s1"  # deployed once, hall was never created
    declared = ProgramSessions(stack.preview, tmp_path, "dev")
    ctl = Controller(stack, declared=declared, settings=ControllerSettings(batch_window=0))
    ctl.step()
    ups = [c for c in stack.calls if c[0] == "up"]
    assert ups == [("up", ("hall",))]
    assert ctl.status()["declared"] == ["hall", "lobby"]


# -- an exit is confirmed with Agora before a session is forgotten ---------------------------------


class Agora:
    def __init__(self, state: TaskState) -> None:
        self.state = state
        self.asked: list[str] = []

    def states(self, records: Sequence[SessionRecord]) -> dict[str, Verdict]:
        self.asked += [r.sid for r in records]
        return {r.sid: Verdict(self.state, "test") for r in records}


def _controller(stack: FakeStack, agora: Agora) -> Controller:
    return Controller(stack, declared=lambda: frozenset(stack.sids), tasks=agora,
                      settings=ControllerSettings(batch_window=0, retry_delay=0.01))


@pytest.mark.parametrize("leave_code", [None, 4])  # exited, idle
def test_a_signed_exit_of_a_task_that_still_runs_forgets_nothing(leave_code: int | None) -> None:
    # Reproducer: a validly signed code-11 exit for a running task made it `state delete` the
    # session, and its `up` then failed with 53.
    stack = FakeStack({"lobby": "s1"})
    agora = Agora(TaskState.RUNNING)
    ctl = _controller(stack, agora)
    ctl.step()
    stack.calls.clear()
    for notice in exit_event("s1", "ch-lobby", leave_code=leave_code):
        ctl.notify(notice)
    ctl.step()
    assert agora.asked == ["s1"]
    assert stack.ops("forget", "up", "refresh") == []
    assert stack.sids == {"lobby": "s1"}
    assert ctl.status()["held"] == []
    assert ctl.status()["pending"] == []
    assert ctl.metrics.value("snapshot_reconcile_exit_checks_total", outcome="running") == 1


def test_a_confirmed_exit_is_forgotten_and_restarted() -> None:
    stack = FakeStack({"lobby": "s1"})
    agora = Agora(TaskState.GONE)
    ctl = _controller(stack, agora)
    ctl.step()
    stack.calls.clear()
    for notice in exit_event("s1", "ch-lobby"):
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("forget", "up") == [("forget", ("lobby",)), ("up", ("lobby",))]
    assert ctl.metrics.value("snapshot_reconcile_exit_checks_total", outcome="gone") == 1


def test_an_exit_agora_cannot_confirm_is_refreshed_instead() -> None:
    stack = FakeStack({"lobby": "s1"})
    agora = Agora(TaskState.UNKNOWN)
    ctl = _controller(stack, agora)
    ctl.step()
    stack.calls.clear()
    for notice in exit_event("s1", "ch-lobby"):
        ctl.notify(notice)
    stack.gone.add("s1")  # it did end: the refresh drops it
    ctl.step()
    assert stack.ops("forget") == []
    deadline = time.monotonic() + 5
    while not stack.ops("refresh") and time.monotonic() < deadline:
        ctl.step()
    assert stack.ops("refresh", "up") == [("refresh", ("lobby",)), ("up", ("lobby",))]
    assert stack.sids["lobby"] != "s1"


def _fake_cli(tmp_path: Path, config: dict[str, object], code: int = 0) -> PulumiCli:
    """A ``pulumi`` that answers ``config --show-secrets --json`` with ``config``."""
    import json
    import stat

    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "pulumi"
    script.write_text(f"#!/bin/sh\necho '{json.dumps(config)}'\necho 'stack gone' >&2\n"
                      f"exit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return PulumiCli(tmp_path / "bin", "3.274.1", "test")


def _record(**changes: object) -> SessionRecord:
    values: dict[str, object] = {"name": "lobby", "urn": session_urn("dev", "p", "lobby"),
                                 "sid": "s1", "cname": "lobby", "uid": "900001",
                                 "app_id": APP_ID,
                                 "resource_id": "rid"}
    values.update(changes)
    return SessionRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("config", "code", "why"), [
    ({}, 0, "credentials are not configured"),
    ({"agora:customerId": {"value": "id"}}, 0, "agora:customerSecret"),
    ({}, 1, "pulumi config failed: stack gone"),
])
def test_without_a_usable_config_an_exit_is_unknown_not_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, object], code: int,
    why: str,
) -> None:
    from snapshot_resources.reconcile.confirm import AgoraTaskQuery

    monkeypatch.delenv("AGORA_CUSTOMER_ID", raising=False)
    monkeypatch.delenv("AGORA_CUSTOMER_SECRET", raising=False)
    query = AgoraTaskQuery(_fake_cli(tmp_path, config, code), tmp_path, "dev", env={})
    [verdict] = query.states([_record()]).values()
    assert verdict.state is TaskState.UNKNOWN
    assert why in verdict.why


def test_agora_s_answers_make_the_verdicts(tmp_path: Path) -> None:
    from snapshot_resources.reconcile.confirm import AgoraTaskQuery
    from snapshot_resources.testing.emulator import RawAgora, run_emulator, snapshot_request

    with run_emulator(time_scale=50) as agora:
        raw = RawAgora(agora)
        resource_id, sid = raw.begin("lobby", "900001", snapshot_request(bucket="b"))
        raw.close()
        config = {"agora:customerId": {"value": agora.customer_id},
                  "agora:customerSecret": {"value": agora.customer_secret, "secret": True},
                  "agora:endpoint": {"value": agora.url}, "agora:retryDelayScale": {"value": "0.01"}}
        query = AgoraTaskQuery(_fake_cli(tmp_path, config), tmp_path, "dev", env={})
        running = _record(sid=sid, resource_id=resource_id, app_id=agora.app_id)
        unknown_task = _record(sid="0" * 32, resource_id=resource_id, app_id=agora.app_id)
        no_id = _record(sid="s3", resource_id=None)
        verdicts = query.states([running, unknown_task, no_id])
    assert verdicts[sid].state is TaskState.RUNNING
    assert verdicts["0" * 32].state is TaskState.GONE
    assert verdicts["s3"].state is TaskState.UNKNOWN
    assert agora.customer_secret not in " ".join(v.why for v in verdicts.values())
