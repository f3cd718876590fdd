"""``snapshot-resources validate`` on a generated Pulumi stack file of 10,000 sessions.

What is timed is the whole command path for one file, as CI runs it: read the file, parse the YAML
(libyaml when PyYAML has it, as here), check every rule, and locate every problem's line.  The
stack is realistic: 4 storage targets (two provisioned, two with secure keys), 10,000 sessions
with subscription lists, prefixes and secure tokens, all valid, so every rule runs on every
session and nothing short-circuits.  A second file with one problem in every session measures the
locating path too; a third row runs the valid file through the installed command in a new
process (interpreter start and imports included), as a user or CI sees it.  Target: under
2 seconds per file at 10,000 sessions (the file is written out in full: no YAML aliases).

Method: ``--rounds`` timed runs after one warm-up; the table shows the median and the slowest.

Run: ``.venv/bin/python benchmarks/validate.py [--sessions 10000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from snapshot_resources.commands.validate import validate_file

TARGET_SECONDS = 2.0  # at 10,000 sessions


def stack_file(sessions: int, *, broken: bool) -> dict[str, Any]:
    storage = {
        "aws": {"vendor": "aws", "region": "us-east-1", "bucket": "agora-snapshots-prod",
                "provision": True, "retentionDays": 30, "fileNamePrefix": ["snapshots"]},
        "ali": {"vendor": "alibaba", "region": "cn-beijing", "bucket": "agora-snapshots-cn",
                "accessKey": {"secure": "AAABAKEYAAAAAAAAAAAAAAAA"},
                "secretKey": {"secure": "AAABSECRETAAAAAAAAAAAAAA"},
                "extensionParams": {"tag": "team=video"}},
        "gcs": {"vendor": "gcp", "bucket": "agora-snapshots-eu", "provision": True},
        "minio": {"vendor": "s3-compatible", "bucket": "snapshots", "region": 0,
                  "accessKey": {"secure": "AAABAKEYAAAAAAAAAAAAAAAA"},
                  "secretKey": {"secure": "AAABSECRETAAAAAAAAAAAAAA"},
                  "extensionParams": {"endpoint": "minio.internal.example:9000"}},
    }
    names = list(storage)
    entries: dict[str, Any] = {}
    for i in range(sessions):
        session: dict[str, Any] = {
            "cname": f"room-{i // 2}",
            "uid": 100000 + i,
            "storage": names[i % len(names)],
            "region": "NA",
            "fileNamePrefix": ["room", str(i)],
            "token": {"secure": "AAABTOKENAAAAAAAAAAAAAAA"},
            "recordingConfig": {
                "channelType": 1,
                "maxIdleTime": 300,
                "subscribeVideoUids": [str(1000 + k) for k in range(i % 8 + 1)],
                "subscribeAudioUids": ["1000"],
            },
            "snapshotConfig": {"captureInterval": 5 + i % 60, "fileType": ["jpg"]},
        }
        if broken:
            session["snapshotConfig"]["captureIntervall"] = 5  # one unknown key per session
        entries[f"session-{i}"] = session
    return {
        "config": {
            "agora:appId": "0123456789abcdef0123456789abcdef",
            "agora-snapshots:storage": storage,
            "agora-snapshots:sessions": entries,
        }
    }


def measure(path: Path, rounds: int) -> tuple[list[float], int]:
    validate_file(path)  # warm-up: imports, schema-free code paths, libyaml
    times, found = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        found = len(validate_file(path))
        times.append(time.perf_counter() - start)
    return times, found


def measure_command(path: Path, rounds: int) -> tuple[list[float], int]:
    """``snapshot-resources validate FILE`` in a new process each round; problems = exit status."""
    command = [sys.executable, "-m", "snapshot_resources.cli", "validate", str(path)]
    subprocess.run(command, capture_output=True, check=False)  # warm-up: the OS file cache
    times, status = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        status = subprocess.run(command, capture_output=True, check=False).returncode
        times.append(time.perf_counter() - start)
    return times, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="sessions in the generated file (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, PyYAML libyaml: "
          f"{yaml.__with_libyaml__}; {args.sessions} sessions, {args.rounds} rounds")
    print(f"{'file':<34}{'lines':>8}{'problems':>10}{'median s':>11}{'max s':>9}  target")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        rows = (("valid", False, measure), ("one problem per session", True, measure),
                ("valid, command in a new process", False, measure_command))
        for label, broken, timer in rows:
            path = Path(tmp) / f"Pulumi.{'broken' if broken else 'bench'}.yaml"
            text = yaml.safe_dump(stack_file(args.sessions, broken=broken), sort_keys=False)
            path.write_text(text, encoding="utf-8")
            times, found = timer(path, args.rounds)
            median = statistics.median(times)
            # measure() counts problems; measure_command() returns the exit status (0 = valid).
            expected = args.sessions if broken else 0
            if found != expected:
                print(f"{label}: expected {expected} problems, got {found}", file=sys.stderr)
                ok = False
            passed = median < TARGET_SECONDS
            ok = ok and passed
            print(f"{label:<34}{text.count(chr(10)):>8}{found:>10}{median:>11.3f}{max(times):>9.3f}"
                  f"  < {TARGET_SECONDS:.1f} s {'ok' if passed else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
