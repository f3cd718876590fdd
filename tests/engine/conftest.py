"""The real Pulumi engine on this repository's own ``Pulumi.yaml`` and ``__main__.py``.

Every test here runs the Pulumi CLI (built from Pulumi's Go modules by ``make pulumi``) offline on a
``file://`` backend, against the local Agora emulator, with bring-your-own storage on moto's S3
server (vendor 1: the emulator uploads real JPGs through the S3 API with the session's own keys).
This file holds the fixtures (the CLI, moto's S3, the emulator, an offline Pulumi, the example
stack) and the hook that marks every test here ``engine``; the example stack and the helpers the
tests share are ``support.engine_stack``.

Without a CLI and without Go the tests skip with one line saying how to enable them; with ``CI``
set they fail instead, so a green CI run always means the engine ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engine_stack import (
    BUCKET,
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    REPO,
    SESSION_TYPE,
    TIME_SCALE,
    ExampleStack,
)

from snapshot_resources import engine
from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    S3Server,
    run_emulator,
    run_s3_server,
)
from snapshot_resources.testing.offline import OfflinePulumi


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def pulumi_cli() -> engine.PulumiCli:
    """The CLI, built from Go modules when none is found and Go is here (cached by version)."""
    cli = engine.find_cli(REPO)
    if cli is None and shutil.which("go"):
        cli = engine.build_cli(REPO, progress=lambda line: print(line, flush=True))
    if cli is None:
        message = f"engine tests: {engine.cli_missing_message()}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: engine tests may not skip)")
        pytest.skip(message)
    return cli


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with run_s3_server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def agora(tmp_path: Path, s3: S3Server) -> Iterator[EmulatorHandle]:
    with run_emulator(
        time_scale=TIME_SCALE, storage_dir=tmp_path / "emulator", s3_endpoint=s3.endpoint_url,
        customer_id=CUSTOMER_ID, customer_secret=CUSTOMER_SECRET,
    ) as handle:
        yield handle


@pytest.fixture
def offline(pulumi_cli: engine.PulumiCli, tmp_path: Path) -> Iterator[OfflinePulumi]:
    with OfflinePulumi(pulumi_cli, root=tmp_path / "pulumi") as environment:
        yield environment
        leftover = environment.live_providers()
        assert not leftover, f"processes left running: {leftover}"


@pytest.fixture
def example(offline: OfflinePulumi, agora: EmulatorHandle, s3: S3Server) -> Iterator[ExampleStack]:
    stack = ExampleStack(offline, agora, s3)
    yield stack
    # Leave nothing running: a test that failed half-way still stops its tasks.
    if stack.offline.resources(stack.stack, SESSION_TYPE):
        stack.agora.admin.clear_faults()
        stack.destroy()
