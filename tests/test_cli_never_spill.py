"""Issue 24, the command-line tools that never spill: ``validate`` collapses repeated problems
in bounded memory, ``snapshots ls`` escapes terminal control characters, ``plan
--detailed-exitcode`` tells changes from usage errors, and the emulator command refuses bad flags
in one line (exit 2) and bad input with 400, never 500.  Reproducer first, then variants."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from snapshot_resources.cli import main
from snapshot_resources.commands.snapshots import printable
from snapshot_resources.commands.validate import MAX_ITEMS
from snapshot_resources.naming import format_snapshot_name
from snapshot_resources.spec import REPEATS_SHOWN
from snapshot_resources.testing.emulator import run_emulator

REPO = Path(__file__).resolve().parents[1]
SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"


def _stack(uids: str) -> str:
    return ("storage:\n  main: {vendor: aws, region: us-east-1, bucket: acme-snaps, "
            "accessKey: a, secretKey: b}\nsessions:\n  lobby:\n"
            "    appId: 0123456789abcdef0123456789abcdef\n    cname: lobby\n"
            '    uid: "900001"\n    storage: main\n'
            f"    recordingConfig: {{channelType: 1, subscribeVideoUids: [{uids}]}}\n")


def _run(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], int]:
    """The command in a process of its own: its result and its peak memory (KiB: ``VmHWM``, the
    process's own high-water mark; ``ru_maxrss`` would carry over the forking test worker's)."""
    code = ("import re, sys; from snapshot_resources.cli import main; code = main(); "
            "sys.stdout.flush(); status = open('/proc/self/status').read(); "
            "print(re.search(r'VmHWM:\\s*(\\d+)', status).group(1), file=sys.stderr); "
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO)
    *err, peak = done.stderr.strip().splitlines()
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout,
                                       "\n".join(err)), int(peak)


# -- validate ------------------------------------------------------------------------------------


def test_a_million_item_list_is_one_line_in_bounded_memory(tmp_path: Path) -> None:
    # Reproducer: 1,000,001 lines and 1.15 GB.
    path = tmp_path / "huge.yaml"
    path.write_text(_stack(",".join(['"x"'] * 1_000_000)))
    done, peak_kib = _run("validate", str(path))
    assert done.returncode == 1
    [line] = done.stdout.splitlines()
    assert f"more than {MAX_ITEMS:,} entries" in line
    assert line.startswith(f"{path}:9:")
    assert peak_kib < 200 * 1024, f"peak {peak_kib / 1024:.0f} MiB"


@pytest.mark.parametrize(("count", "style"), [(1_000, "flow"), (MAX_ITEMS, "flow"),
                                              (5_000, "block")])
def test_repeated_problems_of_a_list_are_the_first_few_then_a_count(
    tmp_path: Path, count: int, style: str, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "stack.yaml"
    if style == "flow":
        path.write_text(_stack(",".join(['"x"'] * count)))
    else:
        document = yaml.safe_load(_stack('"1"'))
        document["sessions"]["lobby"]["recordingConfig"]["subscribeVideoUids"] = ["x"] * count
        path.write_text(yaml.safe_dump(document, default_flow_style=False))
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    items = [line for line in lines if "subscribeVideoUids[" in line]
    assert len(items) == REPEATS_SHOWN + 1
    assert f"this and {count - REPEATS_SHOWN - 1:,} more items from here on" in items[-1]
    assert f"subscribeVideoUids[{REPEATS_SHOWN}]" in items[-1]
    assert len(lines) <= REPEATS_SHOWN + 3


def test_a_few_problems_are_all_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(_stack(",".join(['"x"'] * REPEATS_SHOWN)))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("subscribeVideoUids[") == REPEATS_SHOWN
    assert "more items" not in out


def test_different_rules_in_one_list_are_collapsed_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "stack.json"
    document = yaml.safe_load(_stack('"1"'))
    document["sessions"]["lobby"]["recordingConfig"]["subscribeVideoUids"] = ["x"] * 20
    document["sessions"]["lobby"]["fileNamePrefix"] = ["bad-segment!"] * 20
    path.write_text(json.dumps(document))
    assert main(["validate", "--format", "json", str(path)]) == 1
    problems = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    paths = [p["path"] for p in problems]
    for field in ("fileNamePrefix", "subscribeVideoUids"):
        listed = [p for p in paths if f"{field}[" in p]
        assert len(listed) == REPEATS_SHOWN + 1, paths


# -- snapshots ls --------------------------------------------------------------------------------


CONTROLS = ["\x1b[2J\x1b[H", "\x07", "\n", "\r", "\x7f", "\x85", "\u202e", "\u2028", "\t",
            "\x08"]


@pytest.mark.parametrize("control", CONTROLS)
def test_snapshots_ls_escapes_control_characters(
    tmp_path: Path, control: str, capsys: pytest.CaptureFixture[str],
) -> None:
    # Reproducer: keys and channel names printed with raw ESC sequences, BEL, and newlines that
    # split table rows.
    from datetime import UTC, datetime

    bucket = tmp_path / "bucket"
    # Written by anyone with access to the bucket: no rule holds the name to Agora's charset.
    key = format_snapshot_name(sid=SID, cname="lobby", uid="100",
                               taken_at=datetime(2026, 1, 1, tzinfo=UTC), prefix=["dirx"]
                               ).replace("lobby", f"lo{control}bby").replace("dirx",
                                                                             f"dir{control}x")
    (bucket / key).parent.mkdir(parents=True)
    (bucket / key).write_bytes(b"jpg")
    assert main(["snapshots", "ls", "--dir", str(bucket)]) == 0
    out = capsys.readouterr().out
    assert out.isprintable() or set(out) - set(out.replace("\n", "")) == {"\n"}
    lines = out.splitlines()
    assert len(lines) == 2  # the header and one row: nothing split it
    assert not any(char in lines[1] for char in control if not char.isprintable())
    assert printable(f"lo{control}bby") in lines[1]
    assert printable(f"dir{control}x") in lines[1]


def test_escapes_are_unambiguous() -> None:
    assert printable("a\\x1b") == "a\\\\x1b"  # a backslash written by someone is doubled
    assert printable("a\x1b") == "a\\x1b"
    assert printable("café 漢字") == "café 漢字"


# -- plan --detailed-exitcode --------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["plan", "--detailed-exitcode"],                               # no files
    ["plan", "--detailed-exitcode", "a.yaml"],                      # one file
    ["plan", "--detailed-exitcode", "a.yaml", "b.yaml", "--bogus"],  # an unknown flag after
    ["plan", "--bogus", "--detailed-exitcode", "a.yaml", "b.yaml"],  # and before
    ["plan", "--detailed-exitcode", "--format", "xml", "a.yaml", "b.yaml"],
])
def test_plan_usage_errors_are_never_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Reproducer: argparse's usage error was exit 2, which --detailed-exitcode means "changes".
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 1
    assert "error:" in capsys.readouterr().err


def test_plan_exit_codes_with_detailed_exitcode(tmp_path: Path) -> None:
    example = REPO / "Pulumi.example.yaml"
    changed = tmp_path / "Pulumi.new.yaml"
    changed.write_text(example.read_text().replace("captureInterval: 10", "captureInterval: 20"))
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text(example.read_text().replace("captureInterval: 10", "captureInterval: 1"))
    same = main(["plan", "--detailed-exitcode", str(example), str(example)])
    changes = main(["plan", "--detailed-exitcode", str(example), str(changed)])
    invalid = main(["plan", "--detailed-exitcode", str(example), str(broken)])
    assert (same, changes, invalid) == (0, 2, 1)
    assert main(["plan", str(example), str(changed)]) == 0  # without the flag: 0
    with pytest.raises(SystemExit) as exited:  # other commands keep argparse's 2
        main(["validate", "--bogus"])
    assert exited.value.code == 2


# -- the emulator command ------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [
    ["--time-scale", "inf"], ["--time-scale", "1e308"], ["--time-scale", "nan"],
    ["--time-scale", "0"], ["--time-scale", "-1"], ["--latency-ms", "-5"],
    ["--latency-ms", "1e9"], ["--port", "70000"], ["--port", "-1"], ["--port", "http"],
    ["--token-lifetime", "inf"], ["--qps", "0"],
])
def test_emulator_bad_flags_are_one_line_and_exit_2(flags: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "snapshot_resources.cli", "emulator", *flags],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("snapshot-resources emulator: error:")


def _port_in_use() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("case", ["port in use", "storage is a device", "storage is a file",
                                  "unknown host"])
def test_emulator_that_cannot_start_says_why_in_one_line(case: str, tmp_path: Path) -> None:
    flags: list[str] = []
    busy = _port_in_use()
    try:
        if case == "port in use":
            flags = ["--port", str(busy.getsockname()[1])]
        elif case == "storage is a device":
            flags = ["--storage-dir", "/dev/null"]
        elif case == "storage is a file":
            (tmp_path / "file").write_text("")
            flags = ["--storage-dir", str(tmp_path / "file" / "sub")]
        else:
            flags = ["--host", "no-such-host.invalid"]
        done = subprocess.run(
            [sys.executable, "-m", "snapshot_resources.cli", "emulator", *flags],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        busy.close()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("snapshot-resources emulator: cannot start")


@pytest.mark.parametrize(("operation", "field"), [
    ("acquire", "cname"), ("acquire", "uid"), ("acquire", "key"), ("start", "bucket"),
    ("admin", "uid"),
])
def test_a_lone_surrogate_is_400_never_500(operation: str, field: str) -> None:
    # Reproducer: a JSON "\ud800" in a cname answered 500 with a traceback.
    lone = "\\ud800"
    with run_emulator() as agora:
        auth = (agora.customer_id, agora.customer_secret)
        base = f"{agora.url}/v1/apps/{agora.app_id}/cloud_recording"
        if operation == "admin":
            url = f"{agora.url}/_emulator/channels/{agora.app_id}/lobby/users"
            body = f'{{"uid": "{lone}", "video": true}}'
        elif operation == "acquire":
            fields = {"cname": '"lobby"', "uid": '"1"'}
            if field == "key":
                body = f'{{"cname": "lobby", "uid": "1", "{lone}": 1}}'
            else:
                fields[field] = f'"{lone}"'
                body = f'{{"cname": {fields["cname"]}, "uid": {fields["uid"]}}}'
            url = f"{base}/acquire"
        else:
            url = f"{base}/resourceid/rid/mode/individual/start"
            body = ('{"cname": "lobby", "uid": "1", "clientRequest": {"storageConfig": '
                    f'{{"bucket": "{lone}"}}}}}}')
        answer = requests.post(url, data=body.encode(), auth=auth, timeout=10,
                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.status_code != 500


def test_peak_memory_is_measured_by_the_helper(tmp_path: Path) -> None:
    done, peak_kib = _run("validate", str(REPO / "Pulumi.example.yaml"))
    assert done.returncode == 0
    assert 10 * 1024 < peak_kib < 150 * 1024
