"""``AutomationStackOps`` around a CLI that does not answer: interrupted, never left running."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from snapshot_resources import engine
from snapshot_resources.reconcile import (
    AutomationStackOps,
    StackBusyError,
    StackOperationError,
    stack_ops,
)


def _fake_cli(tmp_path: Path, script: str) -> engine.PulumiCli:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "pulumi"
    cli.write_text("#!/bin/sh\n" + script)
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return engine.PulumiCli(bin_dir, "0.0.0", "test")


def test_a_cli_over_its_time_is_interrupted_and_reported(tmp_path: Path) -> None:
    # Like the Pulumi CLI: SIGINT makes it cancel and exit.
    cli = _fake_cli(tmp_path, "trap 'echo cancelled >&2; exit 255' INT\n"
                              "while true; do sleep 0.05; done\n")
    ops = AutomationStackOps(cli, tmp_path, "dev", project="p", env={}, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(StackOperationError, match=r"no answer in 0\.3 s: interrupted"):
        ops.forget(["urn:a"])
    assert time.monotonic() - started < 5


def test_a_cli_that_ignores_sigint_is_killed_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_ops, "_CANCEL_GRACE", 1.0)
    count = tmp_path / "sigints"
    # Pulumi takes a second SIGINT as "terminate now" (a create cut short after Agora's
    # start): a CLI still cancelling must never get one.
    cli = _fake_cli(tmp_path, f"trap 'echo x >> {count}' INT\nwhile true; do sleep 0.05; done\n")
    ops = AutomationStackOps(cli, tmp_path, "dev", project="p", env={}, timeout=0.2)
    with pytest.raises(StackOperationError, match=r"killed .*pulumi cancel"):
        ops.forget(["urn:a"])
    assert count.read_text().split() == ["x"], "exactly one SIGINT"
    assert ops.interrupt() == 0, "nothing left to interrupt"


def test_a_locked_stack_is_reported_as_busy(tmp_path: Path) -> None:
    cli = _fake_cli(tmp_path, "echo 'error: the stack is currently locked by 1 lock(s)' >&2\n"
                              "exit 255\n")
    ops = AutomationStackOps(cli, tmp_path, "dev", project="p", env={})
    with pytest.raises(StackBusyError):
        ops.forget(["urn:a"])


def test_an_export_that_meets_a_checkpoint_being_rewritten_is_read_again(tmp_path: Path) -> None:
    # The first read meets a checkpoint that another process is rewriting (measured with a
    # concurrent `pulumi state delete` on the file:// backend), the second reads it whole.
    marker = tmp_path / "read-once"
    cli = _fake_cli(tmp_path, f'if [ ! -e "{marker}" ]; then touch "{marker}"; '
                              'echo "error: failed to load checkpoint: EOF" >&2; exit 255; fi\n'
                              'echo \'{"deployment": {"resources": []}}\'\n')
    ops = AutomationStackOps(cli, tmp_path, "dev", project="p", env={})
    assert ops.export() == {"deployment": {"resources": []}}


def test_an_export_that_fails_otherwise_is_not_tried_again(tmp_path: Path) -> None:
    cli = _fake_cli(tmp_path, 'echo run >> "$0.calls"; echo "error: no stack named dev" >&2\n'
                              "exit 255\n")
    ops = AutomationStackOps(cli, tmp_path, "dev", project="p", env={})
    with pytest.raises(StackOperationError, match="no stack named dev"):
        ops.export()
    assert (tmp_path / "bin" / "pulumi.calls").read_text().count("run") == 1
