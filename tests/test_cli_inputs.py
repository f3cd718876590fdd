"""What ``validate`` and ``plan`` read (commands/validate.py ``read_limited``, one reader for both):
only regular files of at most ``MAX_FILE_BYTES``.  Anything else is one ``FILE:1:1:`` line, exit 1,
no traceback, and nothing read from it: ``/dev/zero`` used to end in a MemoryError after gigabytes,
and a FIFO hung.

The device and FIFO cases run the command in a child process with a memory cap and a timeout, so
that a regression fails the test instead of exhausting the machine or hanging the suite.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from snapshot_resources import cli
from snapshot_resources.commands import validate
from snapshot_resources.commands.validate import MAX_FILE_BYTES, read_limited

STACK = """\
config:
  agora:appId: 0123456789abcdef0123456789abcdef
  agora-snapshots:storage:
    main: {vendor: aws, region: us-east-1, bucket: my-snapshots, provision: true}
  agora-snapshots:sessions:
    lobby: {cname: lobby, uid: 527841, storage: main}
"""

MEMORY_CAP = 1 << 30  # far above what a refused file needs, far below reading /dev/zero to the end


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_command(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snapshot_resources.cli", *argv],
                          capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_capped)


def commands_on(bad: str, tmp_path: Path) -> list[list[str]]:
    """validate of ``bad``, and plan with ``bad`` as OLD and as NEW."""
    good = tmp_path / "Pulumi.good.yaml"
    good.write_text(STACK, encoding="utf-8")
    return [["validate", bad], ["plan", bad, str(good)], ["plan", str(good), bad]]


def assert_refused(result: subprocess.CompletedProcess[str], bad: str, phrase: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stdout.splitlines() == [f"{bad}:1:1: {phrase}"], result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_without_being_read(device: str, tmp_path: Path) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    for argv in commands_on(device, tmp_path):
        result = run_command(*argv)
        assert_refused(result, device, "is not a regular file (YAML or JSON file expected)")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(fifo)
    for argv in commands_on(str(fifo), tmp_path):
        result = run_command(*argv)  # a hang is a TimeoutExpired: the test fails, not the suite
        assert_refused(result, str(fifo), "is not a regular file (YAML or JSON file expected)")


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{tmp_path}:1:1: is not a regular file (YAML or JSON file expected)\n"
    assert err == "1 problem in 1 file(s)\n"


def test_a_file_over_the_maximum_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "Pulumi.big.yaml"
    with big.open("wb") as stream:
        stream.truncate(MAX_FILE_BYTES + 1)  # sparse: its size without writing it
    good = tmp_path / "Pulumi.good.yaml"
    good.write_text(STACK, encoding="utf-8")
    expected = (f"{big}:1:1: is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the most this "
                "tool reads of a stack file")
    for argv in (["validate", str(big)], ["plan", str(good), str(big)]):
        assert cli.main(argv) == 1
        out, _err = capsys.readouterr()
        assert out.splitlines() == [expected]


@pytest.mark.parametrize(("size", "accepted"), [(99, True), (100, True), (101, False)])
def test_the_limit_is_inclusive(tmp_path: Path, size: int, accepted: bool) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"#" * size)
    result = read_limited(path, limit=100)
    assert (result == b"#" * size) if accepted else isinstance(result, validate.Located)


def test_the_maximum_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["validate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"at most {MAX_FILE_BYTES // (1024 * 1024)} MiB" in help_text


def test_a_symlink_to_a_regular_file_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "Pulumi.real.yaml"
    target.write_text(STACK, encoding="utf-8")
    link = tmp_path / "Pulumi.link.yaml"
    link.symlink_to(target)
    assert cli.main(["validate", str(link)]) == 0
    assert capsys.readouterr().out == f"{link}: 1 session, 1 storage target: ok\n"
