"""Fault soak, benchmark-sized: session lifecycles through the hosted provider under 20 % faults.

The driver is the suite's (``tests/test_soak.py``, ``run_soak``): each session goes create ->
update (subscription list) -> replace (captureInterval: delete, then create) -> delete, for
``--cycles`` cycles, from ``--workers`` threads (the engine's 4 workers), through
``python -m pulumi.dynamic`` over gRPC, against the emulator on a 50x clock behind a loopback
proxy.  The emulator injects ``--fault-rate`` faults (5xx, 206 code 65, 429, dropped connection)
from a fixed seed, the proxy adds latency spikes, ``--failovers`` running sessions fail over right
after their first create, and a failed operation is retried as a user re-running ``pulumi up``
would (at most ``--max-tries`` tries).  QPS is Agora's 10 per App ID on both sides.

``--single-operation-faults query stop`` (the default) adds a run per operation with the same
fault rate on that operation only: creates that cannot confirm a task, deletes that cannot stop
one.  ``--lost-answer-rate R`` (default 0.02; 0 to skip) adds a last run in which the proxy
also loses R of the successful acquire/start/update/stop answers *after* the emulator did the
work (dropped connection), the case the emulator's own faults never produce; its orphans are the
gap the suite marks xfail.

``--interrupt-rounds N`` (default 30; 0 to skip) adds the interruption column
(``tests/test_soak_interrupt.py``): N rounds in which sessions move to random desired states
while the provider is interrupted at a random moment (the engine gone, the CLI's SIGINT, or
``kill -9`` of the provider), then a run that converges; no task may run that no state holds,
except one whose start's answer the killed provider never read (the remaining gap, named by the
task journal).

Reproduce:  .venv/bin/python benchmarks/soak.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

# The suite's driver, found through tests/ as pytest finds it.
from test_soak import (
    FAULT_KINDS,
    ProxyFaults,
    SoakPlan,
    SoakReport,
    failure_summary,
    run_soak,
)
from test_soak_interrupt import InterruptPlan, InterruptReport, run_interrupt_soak

LOST_OPERATIONS = ("acquire", "start", "update", "stop")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--spike-rate", type=float, default=0.05)
    parser.add_argument("--spike-ms", type=int, default=200)
    parser.add_argument("--max-tries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--lost-answer-rate", type=float, default=0.02)
    parser.add_argument("--interrupt-rounds", type=int, default=30)
    parser.add_argument("--single-operation-faults", nargs="*", default=["query", "stop"],
                        help="also run with --fault-rate on only this operation (each a column)")
    return parser.parse_args(argv)


def command(args: argparse.Namespace) -> str:
    return (
        f".venv/bin/python benchmarks/soak.py --sessions {args.sessions} --cycles {args.cycles} "
        f"--workers {args.workers} --fault-rate {args.fault_rate:g} --failovers {args.failovers} "
        f"--spike-rate {args.spike_rate:g} --spike-ms {args.spike_ms} "
        f"--max-tries {args.max_tries} --seed {args.seed} "
        f"--lost-answer-rate {args.lost_answer_rate:g} --interrupt-rounds {args.interrupt_rounds} "
        f"--single-operation-faults {' '.join(args.single_operation_faults)}"
    )


def rows(report: SoakReport) -> list[tuple[str, str]]:
    ops = report.operations
    kinds = Counter(op.kind for op in ops)
    faults = ", ".join(f"{kind} {report.faults.get(kind, 0)}" for kind in FAULT_KINDS)
    lost = ", ".join(f"{op} {n}" for op, n in sorted(report.lost_answers.items())) or "0"
    retries = [op.tries for op in ops if op.converged and op.tries > 1]
    return [
        ("operations attempted", f"{len(ops)} ({', '.join(f'{k} {n}' for k, n in kinds.items())})"),
        ("succeeded first time", str(report.succeeded_first_time)),
        ("failed, converged on retry", f"{report.converged_on_retry}"
         + (f" (max {max(retries)} tries)" if retries else "")),
        ("never converged", str(len(report.never_converged))),
        ("REST requests (emulator)", str(report.requests)),
        ("faults injected (emulator)", f"{sum(report.faults.values())}: {faults}"),
        ("latency spikes (proxy)", f"{report.spikes} x {report.plan.proxy.spike_ms} ms"),
        ("answers lost after the work", lost),
        ("failovers", str(report.failovers)),
        ("orphan tasks at the end", str(len(report.orphans))),
        ("wall time", f"{report.wall_seconds:.1f} s"),
    ]


def print_table(titles: list[str], columns: list[list[tuple[str, str]]]) -> None:
    labels = [label for label, _ in columns[0]]
    widths = [max(len(label) for label in labels)]
    widths += [max(len(title), *(len(v) for _, v in col)) for title, col in zip(titles, columns,
                                                                               strict=True)]
    print("| " + " | ".join(t.ljust(w) for t, w in zip(["", *titles], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for index, label in enumerate(labels):
        cells = [label, *(col[index][1] for col in columns)]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = SoakPlan(
        sessions=args.sessions, cycles=args.cycles, workers=args.workers,
        fault_rate=args.fault_rate, seed=args.seed, failovers=args.failovers,
        proxy=ProxyFaults(spike_rate=args.spike_rate, spike_ms=args.spike_ms, seed=args.seed),
        max_tries=args.max_tries,
    )
    plans = [("emulator faults", plan)]
    # The same rate on one operation only: creates that cannot confirm, deletes that cannot stop.
    for operation in args.single_operation_faults:
        plans.append((f"{operation}-only faults", replace(
            plan, fault_operations=(operation,), failovers=0)))
    if args.lost_answer_rate > 0:
        lossy = replace(plan.proxy, lost_rate=args.lost_answer_rate,
                        lost_operations=LOST_OPERATIONS)
        plans.append((f"+ {args.lost_answer_rate:.0%} answers lost", replace(plan, proxy=lossy)))
    reports: list[SoakReport] = []
    for _, each in plans:
        with tempfile.TemporaryDirectory(prefix="soak-") as storage:
            reports.append(run_soak(each, Path(storage)))

    print(f"Fault soak: {plan.sessions} sessions x {plan.cycles} cycles of create -> update -> "
          f"replace -> delete, {plan.workers} threads, {plan.fault_rate:.0%} faults, "
          f"time scale 50, QPS 10")
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{platform.system()} ({_cpus()} CPUs)\n")
    print_table([title for title, _ in plans], [rows(report) for report in reports])
    for (title, _), report in zip(plans, reports, strict=True):
        failures = Counter(failure_summary(text) for text in report.failures)
        print(f"\nFailures seen ({title}), by message:")
        for text, count in failures.most_common():
            print(f"  {count:4d}  {text}")
        for op in report.never_converged:
            print(f"  never converged: {op.session} {op.kind} after {op.tries} tries")
        for task in report.orphans:
            print(f"  orphan: sid {task['sid']} on channel {task['cname']!r} "
                  f"(status {task['status']}, {task['state']})")
    interrupted: InterruptReport | None = None
    if args.interrupt_rounds > 0:
        with tempfile.TemporaryDirectory(prefix="soak-") as storage:
            os.environ["PULUMI_HOME"] = str(Path(storage) / "pulumi-home")  # its own journal
            interrupted = run_interrupt_soak(
                InterruptPlan(rounds=args.interrupt_rounds, seed=args.seed), Path(storage) / "s")
        print("\nInterruption column:")
        print_table(["interruptions"], [interrupt_rows(interrupted)])
    print(f"\nReproduce: {command(args)}")
    # Every column but the lost-answers one (the pinned gap) must converge with no orphan.
    checked = reports[: 1 + len(args.single_operation_faults)]
    clean = all(not r.never_converged and not r.orphans for r in checked)
    if interrupted is not None:
        clean = clean and not interrupted.orphans_after_rounds and not interrupted.duplicates
    return 0 if clean else 1


def interrupt_rows(report: InterruptReport) -> list[tuple[str, str]]:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.interruptions.items()))
    return [
        ("rounds (sessions, threads, faults)", f"{report.plan.rounds} ({report.plan.sessions}, "
         f"{report.plan.workers}, {report.plan.fault_rate:.0%})"),
        ("interruptions", kinds),
        ("calls cut short", str(report.interrupted_calls)),
        ("calls failed (faults)", str(report.failed_calls)),
        ("tasks stopped by their interrupted create", str(report.stopped_on_interrupt)),
        ("tasks adopted by the next create", str(report.adopted)),
        ("orphans (no state, no journal entry)", str(len(report.orphans_after_rounds))),
        ("start answer never read (journal names it)", str(len(report.sid_never_received))),
        ("two tasks on one channel", str(len(report.duplicates))),
        ("wall time", f"{report.wall_seconds:.1f} s"),
    ]


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
