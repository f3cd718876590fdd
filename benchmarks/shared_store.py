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
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Final

import engine as engine_bench  # benchmarks/engine.py: the stack file and the environment
from pulumi import automation as auto

from snapshot_resources import engine, rules
from snapshot_resources.testing.emulator import EmulatorHandle
from snapshot_resources.testing.redis import run_redis

TARGET: Final = 1.15


@dataclass(frozen=True)
class Round:
    seconds: float
    calls: int
    limited: int
    busiest: int
    failed: int
    why: str = ""

    @property
    def bound(self) -> float:
        return self.calls / rules.QPS_PER_APP_ID


def _counters(emulator: EmulatorHandle) -> tuple[int, int]:
    counters = emulator.admin.counters()
    return sum(int(v) for v in counters["requests"].values()), int(counters["rateLimited"])


def deploy_round(cli: engine.PulumiCli, stacks: int, sessions: int, parallel: int,
                 store_url: str | None) -> Round:
    """Deploy ``stacks`` stacks at once (module docstring), then destroy them."""
    with engine_bench.bench_stack(cli, "bench-shared-", parallel=parallel,
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
        failures: list[BaseException] = []
        go = threading.Event()

        def up(stack: auto.Stack) -> None:
            go.wait()
            try:
                stack.up(color="never")
            except Exception as error:  # counted and reported
                failures.append(error)

        threads = [threading.Thread(target=up, args=(stack,)) for stack in made]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        go.set()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        calls, limited = _counters(emulator)
        busiest = int(emulator.admin.counters()["maxRequestsPerSecond"].get(emulator.app_id, 0))
        for stack in made:
            stack.destroy(color="never")
        still = [t for t in emulator.admin.tasks() if t.get("state") in ("running", "failover")]
        if still:
            raise SystemExit(f"{len(still)} tasks still running after the destroys")
    why = str(failures[0]).strip().splitlines()[-1][:300] if failures else ""
    return Round(seconds, calls - calls_before, limited - limited_before, busiest,
                 len(failures), why)


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
