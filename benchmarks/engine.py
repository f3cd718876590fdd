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
# Agora's pace: 10 requests/s, 3 calls per create, about 3 s per create (2 s to be ready, the
# calls, the waits for the budget): 10 x 3 / 3 = 10 creates in flight keep the budget busy; a
# few times that absorbs the spread (docs/engine.md, "Agora's pace").
DEFAULT_PARALLEL: Final = 32
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
    url: str, app_id: str, sessions: int, poll_interval: float | None, capture_interval: int = 5,
    *, first: int = 0, max_idle_time: int = 3600,
) -> dict[str, Any]:
    """A stack file of ``sessions`` sessions, each on its own channel (numbered from ``first``);
    ``poll_interval`` None keeps the provider's default."""
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
                "recordingConfig": {"channelType": 1, "maxIdleTime": max_idle_time,
                                    "subscribeVideoUids": ["#allstream#"]},
                "snapshotConfig": {"captureInterval": capture_interval},
            } for i in range(first, first + sessions)
        },
    }


# The DIY backend re-serializes the whole checkpoint after each step, even in a preview, so its
# cost grows with N x state size; Pulumi's PULUMI_SKIP_CHECKPOINTS (experimental) saves only the
# final one. Both are measured.
PREVIEW_SETTINGS: Final[dict[str, dict[str, str]]] = {
    "default settings": {},
    " ".join(f"{k}={v}" for k, v in engine.PREVIEW_ENV.items()): dict(engine.PREVIEW_ENV),
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
    cli: engine.PulumiCli, prefix: str, *, parallel: int | None = None, max_tasks: int = 50,
    stacks: int = 1,
) -> Iterator[tuple[EmulatorHandle, OfflinePulumi, list[auto.Stack]]]:
    """An emulator (100 ms latency, real time, ``max_tasks`` concurrent tasks) and ``stacks``
    empty stacks of this project in one offline environment that has the emulator's credentials
    and ``PULUMI_PARALLEL`` (when given); all removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, run_emulator(
        time_scale=1.0, latency_ms=LATENCY_MS, storage_dir=Path(tmp) / "storage",
        max_tasks=max_tasks,
    ) as emulator:
        env = {"AGORA_CUSTOMER_ID": emulator.customer_id,
               "AGORA_CUSTOMER_SECRET": emulator.customer_secret}
        if parallel is not None:
            env["PULUMI_PARALLEL"] = str(parallel)
        with OfflinePulumi(cli, root=Path(tmp) / "pulumi", env=env) as offline:
            project = offline.project(REPO)
            yield emulator, offline, [offline.stack(project, f"bench{i}") for i in range(stacks)]


def engine_round(
    cli: engine.PulumiCli, sessions: int, poll_interval: float | None, parallel: int | None,
) -> dict[str, Timed]:
    with bench_stack(cli, "bench-engine-", parallel=parallel,
                     max_tasks=max(50, sessions)) as (emulator, offline, (stack,)):
        offline.write_config(
            stack, stack_config(emulator.url, emulator.app_id, sessions, poll_interval),
            STORAGE_SECRETS)
        up = _timed_run(stack, "up", emulator)
        destroy = _timed_run(stack, "destroy", emulator)
        check_clean(emulator, f"engine round of {sessions}")
    return {"create": up, "delete": destroy}


def sharded_round(
    cli: engine.PulumiCli, sessions: int, shard: int, parallel: int | None,
) -> dict[str, Timed]:
    """The same sessions as stacks of at most ``shard`` sessions each, deployed one after
    another, then destroyed one after another (docs/engine.md, "Large fleets")."""
    count = -(-sessions // shard)
    with bench_stack(cli, "bench-shards-", parallel=parallel, max_tasks=max(50, sessions),
                     stacks=count) as (emulator, offline, stacks):
        for index, stack in enumerate(stacks):
            size = min(shard, sessions - index * shard)
            config = stack_config(emulator.url, emulator.app_id, size, None,
                                  first=index * shard)
            offline.write_config(stack, config, STORAGE_SECRETS)
        ups = [_timed_run(stack, "up", emulator) for stack in stacks]
        downs = [_timed_run(stack, "destroy", emulator) for stack in stacks]
        check_clean(emulator, f"sharded round of {sessions}")
    return {"create": Timed(sum(t.seconds for t in ups), sum(t.calls for t in ups)),
            "delete": Timed(sum(t.seconds for t in downs), sum(t.calls for t in downs))}


PUBLISHER_UID: Final = "1001"


def ended_round(cli: engine.PulumiCli, sessions: int, parallel: int | None) -> dict[str, float]:
    """`pulumi destroy` of N sessions that ended on their own (idle: nobody published), with the
    default `agora:failoverGrace`: each stop answers 404, which a failover answers too (S7)."""
    with bench_stack(cli, "bench-ended-", parallel=parallel,
                     max_tasks=max(50, sessions)) as (emulator, offline, (stack,)):
        config = stack_config(emulator.url, emulator.app_id, sessions, None,
                              max_idle_time=rules.MAX_IDLE_TIME.minimum)
        offline.write_config(stack, config, STORAGE_SECRETS)
        # Someone publishes while the sessions start (a create confirms a running task), then
        # everyone leaves and each task ends after maxIdleTime.
        channels = [session["cname"] for session in config[f"{PROJECT}:sessions"].values()]
        for cname in channels:
            emulator.admin.join(cname, PUBLISHER_UID, video=True)
        stack.up(color="never")
        for cname in channels:
            emulator.admin.leave(cname, PUBLISHER_UID)
        deadline = time.monotonic() + 120
        while any(t.get("state") != "gone" for t in emulator.admin.tasks()):
            if time.monotonic() > deadline:
                raise SystemExit("ended round: the idle tasks did not end")
            time.sleep(0.5)
        lines: list[str] = []
        started = time.perf_counter()
        stack.destroy(color="never", on_output=lines.append)
        seconds = time.perf_counter() - started
        said = sum("waiting up to" in line for line in lines)
    return {"seconds": seconds, "grace": float(rules.FAILOVER_SECONDS), "said": said}


def check_clean(emulator: EmulatorHandle, what: str) -> None:
    """Every task stopped (exiting or gone: destroy does not wait for the exit) and no 429."""
    still = [t for t in emulator.admin.tasks() if t.get("state") in ("running", "failover")]
    limited = int(emulator.admin.counters()["rateLimited"])
    if still or limited:
        raise SystemExit(f"{what}: {len(still)} tasks still running, {limited} answers 429")


def replace_round(cli: engine.PulumiCli, sessions: int, parallel: int | None
                  ) -> dict[str, float]:
    """`pulumi up` of N sessions, then `pulumi up` again with a new captureInterval (a
    delete-before-replace of every session): its time, the 53 answers, failures and orphans."""
    with bench_stack(cli, "bench-replace-", parallel=parallel) as (emulator, offline, (stack,)):
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
        time_scale=1.0, latency_ms=LATENCY_MS, storage_dir=Path(tmp) / "storage",
        max_tasks=max(50, sessions),
    ) as emulator:
        run = peer.run_peer(emulator, sessions)
        if run.failures:
            raise SystemExit(f"peer round of {sessions}: {run.failures} failures")
    return run


def _said(row: str) -> str:
    """A table row, also said on stderr as soon as it is measured (a long run that fails later
    keeps what it measured)."""
    print(f"measured: {row}", file=sys.stderr, flush=True)
    return row


def _peer_cell(run: peer.PeerRun, seconds: float) -> str:
    """The peer's time, with the 429s it rode out (it spaces requests as sent, not answered)."""
    return f"{seconds:.1f}" + (f" ({run.rate_limited} x 429)" if run.rate_limited else "")


