"""Several stacks on one App ID deployed at once, with and without the shared store
(docs/shared-store.md).

``--stacks`` stacks (default 4) of ``--sessions`` sessions each (default 50, each on its own
channel), one App ID, are deployed at the same moment by as many `pulumi up` runs (each its own
CLI and dynamic-provider process), against one emulator that enforces Agora's 10 requests/s per
App ID (100 ms latency, time scale 1), in one invocation:

* **with the store**: ``agora:sharedStore`` pointing at a real redis-server on loopback (one
  budget for the four providers);
* **without it** (the status quo): each provider keeps its own budget of 10/s.

For each it prints the wall time from the first start to the last `pulumi up`'s end, the calls
Agora counted, the bound they allow (calls / 10 per s), the ratio (target with the store:
<= 1.15x), the 429 answers and the busiest second Agora saw. Every stack is destroyed after its
round, and nothing may be left running. Run: ``.venv/bin/python benchmarks/shared_store.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

import engine as engine_bench  # benchmarks/engine.py: the stack file and the environment

from snapshot_resources import engine, rules
from snapshot_resources.testing.emulator import EmulatorHandle
from snapshot_resources.testing.redis import run_redis

TARGET: Final = 1.15
RUNNER: Final = engine_bench.REPO / "tests" / "support" / "engine_run.py"  # one `up` per process


@dataclass(frozen=True)
class Round:
    seconds: float
    calls: int
    limited: int
    busiest: int
    failed: int
    why: str = ""
    first_call: float = 0.0  # seconds after the start when Agora saw the first call
    last_call: float = 0.0  # ... and the last

    @property
    def bound(self) -> float:
        return self.calls / rules.QPS_PER_APP_ID


def _counters(emulator: EmulatorHandle) -> tuple[int, int]:
    counters = emulator.admin.counters()
    return sum(int(v) for v in counters["requests"].values()), int(counters["rateLimited"])


def deploy_round(cli: engine.PulumiCli, stacks: int, sessions: int, parallel: int,
                 store_url: str | None) -> Round:
    """Deploy ``stacks`` stacks at once (module docstring), then destroy them."""
    with tempfile.TemporaryDirectory(prefix="bench-shared-runs-") as tmp, \
            engine_bench.bench_stack(cli, "bench-shared-", parallel=parallel,
                                     max_tasks=stacks * sessions + 50,
                                     stacks=stacks) as (emulator, offline, made):
        for index, stack in enumerate(made):
            config = engine_bench.stack_config(emulator.url, emulator.app_id, sessions, None,
                                               first=index * sessions)
            secrets = dict(engine_bench.STORAGE_SECRETS)
            if store_url is not None:
                secrets["agora:sharedStore"] = store_url  # a secret: it holds the password
            offline.write_config(stack, config, secrets)
        calls_before, limited_before = _counters(emulator)
        logs = [Path(tmp) / f"{stack.name}.log" for stack in made]
        requests = []
        for stack, log in zip(made, logs, strict=True):
            request = Path(tmp) / f"{stack.name}.json"
            request.write_text(json.dumps({
                "operation": "up", "cli": str(cli.bin_dir), "cwd": str(stack.workspace.work_dir),
                "stack": stack.name, "env": offline.env, "log": str(log)}))
            requests.append(request)
        # Each `pulumi up` in a process of its own, as CI jobs run them (inline programs share
        # one process's Pulumi runtime otherwise).
        started = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, str(RUNNER), str(request)],
                                      env={**os.environ, **offline.env})
                     for request in requests]
        samples: list[tuple[float, int]] = []
        while any(process.poll() is None for process in processes):
            samples.append((time.perf_counter() - started, _counters(emulator)[0]))
            time.sleep(0.25)
        seconds = time.perf_counter() - started
        moving = [at for (at, count), (_, before) in zip(samples[1:], samples, strict=False)
                  if count > before]
        failures = []
        for process, log in zip(processes, logs, strict=True):
            if process.returncode != 0:
                said = [line.strip() for line in log.read_text().splitlines()
                        if "error" in line.lower()]
                failures.append("\n".join(said[-3:]) or f"exit status {process.returncode}")
        calls, limited = _counters(emulator)
        busiest = int(emulator.admin.counters()["maxRequestsPerSecond"].get(emulator.app_id, 0))
        for stack in made:
            stack.destroy(color="never")
        still = [t for t in emulator.admin.tasks() if t.get("state") in ("running", "failover")]
        if still:
            raise SystemExit(f"{len(still)} tasks still running after the destroys")
    why = " / ".join(failures[0].splitlines())[:600] if failures else ""
    return Round(seconds, calls - calls_before, limited - limited_before, busiest,
                 len(failures), why, moving[0] if moving else 0.0,
                 moving[-1] if moving else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=engine_bench.DEFAULT_PARALLEL)
    args = parser.parse_args(argv)
    cli = engine.find_cli(engine_bench.REPO)
    if cli is None:
        raise SystemExit(engine.cli_missing_message())
    started = time.perf_counter()
    with run_redis(password="bench-store-password") as server:  # noqa: S106 - a local server
        shared = deploy_round(cli, args.stacks, args.sessions, args.parallel, server.url)
    alone = deploy_round(cli, args.stacks, args.sessions, args.parallel, None)
    elapsed = time.perf_counter() - started

    total = args.stacks * args.sessions
    print(f"## {args.stacks} stacks of {args.sessions} sessions on one App ID, deployed at once "
          f"({elapsed:.0f} s in all)\n")
    print(f"emulator: latency {engine_bench.LATENCY_MS} ms, {rules.QPS_PER_APP_ID} requests/s "
          f"per App ID, time scale 1; PULUMI_PARALLEL {args.parallel} per `pulumi up`; "
          f"Pulumi CLI {cli.version} ({cli.source})\n")
    print("| run | sessions | wall s | calls | bound s (calls / 10) | wall / bound | 429s "
          "| busiest second | failed runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, run in (("with the shared store", shared), ("without (each process alone)",
                                                            alone)):
        ratio = run.seconds / run.bound if run.bound else float("nan")
        print(f"| {label} | {total} | {run.seconds:.1f} | {run.calls} | {run.bound:.1f} | "
              f"{ratio:.2f}x | {run.limited} | {run.busiest} | {run.failed} |")
    print("\nWhere the time goes (s): before Agora saw the first call (the CLIs, programs and "
          "providers starting), while calls flowed (beside the bound), after the last call:\n")
    print("| run | before the first call | calls flowing | bound | after the last call |")
    print("|---|---:|---:|---:|---:|")
    for label, run in (("with the shared store", shared), ("without", alone)):
        print(f"| {label} | {run.first_call:.1f} | {run.last_call - run.first_call:.1f} | "
              f"{run.bound:.1f} | {run.seconds - run.last_call:.1f} |")
    for label, run in (("with the store", shared), ("without", alone)):
        if run.why:
            print(f"\n{label}: {run.failed} `pulumi up` runs failed; the first said: {run.why}")
    verdict = "met" if shared.limited == 0 and not shared.failed \
        and shared.seconds <= TARGET * shared.bound else "missed"
    print(f"\ntarget with the store: zero 429s and wall <= {TARGET}x the bound: {verdict}")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f}; python "
          f"{platform.python_version()}, pulumi SDK {metadata.version('pulumi')}, redis-py "
          f"{metadata.version('redis')}")
    print(f"reproduce: .venv/bin/python benchmarks/shared_store.py --stacks {args.stacks} "
          f"--sessions {args.sessions} --parallel {args.parallel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
