"""`pulumi up` and `pulumi destroy` under the real engine, beside the peer, ProviderHost and the
lower bound, with the provider's default settings.

For N sessions (default 10 and 50) this runs, in one invocation and against the same kind of
emulator (100 ms latency on every REST call, Agora's 10 requests/s per App ID, time scale 1):

* **engine**: this repository's project (``Pulumi.yaml`` + ``__main__.py``) with a stack file of N
  sessions (each on its own channel, bring-your-own storage), ``pulumi up`` then
  ``pulumi destroy``, run by the Pulumi CLI offline (``snapshot_resources.testing.offline``);
* **peer**: what a user writes without this product (``benchmarks/peer.py``: 16 threads, a shared
  9 requests/s budget, a query every 1 s until status 4/5, stop without waiting); the targets are
  ratios to it (create within 1.5x, destroy within 2x);
* **ProviderHost**: the same create and delete steps sent straight to the provider process
  (``benchmarks/deploy.py``'s round, ``--threads`` at once), without the engine;
* **engine floor**: ``pulumi up`` and ``destroy`` of N do-nothing dynamic resources
  (``NoopProvider``): what the engine itself costs for N resources;
* **bound**: ``max(calls / rate, N x per-session latency / 4 workers)`` per phase, as in
  ``benchmarks/deploy.py``, with the calls the emulator counted.

Then a replacement of ``--replace-sessions`` (default 10) sessions (a ``captureInterval`` change:
stop, then start on the same channel and uid), counting the 53 task-conflict answers Agora gave,
failed operations and orphans; and ``pulumi preview`` of a stack file of ``--preview-sessions``
(default 1,000) sessions, beside ``snapshot-resources validate`` of the same file and a preview of
as many do-nothing resources. Every run checks that Agora never answered 429.

Every engine figure includes starting the CLI, the inline program's language server and the
dynamic-provider process. Run: ``.venv/bin/python benchmarks/engine.py`` (prints the command).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import deploy  # benchmarks/deploy.py: the ProviderHost round and the bound
import peer  # benchmarks/peer.py: the script a user would write instead
import yaml
from pulumi import automation as auto

from snapshot_resources import engine, rules
from snapshot_resources.emulator.models import EXIT_SECONDS, READY_SECONDS
from snapshot_resources.spec import PROJECT
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

REPO: Final = Path(__file__).resolve().parents[1]
LATENCY_MS: Final = deploy.LATENCY_MS
FLOOR_PROGRAM: Final = '''
import pulumi
from pulumi import dynamic

from snapshot_resources.testing.noop_provider import NoopProvider


class Noop(dynamic.Resource, module="bench", name="Noop"):
    pass


for index in range(pulumi.Config().require_int("count")):
    Noop(NoopProvider(), f"noop-{index:04d}", {"index": index})
'''


def stack_config(
    url: str, app_id: str, sessions: int, poll_interval: float | None, capture_interval: int = 5
) -> dict[str, Any]:
    """A stack file of ``sessions`` sessions, each on its own channel; ``poll_interval`` None
    keeps the provider's default."""
    settings = {} if poll_interval is None else {"agora:pollInterval": f"{poll_interval:g}"}
    return {
        "agora:appId": app_id,
        "agora:endpoint": url,
        **settings,
        f"{PROJECT}:storage": {"main": {
            "vendor": "alibaba", "region": "cn-hangzhou", "bucket": "bench-snapshots",
            "fileNamePrefix": ["bench"]}},
        f"{PROJECT}:sessions": {
            f"s{i:04d}": {
                "cname": f"bench-{i:04d}", "uid": "527841", "storage": "main",
                "fileNamePrefix": [f"s{i:04d}"],
                "recordingConfig": {"channelType": 1, "maxIdleTime": 3600,
                                    "subscribeVideoUids": ["#allstream#"]},
                "snapshotConfig": {"captureInterval": capture_interval},
            } for i in range(sessions)
        },
    }


