"""``make demo``: the whole product on one machine, with no Agora account and no cloud.

1. starts the local Agora emulator (``snapshot-resources emulator``) with local storage in .demo/,
2. puts two users in channel ``lobby`` publishing video,
3. deploys the demo stack with ``pulumi up`` on a local file backend inside .demo/,
4. shows the JPGs landing (paths and count),
5. changes a subscription list and applies again (an in-place update: same ``sid``),
6. ``pulumi destroy`` and stops everything it started.

Steps 3 to 6 need the Pulumi CLI. When ``pulumi`` is not on PATH the demo installs it with the
SDK's official installer (``pulumi.automation.PulumiCommand.install``) into .demo/pulumi; when
that cannot reach the network it stops with one message saying how to install the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snapshot_resources import naming

PROJECT = "agora-snapshots"
STACK = "demo"
# Obvious demo values for the emulator; they open nothing anywhere else.
DEMO_APP_ID = "demoappid0000000000000000000000a"
DEMO_CUSTOMER_ID = "demo-customer-id"
DEMO_CUSTOMER_SECRET = "demo-customer-secret"  # noqa: S105 - the emulator's demo login
DEMO_PASSPHRASE = "agora-snapshots-demo"  # noqa: S105 - local file backend of the demo only
DEMO_BUCKET = "demo-snapshots"
CHANNEL = "lobby"
PUBLISHERS = ("101", "102")
INSTALL_TIMEOUT_SECONDS = 600.0

CLI_HELP = (
    "The rest of the demo needs the Pulumi CLI, which is not on PATH and could not be installed "
    "automatically ({reason}). Install it (https://www.pulumi.com/docs/install/, e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`) and run `make demo` again."
)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# -- the emulator ----------------------------------------------------------------------------------


@dataclass
class RunningEmulator:
    url: str
    storage_dir: Path
    process: subprocess.Popen[str]


@contextlib.contextmanager
def emulator_process(storage_dir: Path, *, time_scale: float = 1.0) -> Iterator[RunningEmulator]:
    """Run ``snapshot-resources emulator`` on a free loopback port; always stopped on exit."""
    storage_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "snapshot_resources.cli", "emulator",
        "--host", "127.0.0.1", "--port", "0",
        "--storage-dir", str(storage_dir),
        "--app-id", DEMO_APP_ID,
        "--customer-id", DEMO_CUSTOMER_ID,
        "--customer-secret", DEMO_CUSTOMER_SECRET,
        "--time-scale", str(time_scale),
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = _read_address(process)
        yield RunningEmulator(url=url, storage_dir=storage_dir, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _read_address(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert process.stdout is not None
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip())
            if line.startswith("listening on "):
                found.append(line.split("listening on ", 1)[1].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise RuntimeError(
            "the emulator did not report its address: " + (" | ".join(seen[-5:]) or "no output")
        )
    # Keep draining its output so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    return found[0]


def put_publishers_in_channel(url: str) -> None:
    from snapshot_resources.testing.emulator import EmulatorAdmin

    admin = EmulatorAdmin(url, app_id=DEMO_APP_ID)
    for uid in PUBLISHERS:
        admin.join(CHANNEL, uid, video=True, audio=True)


# -- the Pulumi CLI --------------------------------------------------------------------------------

Installer = Callable[[Path], Any]


def _official_installer(root: Path) -> Any:
    from pulumi.automation import PulumiCommand

    return PulumiCommand.install(root=str(root))


def find_pulumi_cli(
    root: Path, installer: Installer = _official_installer, timeout: float = INSTALL_TIMEOUT_SECONDS
) -> tuple[Any | None, str]:
    """A ``PulumiCommand`` for the CLI on PATH or in ``root``, else install it; ``(None, why)`` if not."""
    from pulumi.automation import PulumiCommand

    on_path = shutil.which("pulumi")
    if on_path:
        return PulumiCommand(root=str(Path(on_path).resolve().parent.parent)), on_path
    result: list[Any] = []
    failure: list[str] = []

    def install() -> None:
        try:
            result.append(installer(root))
        except Exception as exc:  # the installer reports network failures in many shapes
            failure.append(f"{type(exc).__name__}: {exc}")

    # Bounded: urllib has no timeout of its own in the SDK's installer.
    worker = threading.Thread(target=install, daemon=True)
    worker.start()
    worker.join(timeout)
    if result:
        return result[0], str(root)
    return None, failure[0] if failure else f"the installer did not finish in {timeout:.0f} s"


# -- the stack -------------------------------------------------------------------------------------


def demo_config(url: str, *, pair_uids: Sequence[str]) -> dict[str, Any]:
    """The demo stack's configuration (Pulumi.demo.yaml), minus the secret leaves."""
    return {
        "agora:appId": DEMO_APP_ID,
        "agora:endpoint": url,
        "agora:pollInterval": "0.5",
        "agora:startTimeout": "30",
        f"{PROJECT}:storage": {
            "local": {
                "vendor": "alibaba",
                "region": "cn-hangzhou",
                "bucket": DEMO_BUCKET,
                "fileNamePrefix": ["demo"],
            }
        },
        f"{PROJECT}:sessions": {
            "lobby-all": {
                "cname": CHANNEL,
                "uid": "900001",
                "storage": "local",
                "fileNamePrefix": ["all"],
                "recordingConfig": {"channelType": 1, "subscribeVideoUids": ["#allstream#"]},
                "snapshotConfig": {"captureInterval": 5},
            },
            "lobby-pair": {
                "cname": CHANNEL,
                "uid": "900002",
                "storage": "local",
                "fileNamePrefix": ["pair"],
                "recordingConfig": {"channelType": 1, "subscribeVideoUids": list(pair_uids)},
                "snapshotConfig": {"captureInterval": 5},
            },
        },
    }


