"""``snapshot_resources.cli.main``: ``--version``, a reader that stops early, and the commands it
loads.

The pipe tests run the command as a user does, in a child process whose stdout is a real pipe:
either one already closed at the reading end (the first write fails), or ``| head -1`` on output
larger than the pipe's buffer (the writer is blocked when the reader goes away).  Python ignores
SIGPIPE, so without the handling in ``cli.main`` each ended in a BrokenPipeError traceback.  Each
runs with stdout buffered (the error comes at the final flush) and unbuffered
(``PYTHONUNBUFFERED``: at the first write).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest
from support.sessions import APP_ID

from snapshot_resources import cli
from snapshot_resources.naming import format_snapshot_name

COMMAND = [sys.executable, "-m", "snapshot_resources.cli"]


def stack_file(path: Path, sessions: int) -> Path:
    lines = ["config:", f"  agora:appId: {APP_ID}", "  agora-snapshots:storage:",
             "    main: {vendor: aws, region: us-east-1, bucket: my-snapshots, provision: true}",
             "  agora-snapshots:sessions:" + (" {}" if not sessions else "")]
    lines += [f"    s{i}: {{cname: room-{i}, uid: {100000 + i}, storage: main}}"
              for i in range(sessions)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def snapshot_dir(path: Path, files: int) -> Path:
    for i in range(files):
        key = format_snapshot_name(sid="38f8e3cfdc474cd56fc1ceba380d7e1a", cname="lobby",
                                   uid=str(100 + i), taken_at=_time(i))
        (path / key).write_bytes(b"\xff\xd8\xff\xd9")
    return path


def _time(i: int) -> datetime:
    return datetime(2019, 6, 11, 7, 32, 46, tzinfo=UTC) + timedelta(seconds=i)


@pytest.fixture(params=["buffered", "unbuffered"])
def child_env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if request.param == "unbuffered":
        env["PYTHONUNBUFFERED"] = "1"
    return env


def run_into_closed_pipe(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """The command with stdout a pipe whose reading end is closed before it starts."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([*COMMAND, *argv], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False, env=env)
    finally:
        os.close(write_end)


def run_into_head(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """``COMMAND argv | head -1``: the first line is read, then the pipe is closed."""
    with subprocess.Popen([*COMMAND, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = child.stdout.readline()
        child.stdout.close()
        err = child.stderr.read()
        return child.wait(timeout=60), first, err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"snapshot-resources {metadata.version(cli.DISTRIBUTION)}\n"


def test_version_from_the_console() -> None:
    result = subprocess.run([*COMMAND, "--version"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"snapshot-resources {metadata.version(cli.DISTRIBUTION)}\n"


def test_plan_into_a_closed_pipe_ends_quietly(tmp_path: Path, child_env: dict[str, str]) -> None:
    old = stack_file(tmp_path / "Pulumi.old.yaml", 0)
    new = stack_file(tmp_path / "Pulumi.new.yaml", 3)
    result = run_into_closed_pipe(child_env, "plan", str(old), str(new))
    assert (result.returncode, result.stderr) == (cli.EXIT_BROKEN_PIPE, "")


def test_snapshots_ls_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    result = run_into_closed_pipe(child_env, "snapshots", "ls", "--dir",
                                  str(snapshot_dir(tmp_path, 3)))
    assert result.returncode == cli.EXIT_BROKEN_PIPE
    # The count goes to stderr, still open, after the table: there when the table was buffered.
    assert result.stderr in ("", "3 snapshot file(s)\n")


@pytest.mark.parametrize("argv", [["validate"], ["schema", "stack"]])
def test_other_commands_into_a_closed_pipe_end_quietly(
    tmp_path: Path, child_env: dict[str, str], argv: list[str]
) -> None:
    if argv == ["validate"]:
        argv = ["validate", str(stack_file(tmp_path / "Pulumi.dev.yaml", 1))]
    result = run_into_closed_pipe(child_env, *argv)
    assert (result.returncode, result.stderr) == (cli.EXIT_BROKEN_PIPE, "")


def test_help_into_a_closed_pipe_ends_quietly(child_env: dict[str, str]) -> None:
    # argparse itself ignores a failed write of its help (then exits 0); a buffered one fails at
    # the flush in cli.main.
    result = run_into_closed_pipe(child_env, "--help")
    assert result.returncode in (0, cli.EXIT_BROKEN_PIPE)
    assert result.stderr == ""


def test_plan_into_head_ends_quietly(tmp_path: Path, child_env: dict[str, str]) -> None:
    # 3,000 created sessions: about 100 KB of plan, more than a pipe holds (64 KiB on Linux).
    old = stack_file(tmp_path / "Pulumi.old.yaml", 0)
    new = stack_file(tmp_path / "Pulumi.new.yaml", 3000)
    status, first, err = run_into_head(child_env, "plan", str(old), str(new))
    assert first == " + session s0: create\n"
    assert (status, err) == (cli.EXIT_BROKEN_PIPE, "")


def test_snapshots_ls_into_head_ends_quietly(tmp_path: Path, child_env: dict[str, str]) -> None:
    # 1,000 files: about 150 KB of table.
    status, first, err = run_into_head(child_env, "snapshots", "ls", "--dir",
                                       str(snapshot_dir(tmp_path, 1000)))
    assert first.split()[:2] == ["TIME", "(UTC)"]
    assert status == cli.EXIT_BROKEN_PIPE
    assert err == ""  # the table never ended, so neither the count after it nor a traceback


def test_a_command_loads_only_its_own_module() -> None:
    # validate must not pay for plan's and emulator's imports (Pulumi, the emulator server).
    code = ("import sys; from snapshot_resources import cli; cli.build_parser('validate'); "
            "print(sorted(m for m in sys.modules if m.startswith('snapshot_resources.commands.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "['snapshot_resources.commands.validate']"


def test_top_level_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"    {name}" in out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["valdate", "x"])
    assert exited.value.code == 2
    assert "valdate" in capsys.readouterr().err
