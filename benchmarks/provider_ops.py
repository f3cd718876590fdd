"""Check and Diff per call through the real provider host, against Pulumi's own floor.

Both providers are hosted in the *same* ``python -m pulumi.dynamic`` process (as the engine hosts
every Python dynamic resource of a stack in one process, docs/pulumi-dynamic.md section 1)
and called with the *same* properties, so the floor (``NoopProvider``) pays exactly the cost of
Pulumi's path: SDK serialization, gRPC, the servicer's deserialization and provider-cache lookup.
The ratio is what ``SnapshotSessionProvider``'s own check and diff add on top.  Target: within
1.5x of the floor (README, "Performance").

Method: ``--rounds`` rounds; in each, every provider runs ``--repeats`` Check calls then
``--repeats`` Diff calls, the provider order alternating between rounds so drift hits both alike.
Figures are the median over rounds of each round's median, and the p90 of all calls; the ratio
compares medians measured side by side in this run.  Diff is the engine's every-preview call on an
unchanged resource: ``olds`` are the stored outputs, ``news`` the same inputs.

Run: ``.venv/bin/python benchmarks/provider_ops.py`` (prints the exact command with its options).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pulumi.dynamic import ResourceProvider
from pulumi.runtime import rpc

from snapshot_resources.testing.noop_provider import NoopProvider
from snapshot_resources.testing.provider_host import (
    PROVIDER_KEY,
    ProviderError,
    ProviderHost,
    provider_property,
)

TARGET_RATIO = 1.5
FLOOR = "NoopProvider (floor)"

# A valid session as the provider receives it after the engine strips secret markers: the shape
# of CONTRIBUTING.md "SnapshotSession resource properties" with the figures of the README example.
SESSION_INPUTS: dict[str, Any] = {
    "appId": "0123456789abcdef0123456789abcdef",
    "cname": "lobby",
    "uid": "527841",
    "resourceExpiredHour": 720,
    "recordingConfig": {
        "channelType": 1,
        "streamTypes": 2,
        "maxIdleTime": 300,
        "subscribeVideoUids": ["101", "102"],
        "subscribeUidGroup": 0,
    },
    "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
    "storage": {
        "vendor": 1,
        "region": 0,
        "bucket": "my-snapshots",
        "accessKey": "AKIAEXAMPLEEXAMPLE00",
        "secretKey": "benchmark-secret-key-not-real-0000000000",
        "fileNamePrefix": ["snapshots", "lobby"],
    },
}

# What create() adds on top of the echoed inputs (CONTRIBUTING.md, outputs).
SESSION_OUTPUTS: dict[str, Any] = {
    **SESSION_INPUTS,
    "sid": "38f8e3cfdc474cd56fc1ceba380d7e1a",
    # Agora resource ids are opaque strings of about 200 characters.
    "resourceId": "JyvK8nXHuV1BE64GDkAaBGEscvtHW7v8" * 6,
    "status": 5,
    "startedAt": "2026-11-23T19:00:00.000Z",
    "fileNamePattern": (
        r"^snapshots/lobby/38f8e3cfdc474cd56fc1ceba380d7e1a_lobby__uid_s_\d+"
        r"__uid_e_video_\d{17}\.jpg$"
    ),
    "storageLocation": {"vendor": 1, "bucket": "my-snapshots", "prefix": "snapshots/lobby"},
}


@dataclass(frozen=True)
class Case:
    """One provider to measure, with the properties the engine would send it."""

    label: str
    provider: ResourceProvider
    news: Mapping[str, Any]
    olds: Mapping[str, Any]


@dataclass(frozen=True)
class Stats:
    """Per-call milliseconds of one operation for one provider."""

    operation: str
    provider: str
    round_medians_ms: tuple[float, ...]
    samples_ms: tuple[float, ...]
    failures: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.round_medians_ms)

    @property
    def p90_ms(self) -> float:
        return statistics.quantiles(self.samples_ms, n=10)[-1]


def measure(
    host: ProviderHost,
    provider: ResourceProvider,
    news: Mapping[str, Any],
    olds: Mapping[str, Any],
    repeats: int,
) -> dict[str, tuple[list[float], int]]:
    """Time ``repeats`` Check and ``repeats`` Diff calls of ``provider`` on ``host``.

    Returns, per operation, the per-call milliseconds and the number of Check failures seen (a
    non-zero count means the inputs are not a realistic, valid session).
    """
    provider_value = provider_property(provider)
    urn = host.urn("bench")
    news_p = {**news, PROVIDER_KEY: provider_value}
    olds_p = {**olds, PROVIDER_KEY: provider_value}
    check_ms: list[float] = []
    diff_ms: list[float] = []
    failures = 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = host.check(urn, {}, news_p)
        check_ms.append((time.perf_counter() - start) * 1000)
        failures += len(result.failures)
    for _ in range(repeats):
        start = time.perf_counter()
        host.diff("bench-id", urn, olds_p, news_p)
        diff_ms.append((time.perf_counter() - start) * 1000)
    return {"Check": (check_ms, failures), "Diff": (diff_ms, 0)}


def compare(host: ProviderHost, cases: Sequence[Case], *, repeats: int, rounds: int) -> list[Stats]:
    """Measure every case in every round, alternating their order; the first case is the floor."""
    for case in cases:  # unpickle + configure() happen on the first call: keep them out
        measure(host, case.provider, case.news, case.olds, repeats=3)
    medians: dict[tuple[str, str], list[float]] = {}
    samples: dict[tuple[str, str], list[float]] = {}
    failures: dict[tuple[str, str], int] = {}
    for round_ in range(rounds):
        ordered = cases if round_ % 2 == 0 else list(reversed(cases))
        for case in ordered:
            for operation, (ms, failed) in measure(
                host, case.provider, case.news, case.olds, repeats
            ).items():
                key = (operation, case.label)
                medians.setdefault(key, []).append(statistics.median(ms))
                samples.setdefault(key, []).extend(ms)
                failures[key] = failures.get(key, 0) + failed
    return [
        Stats(
            operation,
            case.label,
            tuple(medians[(operation, case.label)]),
            tuple(samples[(operation, case.label)]),
            failures[(operation, case.label)],
        )
        for operation in ("Check", "Diff")
        for case in cases
    ]


def client_serialization_ms(news: Mapping[str, Any], repeats: int = 200) -> float:
    """Median time the host itself spends serializing a Check request and decoding the answer.

    It is part of both rows (the Go engine marshals in its own time), so the ratios above are
    slightly conservative toward the provider: this printed figure says by how much.
    """

    def once() -> float:
        start = time.perf_counter()
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(rpc.serialize_properties({}, {}))
            struct = loop.run_until_complete(rpc.serialize_properties(dict(news), {}))
        finally:
            loop.close()
        rpc.deserialize_properties(struct, True)
        return (time.perf_counter() - start) * 1000

    return statistics.median(once() for _ in range(repeats))


def table(stats: Sequence[Stats]) -> str:
    floor = {s.operation: s.median_ms for s in stats if s.provider == FLOOR}
    lines = [
        "| operation | provider | median ms | p90 ms | ratio to floor | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for s in stats:
        ratio = s.median_ms / floor[s.operation]
        verdict = "floor" if s.provider == FLOOR else (
            f"<= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'}"
        )
        lines.append(
            f"| {s.operation} | {s.provider} | {s.median_ms:.3f} | {s.p90_ms:.3f} "
            f"| {ratio:.2f}x | {verdict} |"
        )
    return "\n".join(lines)


def _session_case() -> Case | None:
    try:
        module = importlib.import_module("snapshot_resources.provider")
        provider = module.SnapshotSessionProvider()
    except Exception as error:  # report, and still measure the floor
        print(f"SnapshotSessionProvider not available ({type(error).__name__}: {error}); "
              "measuring the floor only.")
        return None
    return Case("SnapshotSessionProvider", provider, SESSION_INPUTS, SESSION_OUTPUTS)


def _works(host: ProviderHost, case: Case) -> bool:
    try:
        measure(host, case.provider, case.news, case.olds, repeats=1)
    except ProviderError as error:
        print(f"{case.label} failed in the provider host ({error.operation}: {error.last_line}); "
              "measuring the floor only.")
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=200, help="calls per operation per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; figures are medians")
    args = parser.parse_args(argv)

    cases = [Case(FLOOR, NoopProvider(), SESSION_INPUTS, SESSION_OUTPUTS)]
    session = _session_case()
    if session is not None:
        cases.append(session)

    repo = Path(__file__).resolve().parents[1]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp, \
            ProviderHost(cwd=repo, task_journal=Path(tmp) / "task-journal.sqlite3") as host:
        host.configure({})
        cases = [cases[0], *(case for case in cases[1:] if _works(host, case))]
        stats = compare(host, cases, repeats=args.repeats, rounds=args.rounds)
    elapsed = time.perf_counter() - started

    print(f"## provider_ops: Check and Diff per call through ProviderHost "
          f"({args.rounds} rounds x {args.repeats} calls, {elapsed:.1f}s)\n")
    print(table(stats))
    print()
    for s in stats:
        if s.failures:
            print(f"note: {s.provider} returned {s.failures} check failures: its inputs are "
                  "not a valid session, so the figure is not representative.")
    print(f"host-side serialization in every Check figure: "
          f"{client_serialization_ms(SESSION_INPUTS):.3f} ms per call (median)")
    print(f"python {platform.python_version()}, pulumi {metadata.version('pulumi')}, "
          f"grpcio {metadata.version('grpcio')}, {platform.machine()} {platform.system()}")
    print(f"reproduce: .venv/bin/python benchmarks/provider_ops.py "
          f"--repeats {args.repeats} --rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
