"""``make demo``: the whole product on one machine, with no Agora account and no cloud.

1. starts the local Agora emulator (``snapshot-resources emulator``) with local storage in .demo/,
2. puts two users in channel ``lobby`` publishing video,
3. deploys this repository's project (``Pulumi.yaml``, ``__main__.py``) with the real
   ``pulumi up`` on a local ``file://`` backend in .demo/, offline,
4. shows the JPGs landing, per session and per user,
5. changes a subscription list and applies again (an in-place update: same ``sid``),
6. ``pulumi destroy``, and stops everything it started.

The Pulumi CLI is found in this order: next to this Python (``make pulumi`` links it) or on
``PATH``; the Go build of ``tools/pulumi-cli`` (cached by version; built when Go is here); the
official installer (``pulumi.automation.PulumiCommand.install``, which needs get.pulumi.com). When
none works it stops with one message saying how to get the CLI (exit code 2, emulator stopped).
The program runs as an Automation API inline program (see ``snapshot_resources.engine``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapshot_resources import engine, naming
from snapshot_resources.spec import PROJECT

STACK = "demo"
# Obvious demo values for the emulator; they open nothing anywhere else.
DEMO_APP_ID = "demoappid0000000000000000000000a"
DEMO_CUSTOMER_ID = "demo-customer-id"
DEMO_CUSTOMER_SECRET = "demo-customer-secret"  # noqa: S105 - the emulator's demo login
DEMO_BUCKET = "demo-snapshots"
CHANNEL = "lobby"
PUBLISHERS = ("101", "102")
INSTALL_TIMEOUT_SECONDS = 600.0
# The emulator's clock runs this much faster than the wall clock: 5 s captures every 0.5 s.
TIME_SCALE = 10.0
WAIT_FOR_SNAPSHOTS_SECONDS = 3.0
# How long an interrupted `pulumi up` gets to finish cancelling before it is stopped.
ENGINE_EXIT_GRACE_SECONDS = 15.0

CLI_HELP = (
    "The rest of the demo needs the Pulumi CLI (>= 3.181): {reason}. Install Go >= 1.26 and run "
    "`make pulumi` (it builds the CLI from Pulumi's Go modules), or install the CLI "
    "(https://www.pulumi.com/docs/install/), then run `make demo` again."
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
    root: Path,
    repo: Path,
    installer: Installer | None = _official_installer,
    timeout: float = INSTALL_TIMEOUT_SECONDS,
) -> tuple[engine.PulumiCli | None, str]:
    """The CLI to run, in the order of the module docstring: ``(cli, how it was found)``, or
    ``(None, why not)``. ``root`` is where the official installer puts it; ``installer=None``
    skips that step (``--no-download``)."""
    found = engine.find_cli(repo)
    if found is not None:
        return found, f"{found.source}: {found.executable}"
    reasons = ["no Pulumi CLI next to this Python, on PATH or in the build cache"]
    if shutil.which("go") and (repo / engine.BUILD_SCRIPT).is_file():
        say("building the Pulumi CLI from Pulumi's Go modules (a cold build takes minutes)")
        try:
            built = engine.build_cli(repo, progress=lambda line: print(f"    {line}", flush=True))
            return built, f"built: {built.executable}"
        except engine.CliNotFoundError as exc:
            reasons.append(str(exc))
    else:
        reasons.append("no Go to build it with")
    if installer is None:
        reasons.append("downloading it was not allowed (--no-download)")
        return None, "; ".join(reasons)
    say("trying Pulumi's official installer (downloads from get.pulumi.com; --no-download skips "
        "this)")
    installed = _install(root, installer, timeout)
    if isinstance(installed, engine.PulumiCli):
        return installed, f"installed: {installed.executable}"
    reasons.append(f"the installer failed: {installed}")
    return None, "; ".join(reasons)


def _install(root: Path, installer: Installer, timeout: float) -> engine.PulumiCli | str:
    """Run the official installer, bounded (the SDK's installer sets no timeout of its own)."""
    result: list[Any] = []
    failure: list[str] = []

    def install() -> None:
        try:
            result.append(installer(root))
        except Exception as exc:  # the installer reports network failures in many shapes
            failure.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=install, daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return failure[0] if failure else f"the installer did not finish in {timeout:g} s"
    bin_dir = root / "bin"
    version = engine.cli_version(bin_dir / "pulumi")
    if version is None:
        return f"the installer left no working CLI in {bin_dir}"
    return engine.PulumiCli(bin_dir, version, "installed")


# -- the stack -------------------------------------------------------------------------------------


def demo_config(url: str, *, pair_uids: Sequence[str]) -> dict[str, Any]:
    """The demo stack's configuration (``Pulumi.demo.yaml``), minus the secret leaves."""
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
    "agora:customerId": DEMO_CUSTOMER_ID,
    "agora:customerSecret": DEMO_CUSTOMER_SECRET,
    f"{PROJECT}:storage.local.accessKey": "demo-access-key",
    f"{PROJECT}:storage.local.secretKey": "demo-secret-key",
}