# The DIY backend re-serializes the whole checkpoint after each step, even in a preview, so its
# cost grows with N x state size; Pulumi's PULUMI_SKIP_CHECKPOINTS (experimental) saves only the
# final one. Both are measured.
PREVIEW_SETTINGS: Final[dict[str, dict[str, str]]] = {
    "default settings": {},
    "PULUMI_SKIP_CHECKPOINTS=true": {"PULUMI_SKIP_CHECKPOINTS": "true"},
}

STORAGE_SECRETS: Final = {
    f"{PROJECT}:storage.main.accessKey": "bench-access-key",
    f"{PROJECT}:storage.main.secretKey": "bench-secret-key",
}


@dataclass(frozen=True)
class Timed:
    seconds: float
    calls: int = 0


def _requests(emulator: EmulatorHandle) -> int:
    return sum(int(v) for v in emulator.admin.counters()["requests"].values())


def _timed_run(stack: Any, operation: str, emulator: EmulatorHandle | None) -> Timed:
    before = _requests(emulator) if emulator is not None else 0
    started = time.perf_counter()
    getattr(stack, operation)(color="never")
    seconds = time.perf_counter() - started
    return Timed(seconds, (_requests(emulator) - before) if emulator is not None else 0)


@contextlib.contextmanager
def bench_stack(
    cli: engine.PulumiCli, prefix: str
) -> Iterator[tuple[EmulatorHandle, OfflinePulumi, auto.Stack]]:
    """An emulator (100 ms latency, real time) and an empty stack of this project in an offline
    environment that has the emulator's credentials; all removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, run_emulator(
        time_scale=1.0, latency_ms=LATENCY_MS, storage_dir=Path(tmp) / "storage"
    ) as emulator:
        env = {"AGORA_CUSTOMER_ID": emulator.customer_id,
               "AGORA_CUSTOMER_SECRET": emulator.customer_secret}
        with OfflinePulumi(cli, root=Path(tmp) / "pulumi", env=env) as offline:
            yield emulator, offline, offline.stack(offline.project(REPO), "bench")


def engine_round(
    cli: engine.PulumiCli, sessions: int, poll_interval: float | None
) -> dict[str, Timed]:
    with bench_stack(cli, "bench-engine-") as (emulator, offline, stack):
        offline.write_config(
            stack, stack_config(emulator.url, emulator.app_id, sessions, poll_interval),
            STORAGE_SECRETS)
        up = _timed_run(stack, "up", emulator)
        destroy = _timed_run(stack, "destroy", emulator)
        check_clean(emulator, f"engine round of {sessions}")
    return {"create": up, "delete": destroy}


def check_clean(emulator: EmulatorHandle, what: str) -> None:
    """Every task stopped (exiting or gone: destroy does not wait for the exit) and no 429."""
    still = [t for t in emulator.admin.tasks() if t.get("state") in ("running", "failover")]
    limited = int(emulator.admin.counters()["rateLimited"])
    if still or limited:
        raise SystemExit(f"{what}: {len(still)} tasks still running, {limited} answers 429")


def replace_round(cli: engine.PulumiCli, sessions: int) -> dict[str, float]:
    """`pulumi up` of N sessions, then `pulumi up` again with a new captureInterval (a
    delete-before-replace of every session): its time, the 53 answers, failures and orphans."""
    with bench_stack(cli, "bench-replace-") as (emulator, offline, stack):
        offline.write_config(stack, stack_config(emulator.url, emulator.app_id, sessions,
                                                 None), STORAGE_SECRETS)
        stack.up(color="never")
        before = len(emulator.admin.request_log())
        offline.write_config(stack, stack_config(emulator.url, emulator.app_id, sessions,
                                                 None, capture_interval=10), STORAGE_SECRETS)
        started = time.perf_counter()
        failed = 0
        try:
            stack.up(color="never")
        except Exception:  # a failed replacement is what this counts
            failed = 1
        seconds = time.perf_counter() - started
        log = emulator.admin.request_log()[before:]
        conflicts = sum(1 for r in log if r["path"].endswith("/start") and r["status"] == 400)
        running = [t for t in emulator.admin.tasks() if t.get("state") == "running"]
        orphans = len(running) - sessions
        stack.destroy(color="never")
        check_clean(emulator, f"replace round of {sessions}")
    return {"seconds": seconds, "conflicts": conflicts, "failed": failed, "orphans": orphans}


def peer_round(sessions: int) -> peer.PeerRun:
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp, run_emulator(
        time_scale=1.0, latency_ms=LATENCY_MS, storage_dir=Path(tmp) / "storage"
    ) as emulator:
        run = peer.run_peer(emulator, sessions)
        if run.failures or emulator.admin.counters()["rateLimited"]:
            raise SystemExit(f"peer round of {sessions}: {run.failures} failures or 429s")
    return run


def floor_round(
    cli: engine.PulumiCli, resources: int, operations: Sequence[str],
    env: dict[str, str] | None = None,
) -> dict[str, Timed]:
    """The engine with N do-nothing dynamic resources: its own cost for N resources."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp, \
            OfflinePulumi(cli, root=Path(tmp), env=env) as offline:
        project = offline.projects_dir / "floor"
        project.mkdir()
        (project / "Pulumi.yaml").write_text("name: engine-floor\nruntime: python\n")
        (project / "__main__.py").write_text(FLOOR_PROGRAM)
        stack = offline.stack(project, "bench")
        offline.write_config(stack, {"engine-floor:count": str(resources)})
        return {op: _timed_run(stack, op, None) for op in operations}