SECRET_LEAVES = {
    f"{PROJECT}:storage.local.accessKey": "demo-access-key",
    f"{PROJECT}:storage.local.secretKey": "demo-secret-key",
}


def run_stack(cli: Any, repo: Path, demo_dir: Path, emulator: RunningEmulator) -> None:
    """Steps 3-6 through the Automation API; needs the Pulumi CLI (not on this project's CI)."""
    from pulumi import automation as auto

    state = demo_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    env = {
        "PULUMI_BACKEND_URL": state.resolve().as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": DEMO_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "AGORA_CUSTOMER_ID": DEMO_CUSTOMER_ID,
        "AGORA_CUSTOMER_SECRET": DEMO_CUSTOMER_SECRET,
    }
    workspace = auto.LocalWorkspace(work_dir=str(repo), pulumi_command=cli, env_vars=env)
    stack = auto.Stack.create_or_select(STACK, workspace)
    stack_file = repo / f"Pulumi.{STACK}.yaml"

    def configure(pair_uids: Sequence[str]) -> None:
        current = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        current = current or {}
        current["config"] = demo_config(emulator.url, pair_uids=pair_uids)
        stack_file.write_text(yaml.safe_dump(current, sort_keys=False))
        for key, value in SECRET_LEAVES.items():
            stack.set_config(key, auto.ConfigValue(value, secret=True), path=True)

    try:
        configure(PUBLISHERS[:1])
        say("pulumi up (two sessions on channel lobby)")
        first = stack.up(on_output=print)
        sids = {k: v.value for k, v in first.outputs.items()}
        say(f"outputs: {sids}")
        wait = 12
        say(f"waiting {wait} s for snapshots (captureInterval 5 s)")
        time.sleep(wait)
        show_snapshots(emulator.storage_dir / DEMO_BUCKET)
        say("changing lobby-pair's subscribeVideoUids to both publishers; pulumi up again")
        configure(PUBLISHERS)
        second = stack.up(on_output=print)
        before = first.outputs["sessions"].value["lobby-pair"]["sid"]
        after = second.outputs["sessions"].value["lobby-pair"]["sid"]
        verdict = "same: updated in place" if before == after else "CHANGED"
        say(f"lobby-pair sid before {before}, after {after}: {verdict}")
        time.sleep(wait)
        show_snapshots(emulator.storage_dir / DEMO_BUCKET)
    finally:
        say("pulumi destroy")
        stack.destroy(on_output=print)
        with contextlib.suppress(FileNotFoundError):
            stack_file.unlink()


def show_snapshots(bucket_dir: Path) -> int:
    listing = naming.list_snapshots(naming.LocalDirectory(bucket_dir))
    for name in listing:
        print(f"    {bucket_dir / name.key}")
    say(f"{len(listing)} snapshot(s) in {bucket_dir}")
    return len(listing)


# -- main ------------------------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None, *, installer: Installer = _official_installer
) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapshot_resources.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="working directory (default .demo)")
    args = parser.parse_args(argv)
    repo = Path.cwd()
    demo_dir: Path = args.dir
    with emulator_process(demo_dir / "storage") as emulator:
        say(f"emulator listening on {emulator.url}, storage in {emulator.storage_dir}")
        put_publishers_in_channel(emulator.url)
        say(f"users {', '.join(PUBLISHERS)} joined channel {CHANNEL!r} and publish video")
        cli, where = find_pulumi_cli(demo_dir / "pulumi", installer=installer)
        if cli is not None:
            say(f"using the Pulumi CLI at {where}")
            run_stack(cli, repo, demo_dir, emulator)
    if cli is None:
        print(CLI_HELP.format(reason=where), file=sys.stderr)
        say("stopped before the Pulumi steps; the emulator is stopped")
        return 2
    say("done; the emulator is stopped")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    sys.exit(main())
