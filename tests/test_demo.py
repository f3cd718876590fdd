"""``make demo`` on a machine without the Pulumi CLI, without Go and without internet: it gets as
far as the CLI step, stops with one clear message, exits non-zero and leaves no emulator running.
The installer is replaced by one that fails as an offline download does, so no test sends traffic
anywhere but loopback. (The whole demo under the real engine: tests/engine/test_engine_demo.py.)"""

from __future__ import annotations

import re
import threading
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import requests

from snapshot_resources import demo, engine, spec
from snapshot_resources.spec import parse_stack


def offline_installer(root: Path) -> Any:
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_demo_without_cli_stops_cleanly_with_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no `pulumi` and no `go` on PATH
    # Nothing next to this interpreter either (`make pulumi` links one into the venv).
    monkeypatch.setattr(engine, "find_cli", lambda repo=None: None)

    code = demo.main(["--dir", str(tmp_path / "demo")], installer=offline_installer)

    out, err = capsys.readouterr()
    assert code != 0
    url = re.search(r"emulator listening on (http://127\.0\.0\.1:\d+)", out)
    assert url is not None, out
    assert "users 101, 102 joined channel 'lobby'" in out
    assert err.count("needs the Pulumi CLI") == 1
    assert "make pulumi" in err
    assert "Name or service not known" in err
    assert "https://www.pulumi.com/docs/install/" in err
    with pytest.raises(requests.ConnectionError):  # the emulator it started is gone
        requests.get(f"{url.group(1)}/_emulator/tasks", timeout=2)


def test_a_hanging_installer_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    release = threading.Event()

    def hanging(root: Path) -> Any:
        release.wait(5)
        raise urllib.error.URLError("released")

    monkeypatch.setattr(engine, "find_cli", lambda repo=None: None)
    cli, why = demo.find_pulumi_cli(tmp_path / "pulumi", tmp_path, installer=hanging, timeout=0.2)
    release.set()
    assert cli is None
    assert "did not finish in 0.2 s" in why


def test_the_demo_stack_config_is_valid() -> None:
    config = demo.demo_config("http://127.0.0.1:1", pair_uids=demo.PUBLISHERS)
    raw = {
        "storage": config[f"{spec.PROJECT}:storage"],
        "sessions": config[f"{spec.PROJECT}:sessions"],
    }
    for key, value in demo.SECRET_LEAVES.items():
        namespace, dotted = key.split(":", 1)
        if namespace == spec.PROJECT:
            name = dotted.split(".")
            raw[name[0]][name[1]][name[2]] = value
    stack = parse_stack(raw, default_app_id=config["agora:appId"])
    assert set(stack.sessions) == {"lobby-all", "lobby-pair"}


def test_no_download_never_runs_the_installer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(engine, "find_cli", lambda repo=None: None)

    def must_not_run(root: Path) -> Any:
        raise AssertionError("the installer ran")

    cli, why = demo.find_pulumi_cli(tmp_path / "pulumi", tmp_path, installer=None)
    assert cli is None
    assert "--no-download" in why
    code = demo.main(["--dir", str(tmp_path / "demo"), "--no-download"], installer=must_not_run)
    assert code == 2


def test_outside_a_checkout_the_demo_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(["--dir", str(tmp_path / "demo"), "--repo", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "is not a checkout of agora-snapshots (no Pulumi.yaml, __main__.py)" in err