def preview_round(
    cli: engine.PulumiCli, sessions: int, env: dict[str, str] | None = None
) -> dict[str, float]:
    """`pulumi preview` of a stack file of N sessions, and `validate` of the same file."""
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as tmp, \
            OfflinePulumi(cli, root=Path(tmp) / "pulumi", env=env) as offline:
        stack = offline.stack(offline.project(REPO), "bench")
        path = offline.write_config(
            stack, stack_config("http://127.0.0.1:9", "0123456789abcdef0123456789abcdef",
                                sessions, 1.0), STORAGE_SECRETS)
        started = time.perf_counter()
        stack.preview(color="never")
        preview = time.perf_counter() - started
        plain = Path(tmp) / "plain.yaml"  # validate reads secure: leaves as set; give it values
        document = yaml.safe_load(path.read_text())
        document["config"][f"{PROJECT}:storage"]["main"].update(
            accessKey="bench-access-key", secretKey="bench-secret-key")
        plain.write_text(yaml.safe_dump(document))
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "snapshot-resources"), "validate", str(plain)],
            check=True, capture_output=True, timeout=600,
        )
        validate = time.perf_counter() - started
    return {"preview": preview, "validate": validate}


TARGETS: Final = {"create": 1.5, "delete": 2.0}  # engine / peer (the targets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="agora:pollInterval, seconds, on both paths (default: the provider's)")
    parser.add_argument("--threads", type=int, default=4 * (os.cpu_count() or 1),
                        help="concurrent RPCs ProviderHost is sent (engine: 4 x GOMAXPROCS)")
    parser.add_argument("--replace-sessions", type=int, default=10)
    parser.add_argument("--preview-sessions", type=int, default=1000)
    args = parser.parse_args(argv)
    if any(n > rules.MAX_CONCURRENT_TASKS for n in args.sessions):
        parser.error(f"the emulator allows {rules.MAX_CONCURRENT_TASKS} concurrent tasks per App ID")
    cli = engine.find_cli(REPO)
    if cli is None:
        raise SystemExit(engine.cli_missing_message())

    latency = LATENCY_MS / 1000
    per_session = {"create": 3 * latency + READY_SECONDS, "delete": latency}
    started = time.perf_counter()
    rows: list[str] = []
    for n in args.sessions:
        peer_run = peer_round(n)
        on_engine = engine_round(cli, n, args.poll_interval)
        hosted = deploy.run_round(n, time_scale=1.0, poll_interval=args.poll_interval,
                                  threads=args.threads, repo=REPO)
        if not hosted.ok:
            raise SystemExit(f"ProviderHost round of {n} failed")
        floor = floor_round(cli, n, ("up", "destroy"))
        peer_seconds = {"create": peer_run.create_seconds, "delete": peer_run.stop_seconds}
        for phase, floor_op in (("create", "up"), ("delete", "destroy")):
            timed = on_engine[phase]
            host_phase = next(p for p in hosted.phases if p.name == phase)
            bound = max(timed.calls / deploy.RATE, n * per_session[phase] / deploy.WORKERS)
            ratio = timed.seconds / peer_seconds[phase]
            verdict = "met" if ratio <= TARGETS[phase] else "MISSED"
            rows.append(
                f"| {n} | `pulumi {floor_op}` | {timed.seconds:.1f} | {peer_seconds[phase]:.1f} "
                f"| {ratio:.2f}x (<= {TARGETS[phase]}x: {verdict}) | {host_phase.seconds:.1f} "
                f"| {bound:.1f} | {floor[floor_op].seconds:.1f} | {timed.calls} |"
            )
    replaced = replace_round(cli, args.replace_sessions)
    previews = {}
    for label, env in PREVIEW_SETTINGS.items():
        project = preview_round(cli, args.preview_sessions, env)
        floor_preview = floor_round(cli, args.preview_sessions, ("preview",), env)["preview"]
        previews[label] = (project, floor_preview.seconds)
    elapsed = time.perf_counter() - started

    poll = ("the provider's default" if args.poll_interval is None
            else f"{args.poll_interval:g} s")
    print(f"## engine: `pulumi up` / `pulumi destroy` of N sessions ({elapsed:.0f} s in all)\n")
    print(f"emulator: latency {LATENCY_MS} ms, {rules.QPS_PER_APP_ID} requests/s, time scale 1 "
          f"(ready after {READY_SECONDS} s, gone {EXIT_SECONDS} s after stop); "
          f"agora:pollInterval {poll}; Pulumi CLI {cli.version} ({cli.source}); no 429 in any run\n")
    print("| sessions | run | engine s | peer s | engine / peer | ProviderHost s | bound s "
          "| engine floor s | calls |")
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print(f"replace of {args.replace_sessions} sessions (captureInterval 5 -> 10): "
          f"{replaced['seconds']:.1f} s, {replaced['conflicts']:g} answers 53 ridden out, "
          f"{replaced['failed']:g} failed runs, {replaced['orphans']:g} orphans")
    print()
    n = args.preview_sessions
    print(f"| `pulumi preview` of {n} | this project s | {n} do-nothing resources s | ratio "
          "| `validate` of the same file s |")
    print("|---|---:|---:|---:|---:|")
    for label, (project, floor_seconds) in previews.items():
        print(f"| {label} | {project['preview']:.1f} | {floor_seconds:.1f} "
              f"| {project['preview'] / floor_seconds:.2f}x | {project['validate']:.2f} |")
    print()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f}; python "
          f"{platform.python_version()}, pulumi SDK {metadata.version('pulumi')}")
    sessions = " ".join(str(n) for n in args.sessions)
    poll_arg = "" if args.poll_interval is None else f" --poll-interval {args.poll_interval:g}"
    print(f"reproduce: .venv/bin/python benchmarks/engine.py --sessions {sessions}{poll_arg} "
          f"--threads {args.threads} --replace-sessions {args.replace_sessions} "
          f"--preview-sessions {args.preview_sessions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
