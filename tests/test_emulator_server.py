"""The server as a whole: the CLI, clean shutdown, the admin API, and no secret in any output."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    RawAgora,
    run_emulator,
    snapshot_request,
)

SECRET = "customer-secret-distinctive-9931"
CUSTOMER = "customer-id-distinctive-2207"


def test_the_cli_prints_its_address_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "snapshot_resources.cli", "emulator", "--port", "0",
         "--customer-id", CUSTOMER, "--customer-secret", SECRET, "--log-requests"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        found = re.fullmatch(r"listening on (http://127\.0\.0\.1:[0-9]+)", line)
        assert found, line
        token = base64.b64encode(f"{CUSTOMER}:{SECRET}".encode()).decode()
        response = requests.post(
            f"{found[1]}/v1/apps/0123456789abcdef0123456789abcdef/cloud_recording/acquire",
            json={"cname": "lobby", "uid": "1"}, auth=(CUSTOMER, SECRET), timeout=10)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "POST /v1/apps/0123456789abcdef0123456789abcdef/cloud_recording/acquire 200" in stderr
    assert SECRET not in stderr
    assert CUSTOMER not in stderr
    assert token not in stderr


def test_stopping_the_server_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    with run_emulator(time_scale=50, webhook_url="http://127.0.0.1:9/unused") as handle:
        agora = RawAgora(handle)  # a keep-alive connection stays open across the stop
        handle.admin.join("lobby", "100")
        agora.begin("lobby", "1", snapshot_request())
        time.sleep(0.1)
    agora.close()
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []


def test_the_request_log_holds_method_path_and_status_only() -> None:
    with run_emulator(customer_id=CUSTOMER, customer_secret=SECRET) as handle:
        agora = RawAgora(handle)
        agora.begin("lobby", "1", snapshot_request(access_key="AKIADISTINCT", secret_key=SECRET))
        agora.close()
        log = handle.admin.request_log()
        counters = handle.admin.counters()
        tasks = handle.admin.tasks()
    assert [(e["method"], e["status"]) for e in log] == [("POST", 200), ("POST", 200)]
    assert set(log[0]) == {"method", "path", "status", "operation"}
    shown = json.dumps([log, counters, tasks])
    assert SECRET not in shown
    assert CUSTOMER not in shown
    assert "AKIADISTINCT" not in shown


def test_the_admin_api_takes_percent_encoded_channel_names(
        agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.join("class room #1", "100")
    assert agora_emulator.admin.channels() == [{
        "appId": agora_emulator.app_id, "cname": "class room #1",
        "users": [{"uid": "100", "video": True, "audio": True}]}]


def test_the_admin_api_refuses_a_bad_uid(agora_emulator: EmulatorHandle) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        agora_emulator.admin.join("lobby", "0")
    assert caught.value.response.status_code == 400


def test_failover_of_an_unknown_task_is_404(agora_emulator: EmulatorHandle) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        agora_emulator.admin.failover("0" * 32)
    assert caught.value.response.status_code == 404


def test_counters_count_started_and_stopped_tasks(agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    rid, sid = agora.begin("lobby", "1", snapshot_request())
    agora.stop(rid, sid, "lobby", "1")
    agora.close()
    counters = agora_emulator.admin.counters()
    assert (counters["tasksStarted"], counters["tasksStopped"]) == (1, 1)


def test_the_handle_describes_the_running_server(agora_emulator: EmulatorHandle) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", agora_emulator.url)
    assert agora_emulator.storage_dir.is_dir()
    assert agora_emulator.backend.app_ids == frozenset({agora_emulator.app_id})
    assert agora_emulator.customer_secret not in repr(agora_emulator)
