"""`snapshot-resources reconcile`: arguments and the errors it reports before touching a stack.
(The command at work, `--once` included, runs under the real engine:
tests/engine/test_engine_reconcile.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot_resources import cli


def test_a_project_directory_without_pulumi_yaml_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["reconcile", "--stack", "dev", "--cwd", str(tmp_path), "--once"])
    assert code == 2
    assert "Pulumi.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("listen", ["8787", "host:", "127.0.0.1:99999", ":80"])
def test_listen_must_be_host_and_port(listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["reconcile", "--stack", "dev", "--listen", listen])
    assert exited.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--interval", "0"),
                                             ("--rotate-before", "-1"),
                                             ("--token-grace", "-1"),
                                             ("--stop-timeout", "x"),
                                             ("--log-format", "xml"),
                                             ("--idle-restart", "sometimes")])
def test_bad_settings_are_usage_errors(flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["reconcile", "--stack", "dev", flag, value])
    assert exited.value.code == 2


def test_the_stack_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["reconcile"])
    assert "--stack" in capsys.readouterr().err


def test_the_defaults_are_the_documented_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["reconcile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for documented in ("(default: 127.0.0.1:8787;", "--interval SECONDS", "(default: 900)",
                       "--rotate-before SECONDS", "(default: 600)", "--cwd DIR",
                       "--stop-timeout SECONDS", "(default: 30)"):
        assert documented in text