@dataclass
class Outcome:
    """What the Pulumi half of the demo showed: snapshots per session and user, and whether the
    subscription-list edit kept the sid (an update in place, as it must)."""

    landed: dict[str, Counter[str]]
    kept_sid: bool


def run_stack(
    cli: engine.PulumiCli, repo: Path, demo_dir: Path, emulator: RunningEmulator
) -> Outcome:
    """Steps 3-6 with the real engine. Whatever happens (an error, Ctrl-C), the engine is let
    finish, the stack is destroyed and removed, and no process of it is left running."""
    from snapshot_resources.testing.offline import OfflinePulumi, stop_processes

    root = demo_dir / "pulumi"
    shutil.rmtree(root, ignore_errors=True)  # a fresh backend and passphrase every run
    bucket = emulator.storage_dir / DEMO_BUCKET
    outcome = Outcome({}, kept_sid=False)
    with OfflinePulumi(cli, root=root) as offline:
        project = offline.project(repo)
        say(f"project {project} (this repository's Pulumi.yaml and __main__.py), "
            f"state in {offline.backend_dir}")
        stack = offline.stack(project, STACK)
        try:
            offline.write_config(stack, demo_config(emulator.url, pair_uids=PUBLISHERS[:1]),
                                 SECRET_LEAVES)
            say(f"pulumi up: two sessions on channel {CHANNEL!r} (lobby-pair subscribes to "
                f"{PUBLISHERS[0]} only)")
            first = stack.up(color="never", on_output=_indented)
            before = first.outputs["sessions"].value
            outcome.landed = _wait_and_show(bucket, before)
            say(f"editing lobby-pair's subscribeVideoUids to {list(PUBLISHERS)}; pulumi up again")
            offline.write_config(stack, demo_config(emulator.url, pair_uids=PUBLISHERS),
                                 SECRET_LEAVES)
            second = stack.up(color="never", on_output=_indented)
            after = second.outputs["sessions"].value
            outcome.kept_sid = before["lobby-pair"]["sid"] == after["lobby-pair"]["sid"]
            say(f"lobby-pair sid before {before['lobby-pair']['sid']}, after "
                f"{after['lobby-pair']['sid']}: " + (
                    "the same task, updated in place" if outcome.kept_sid
                    else "CHANGED: the edit replaced the session instead of updating it"))
            outcome.landed = _wait_and_show(bucket, after)
        except KeyboardInterrupt:
            say("interrupted: letting the engine finish cancelling, then destroying")
            raise
        finally:
            # An interrupted `pulumi up` holds the stack's lock until its CLI has exited; one
            # that had to be killed, or that died of a closed output pipe (SIGPIPE, when Ctrl-C
            # stopped this process from reading it), leaves the lock behind, which `pulumi
            # cancel` removes.
            stop_processes(offline.home, grace=ENGINE_EXIT_GRACE_SECONDS)
            if any(offline.backend_dir.rglob("locks/**/*.json")):
                with contextlib.suppress(subprocess.CalledProcessError):
                    offline.run("cancel", "--yes", "--stack", STACK, cwd=project)
            say("pulumi destroy")
            stack.destroy(color="never", on_output=_indented)
            stack.workspace.remove_stack(STACK)
            say(f"stack {STACK!r} removed (its state and passphrase were this run's only)")
    return outcome