def floor_round(
    cli: engine.PulumiCli, resources: int, operations: Sequence[str],
    env: dict[str, str] | None = None, *, parallel: int | None = None,
) -> dict[str, Timed]:
    """The engine with N do-nothing dynamic resources: its own cost for N resources."""
    env = dict(env or {})
    if parallel is not None:
        env["PULUMI_PARALLEL"] = str(parallel)
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


TARGETS: Final = {"create": 1.15, "delete": 1.2}  # engine / peer (README, "Performance")
LARGE_TARGET: Final = 1.3


def _bound(calls: int) -> float:
    """The Agora budget's bound: every call at 10 per second (S10)."""
    return calls / rules.QPS_PER_APP_ID


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, nargs="*", default=[50, 200])
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                        help="PULUMI_PARALLEL for every engine run (docs/engine.md, 'Agora's "
                             "pace'); 0 keeps Pulumi's default of 4 x CPUs")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="agora:pollInterval, seconds, on both paths (default: the provider's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="concurrent RPCs ProviderHost is sent (default: --parallel)")
    parser.add_argument("--ended", type=int, default=50,
                        help="destroy of N sessions that ended on their own (0 skips)")
    parser.add_argument("--large", type=int, default=1000,
                        help="N sessions as one stack and as shards, beside the peer (0 skips)")
    parser.add_argument("--shard-size", type=int, default=200)
    parser.add_argument("--replace-sessions", type=int, default=10)
    parser.add_argument("--preview-sessions", type=int, default=1000)
    args = parser.parse_args(argv)
    cli = engine.find_cli(REPO)
    if cli is None:
        raise SystemExit(engine.cli_missing_message())
    parallel = args.parallel or None
    threads = args.threads or args.parallel or 4 * (os.cpu_count() or 1)

    started = time.perf_counter()
    rows: list[str] = []
    where: list[str] = []
    missed = 0
    for n in args.sessions:
        peer_run = peer_round(n)
        on_engine = engine_round(cli, n, args.poll_interval, parallel)
        hosted = deploy.run_round(n, time_scale=1.0, poll_interval=args.poll_interval,
                                  threads=threads, repo=REPO, max_tasks=n)
        if not hosted.ok:
            raise SystemExit(f"ProviderHost round of {n} failed")
        floor = floor_round(cli, n, ("up", "destroy"), parallel=parallel)
        bare = floor_round(cli, n, ("up", "destroy"), dict(engine.PREVIEW_ENV),
                           parallel=parallel)
        peer_seconds = {"create": peer_run.create_seconds, "delete": peer_run.stop_seconds}
        for phase, op in (("create", "up"), ("delete", "destroy")):
            timed = on_engine[phase]
            host_phase = next(p for p in hosted.phases if p.name == phase)
            ratio = timed.seconds / peer_seconds[phase]
            verdict = "met" if ratio <= TARGETS[phase] else "MISSED"
            missed += verdict == "MISSED"
            rows.append(_said(
                f"| {n} | `pulumi {op}` | {timed.seconds:.1f} "
                f"| {_peer_cell(peer_run, peer_seconds[phase])} "
                f"| {ratio:.2f}x (<= {TARGETS[phase]}x: {verdict}) | {timed.calls} |"))
            checkpoints = floor[op].seconds - bare[op].seconds
            where.append(_said(
                f"| {n} | `pulumi {op}` | {timed.seconds:.1f} | {_bound(timed.calls):.1f} "
                f"| {host_phase.seconds:.1f} | {floor[op].seconds:.1f} | {checkpoints:.1f} |"))
    large: list[str] = []
    if args.large:
        n = args.large
        peer_run = peer_round(n)
        whole = engine_round(cli, n, args.poll_interval, parallel)
        shards = sharded_round(cli, n, args.shard_size, parallel)
        peer_seconds = {"create": peer_run.create_seconds, "delete": peer_run.stop_seconds}
        for phase, op in (("create", "up"), ("delete", "destroy")):
            for label, timed in (("one stack", whole[phase]),
                                 (f"{-(-n // args.shard_size)} shards of {args.shard_size}, "
                                  "one after another", shards[phase])):
                ratio = timed.seconds / peer_seconds[phase]
                large.append(_said(
                    f"| `pulumi {op}` | {label} | {timed.seconds:.1f} | "
                    f"{_peer_cell(peer_run, peer_seconds[phase])} | {ratio:.2f}x "
                    f"| {_bound(timed.calls):.1f} |"))
    ended = ended_round(cli, args.ended, parallel) if args.ended else None
    if ended is not None:
        _said(f"destroy of {args.ended} ended sessions: {ended['seconds']:.1f} s")
    replaced = replace_round(cli, args.replace_sessions, parallel) if args.replace_sessions else None
    previews = {}
    for label, env in PREVIEW_SETTINGS.items() if args.preview_sessions else ():
        project = preview_round(cli, args.preview_sessions, env)
        floor_preview = floor_round(cli, args.preview_sessions, ("preview",), env)["preview"]
        previews[label] = (project, floor_preview.seconds)
    elapsed = time.perf_counter() - started

    poll = ("the provider's default" if args.poll_interval is None
            else f"{args.poll_interval:g} s")
    print(f"## engine: `pulumi up` / `pulumi destroy` of N sessions ({elapsed:.0f} s in all)\n")
    print(f"emulator: latency {LATENCY_MS} ms, {rules.QPS_PER_APP_ID} requests/s, time scale 1 "
          f"(ready after {READY_SECONDS} s, gone {EXIT_SECONDS} s after stop; task limit raised "
          f"to N); agora:pollInterval {poll}; PULUMI_PARALLEL "
          f"{parallel or 'unset (4 x CPUs)'}; Pulumi CLI {cli.version} ({cli.source}); no 429 "
          "answered to this product in any run (the peer's, retried, are shown beside it)\n")
    print("| sessions | run | engine s | peer s | engine / peer | calls |")
    print("|---:|---|---:|---:|---|---:|")
    print("\n".join(rows))
    print("\nWhere the time goes (seconds): the Agora budget's bound (calls / 10 per s); the "
          "same steps sent to the provider alone (ProviderHost, no engine); the engine's own "
          "cost for N do-nothing resources, and the part of it that is checkpoint writes (the "
          "same with PULUMI_SKIP_CHECKPOINTS, measured only):\n")
    print("| sessions | run | engine | Agora budget | provider alone | engine floor "
          "| of it checkpoints |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    print("\n".join(where))
    if large:
        print(f"\n{args.large} sessions (target {LARGE_TARGET}x the peer):\n")
        print("| run | as | engine s | peer s | engine / peer | Agora budget s |")
        print("|---|---|---:|---:|---:|---:|")
        print("\n".join(large))
    if ended is not None:
        graces = ended["seconds"] / ended["grace"]
        print(f"\n`pulumi destroy` of {args.ended} sessions that had ended on their own "
              f"(agora:failoverGrace {ended['grace']:g} s): {ended['seconds']:.1f} s = "
              f"{graces:.2f} graces (target < 2); {ended['said']:g} lines said what was "
              "awaited")
    if replaced is not None:
        print()
        print(f"replace of {args.replace_sessions} sessions (captureInterval 5 -> 10): "
              f"{replaced['seconds']:.1f} s, {replaced['conflicts']:g} answers 53 ridden out, "
              f"{replaced['failed']:g} failed runs, {replaced['orphans']:g} orphans")
    print()
    n = args.preview_sessions
    if previews:
        print(f"| `pulumi preview` of {n} | this project s | {n} do-nothing resources s "
              "| ratio | `validate` of the same file s |")
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
          f"--parallel {args.parallel} --threads {threads} --ended {args.ended} "
          f"--large {args.large} --shard-size {args.shard_size} "
          f"--replace-sessions {args.replace_sessions} --preview-sessions {args.preview_sessions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
