"""Soak: 50 concurrent snapshot tasks for 10 emulated minutes at --time-scale 100.

Starts ``snapshot-resources emulator`` in a subprocess (so only the emulator's own memory is
measured), starts 50 tasks in 50 channels with one publisher each (captureInterval 5 s, so 6,000
JPGs are drawn and written), samples the emulator's RSS from /proc every emulated minute, stops
every task and prints a table.  Memory is "flat" when RSS after the first minute grows by less
than ``FLAT_MB``: state per task is bounded, and finished tasks, resources and logs are dropped or
kept in bounded buffers.

Reproduce:  .venv/bin/python benchmarks/emulator_soak.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

TASKS = 50
EMULATED_MINUTES = 10
TIME_SCALE = 100.0
CAPTURE_INTERVAL = 5
FLAT_MB = 15.0
APP_ID = "0123456789abcdef0123456789abcdef"
AUTH = ("soak-customer", "soak-secret")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+([0-9]+) kB", status)
    return int(found[1]) / 1024 if found else float("nan")


def start_emulator(storage: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "snapshot_resources.cli", "emulator", "--port", "0",
               "--time-scale", str(TIME_SCALE), "--max-tasks", str(TASKS),
               # The soak drives 100 set-up calls at once; the QPS limit is not under test here.
               "--qps", "1000", "--storage-dir", str(storage),
               "--customer-id", AUTH[0], "--customer-secret", AUTH[1]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def start_tasks(session: requests.Session, url: str) -> list[tuple[str, str, str]]:
    base = f"{url}/v1/apps/{APP_ID}/cloud_recording"
    started = []
    for index in range(TASKS):
        cname = f"soak{index}"
        session.post(f"{url}/_emulator/channels/{APP_ID}/{cname}/users",
                     json={"uid": "100"}, timeout=10).raise_for_status()
        rid = session.post(f"{base}/acquire", json={"cname": cname, "uid": "9"},
                           timeout=10).json()["resourceId"]
        body = {"cname": cname, "uid": "9", "clientRequest": {
            "recordingConfig": {"channelType": 1, "streamTypes": 2, "maxIdleTime": 300,
                                "subscribeVideoUids": ["#allstream#"], "subscribeUidGroup": 0},
            "snapshotConfig": {"captureInterval": CAPTURE_INTERVAL, "fileType": ["jpg"]},
            "storageConfig": {"vendor": 2, "region": 0, "bucket": "soak", "accessKey": "k",
                              "secretKey": "s", "fileNamePrefix": [cname]}}}
        answer = session.post(f"{base}/resourceid/{rid}/mode/individual/start", json=body,
                              timeout=10)
        answer.raise_for_status()
        started.append((cname, rid, answer.json()["sid"]))
    return started


def stop(url: str, cname: str, rid: str, sid: str) -> int:
    base = f"{url}/v1/apps/{APP_ID}/cloud_recording"
    return requests.post(f"{base}/resourceid/{rid}/sid/{sid}/mode/individual/stop",
                         json={"cname": cname, "uid": "9"}, auth=AUTH, timeout=60).status_code


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="emulator-soak-") as storage:
        process, url = start_emulator(Path(storage))
        session = requests.Session()
        session.auth = AUTH
        rows: list[tuple[Any, ...]] = []
        try:
            rows.append(("idle", 0.0, rss_mb(process.pid), 0, 0, 0, 0))
            began = time.monotonic()
            tasks = start_tasks(session, url)
            minute = 60 / TIME_SCALE
            for emulated in range(1, EMULATED_MINUTES + 1):
                time.sleep(max(0.0, began + emulated * minute - time.monotonic()))
                counters = session.get(f"{url}/_emulator/counters", timeout=10).json()
                rows.append((emulated, time.monotonic() - began, rss_mb(process.pid),
                             counters["tasksRunning"], counters["captures"],
                             counters["uploads"], counters["jobsQueued"]))
            with ThreadPoolExecutor(max_workers=TASKS) as pool:  # stops are independent
                statuses = list(pool.map(lambda task: stop(url, *task), tasks))
            counters = session.get(f"{url}/_emulator/counters", timeout=10).json()
            files = sum(1 for _ in Path(storage).rglob("*.jpg"))
        finally:
            session.close()
            process.terminate()
            process.wait(timeout=30)
    print(f"Emulator soak: {TASKS} tasks x {EMULATED_MINUTES} emulated min, captureInterval "
          f"{CAPTURE_INTERVAL} s, --time-scale {TIME_SCALE:g} (emulator RSS from /proc)")
    print(f"{'emulated min':>12} {'real s':>7} {'RSS MB':>7} {'tasks':>6} {'captures':>9} "
          f"{'uploads':>8} {'queued':>7}")
    for row in rows:
        print(f"{row[0]!s:>12} {row[1]:7.1f} {row[2]:7.1f} {row[3]:6d} {row[4]:9d} "
              f"{row[5]:8d} {row[6]:7d}")
    expected = TASKS * (EMULATED_MINUTES * 60 // CAPTURE_INTERVAL)
    growth = rows[-1][2] - rows[1][2]
    print(f"stop answers: {sorted(set(statuses))}; JPG files written: {files} "
          f"(schedule: ~{expected}); uploads: {counters['uploads']}, failures: "
          f"{counters['uploadFailures']}")
    print(f"RSS growth from minute 1 to minute {EMULATED_MINUTES}: {growth:+.1f} MB "
          f"({'flat' if abs(growth) < FLAT_MB else 'NOT flat'}, threshold {FLAT_MB:g} MB)")
    print("reproduce: .venv/bin/python benchmarks/emulator_soak.py")
    return 0 if abs(growth) < FLAT_MB and statuses == [200] * TASKS else 1


if __name__ == "__main__":
    sys.exit(main())