def _indented(line: str) -> None:
    print(f"    {line}", flush=True)


def _wait_and_show(bucket: Path, sessions: dict[str, Any]) -> dict[str, Counter[str]]:
    say(f"waiting {WAIT_FOR_SNAPSHOTS_SECONDS:g} s of wall time for snapshots (captureInterval 5 s, "
        f"emulator clock x{TIME_SCALE:g})")
    time.sleep(WAIT_FOR_SNAPSHOTS_SECONDS)
    return show_snapshots(bucket, sessions)


def show_snapshots(bucket_dir: Path, sessions: dict[str, Any]) -> dict[str, Counter[str]]:
    """Print the JPGs in ``bucket_dir`` per session and user; return the counts."""
    listing = naming.list_snapshots(naming.LocalDirectory(bucket_dir))
    counts: dict[str, Counter[str]] = {name: Counter() for name in sessions}
    for snapshot in listing:
        for name, outputs in sessions.items():
            if snapshot.sid == outputs["sid"]:
                counts[name][snapshot.uid] += 1
    for name, per_user in counts.items():
        users = ", ".join(f"user {uid}: {n}" for uid, n in sorted(per_user.items())) or "none yet"
        say(f"{name} (sid {sessions[name]['sid']}): {users}")
    if listing:
        say(f"{len(listing)} JPG(s) in {bucket_dir}, e.g. {listing[-1].key}")
    return counts


# -- main ------------------------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None, *, installer: Installer = _official_installer
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snapshot_resources.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="working directory (default .demo)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(),
                        help="the checkout whose Pulumi.yaml and __main__.py are deployed (default .)")
    parser.add_argument("--no-download", action="store_true",
                        help="never run Pulumi's installer (it downloads from get.pulumi.com)")
    args = parser.parse_args(argv)
    demo_dir: Path = args.dir.resolve()
    repo: Path = args.repo.resolve()
    missing = [name for name in engine.PROJECT_FILES if not (repo / name).is_file()]
    if missing:
        print(f"{repo} is not a checkout of agora-snapshots (no {', '.join(missing)}): run "
              "`make demo` in the repository, or pass --repo", file=sys.stderr)
        return 2
    storage = demo_dir / "storage"
    shutil.rmtree(storage, ignore_errors=True)  # this run's snapshots only
    outcome: Outcome | None = None
    try:
        with emulator_process(storage, time_scale=TIME_SCALE) as emulator:
            say(f"emulator listening on {emulator.url}, storage in {emulator.storage_dir}")
            put_publishers_in_channel(emulator.url)
            say(f"users {', '.join(PUBLISHERS)} joined channel {CHANNEL!r} and publish video")
            cli, where = find_pulumi_cli(demo_dir / "pulumi-cli", repo,
                                         installer=None if args.no_download else installer)
            if cli is not None:
                say(f"using the Pulumi CLI {cli.version} ({where})")
                outcome = run_stack(cli, repo, demo_dir, emulator)
    except KeyboardInterrupt:
        say("interrupted: the stack is destroyed and the emulator is stopped")
        return 130
    if cli is None:
        print(CLI_HELP.format(reason=where), file=sys.stderr)
        say("stopped before the Pulumi steps; the emulator is stopped")
        return 2
    assert outcome is not None
    if not outcome.landed or not all(outcome.landed.values()):
        say("FAILED: no snapshots landed for some session")
        return 1
    if not outcome.kept_sid:
        say("FAILED: the subscription-list edit should have kept the sid")
        return 1
    say("done: snapshots landed, the update kept the sid, the stack is destroyed, the emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
