"""The suite's fixtures and hooks, and nothing else: helpers and data live in ``tests/support/``
(``support.sessions`` the valid session inputs, ``support.provider_settings`` the provider's
settings for the emulator, ``support.waiting`` ``wait_for``; CONTRIBUTING.md, "Tests").  The
emulator and S3 fixtures themselves come from the package's pytest plugin,
``snapshot_resources.testing.plugin``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.provider_settings import TIME_SCALE, provider_config

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle, RawAgora, run_emulator
from snapshot_resources.testing.provider_host import HostedResource, ProviderHost


@pytest.fixture(scope="session", autouse=True)
def _no_user_pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Before any fixture of any scope runs (module-scoped soaks start providers too): never the
    user's ``~/.pulumi`` for the provider's task journal."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULUMI_HOME", str(tmp_path_factory.mktemp("pulumi-home")))
        patch.delenv("AGORA_TASK_JOURNAL", raising=False)
        yield


@pytest.fixture(autouse=True)
def _own_pulumi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own Pulumi home, so the provider's task journal (kept there,
    ``snapshot_resources.journal``) is never the user's and never another test's."""
    home = tmp_path / "pulumi-home"
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.delenv("AGORA_TASK_JOURNAL", raising=False)
    return home


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(time_scale=TIME_SCALE, storage_dir=tmp_path / "storage") as handle:
        yield handle


@pytest.fixture
def host(emulator: EmulatorHandle) -> Iterator[ProviderHost]:
    with ProviderHost() as provider_host:
        provider_host.configure(
            provider_config(emulator), secret_keys=("agora:customerSecret",)
        )
        yield provider_host


@pytest.fixture
def session(host: ProviderHost) -> HostedResource:
    return host.resource(SnapshotSessionProvider(), name="lobby")


@pytest.fixture
def agora(agora_emulator: EmulatorHandle) -> Iterator[RawAgora]:
    """Raw REST calls to the emulator (no client logic in between)."""
    client = RawAgora(agora_emulator)
    yield client
    client.close()


# --------------------------------------------------------------------------------------------------
# `make test` is never silent for minutes: while a test has run longer than LONG_TEST_SECONDS, the
# run names it (on the controller, which pytest-xdist tells when each test starts and ends).

LONG_TEST_SECONDS = float(os.environ.get("LONG_TEST_SECONDS", "60"))


class _LongTests:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started: dict[str, float] = {}
        self.reported: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(LONG_TEST_SECONDS / 4):
            now = time.monotonic()
            long = sorted((now - at, nodeid) for nodeid, at in list(self.started.items())
                          if now - at >= LONG_TEST_SECONDS and nodeid not in self.reported)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            for seconds, nodeid in long:
                self.reported.add(nodeid)
                if reporter is not None:
                    reporter.write_line(f"\n... still running after {seconds:.0f} s: {nodeid}")

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.started[nodeid] = time.monotonic()

    @pytest.hookimpl
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.started.pop(nodeid, None)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller reports
    watcher = _LongTests(config)
    config.pluginmanager.register(watcher, "long-tests")
    watcher.thread.start()
    config.add_cleanup(watcher.stop.set)
