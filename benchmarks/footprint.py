"""Footprint: provider pickle, state per session, import time, provider-process memory.

* **Serialized provider**: ``__provider`` as ``pulumi.dynamic.Resource`` builds it (dill pickle,
  base64) for ``SnapshotSessionProvider`` and for the ``NoopProvider`` floor.  Design: pickled by
  reference, "~70 bytes, nothing secret" (provider.py): checked as naming the class's module and
  name in at most 100 bytes (a by-value pickle carries code objects: kilobytes).
* **State per session**: a session created through ``ProviderHost`` against the emulator; its
  outputs as the engine stores them (secret markers kept) serialized with the SDK's
  ``pulumi.runtime.rpc.serialize_properties`` into a ``google.protobuf.Struct`` (``ByteSize()``),
  and as compact JSON, with and without ``__provider``.
* **Import time** of ``snapshot_resources`` on top of ``pulumi``: in ``--imports`` fresh
  subprocesses each, ``import pulumi`` alone and ``import pulumi; import snapshot_resources;
  snapshot_resources.SnapshotSession`` (touching the name a program uses loads the resource
  module, the provider and the spec).  The figure is median(program) - median(pulumi alone);
  the in-process delta (timestamps around the second import in the same subprocess) is shown as a
  cross-check.  ``python -X importtime`` then lists what the program adds on top of ``pulumi``
  and confirms that no vendor SDK (``pulumi_aws``, ``pulumi_alicloud``, ``pulumi_gcp``,
  ``pulumi_azure_native``) is imported.
* **Peak memory**: ``VmHWM`` (peak resident set) and ``VmRSS`` from ``/proc/<pid>/status`` of the
  ``python -m pulumi.dynamic`` child after Configure, after one create, and after ``--sessions``
  creates.  The emulator runs at time scale 50 without latency: memory does not depend on either.

Run: ``.venv/bin/python benchmarks/footprint.py`` (prints the exact command with its options).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from pulumi.runtime import rpc

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import run_emulator
from snapshot_resources.testing.noop_provider import NoopProvider
from snapshot_resources.testing.provider_host import (
    PROVIDER_KEY,
    HostedResource,
    ProviderHost,
    pickled_size,
    provider_property,
    secret,
)

VENDOR_SDKS: Final = ("pulumi_aws", "pulumi_alicloud", "pulumi_gcp", "pulumi_azure_native")
# provider.py: "~70 bytes, nothing secret"; a by-value pickle would be kilobytes
# (docs/pulumi-dynamic.md section 1), so "by reference" is read as at most 100 bytes.
PROVIDER_TARGET_BYTES: Final = 100
PROGRAM_IMPORT: Final = "import snapshot_resources; snapshot_resources.SnapshotSession"
TIME_SCALE: Final = 50.0

_TIMED = """\
import time
t0 = time.perf_counter()
import pulumi
t1 = time.perf_counter()
{extra}
t2 = time.perf_counter()
print(t1 - t0, t2 - t0)
"""


def session_inputs(app_id: str, index: int) -> dict[str, Any]:
    """A realistic session (README figures), storage keys secret as a program sends them."""
    return {
        "appId": app_id,
        "cname": f"footprint-{index:03d}",
        "uid": "527841",
        "resourceExpiredHour": 720,
        "recordingConfig": {
            "channelType": 1,
            "streamTypes": 2,
            "maxIdleTime": 2_592_000,  # 30 days: no task idles out on the fast clock
            "subscribeVideoUids": ["101", "102"],
            "subscribeUidGroup": 0,
        },
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storage": secret({
            "vendor": 1,
            "region": 0,
            "bucket": "my-snapshots",
            "accessKey": "AKIAEXAMPLEEXAMPLE00",
            "secretKey": "footprint-secret-key-not-real-000000000",
            "fileNamePrefix": ["snapshots", f"s{index:03d}"],
        }),
    }


# --- provider pickle ----------------------------------------------------------------------------


def provider_rows() -> list[str]:
    rows = []
    for label, provider in (("NoopProvider (floor)", NoopProvider()),
                            ("SnapshotSessionProvider", SnapshotSessionProvider())):
        value = provider_property(provider)
        raw = base64.b64decode(value)
        cls = type(provider)
        # By reference: the pickle names the class's module and name and carries no code.
        by_reference = (cls.__module__.encode() in raw and cls.__qualname__.encode() in raw
                        and len(raw) <= PROVIDER_TARGET_BYTES)
        rows.append(f"| {label} | {pickled_size(provider)} | {len(value)} "
                    f"| {cls.__module__}.{cls.__qualname__} "
                    f"| by reference, <= {PROVIDER_TARGET_BYTES} B: "
                    f"{'met' if by_reference else 'MISSED'} |")
    return rows


# --- state per session --------------------------------------------------------------------------


def _struct_size(props: Mapping[str, Any]) -> int:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        struct = loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()
    size: int = struct.ByteSize()
    return size


def state_rows(state: Mapping[str, Any]) -> list[str]:
    rows = []
    without = {k: v for k, v in state.items() if k != PROVIDER_KEY}
    for label, props in (("outputs incl. __provider", state), ("outputs only", without)):
        text = json.dumps(props, separators=(",", ":"), sort_keys=True)
        rows.append(f"| {label} | {len(props)} | {_struct_size(props)} | {len(text.encode())} |")
    return rows


# --- import time --------------------------------------------------------------------------------


def _timed_import(extra: str) -> tuple[float, float]:
    code = _TIMED.format(extra=extra)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=_clean_env()).stdout.split()
    return float(out[0]), float(out[1])


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


@dataclass(frozen=True)
class ImportTimes:
    pulumi_ms: float
    program_ms: float
    in_process_ms: float
    runs: int

    @property
    def added_ms(self) -> float:
        return self.program_ms - self.pulumi_ms


def import_times(runs: int) -> ImportTimes:
    pulumi_only: list[float] = []
    program: list[float] = []
    delta: list[float] = []
    for _ in range(runs):  # interleaved, so drift hits both alike
        pulumi_only.append(_timed_import("")[1])
        first, total = _timed_import(PROGRAM_IMPORT)
        program.append(total)
        delta.append(total - first)
    return ImportTimes(statistics.median(pulumi_only) * 1000, statistics.median(program) * 1000,
                       statistics.median(delta) * 1000, runs)


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def _importtime(code: str) -> dict[str, tuple[int, int]]:
    """module -> (self us, cumulative us) from ``python -X importtime``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True, env=_clean_env()).stderr
    found: dict[str, tuple[int, int]] = {}
    for line in err.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            found[match.group(4)] = (int(match.group(1)), int(match.group(2)))
    return found


def import_listing(top: int) -> tuple[list[str], list[str], int, int]:
    """(rows of the heaviest modules added on top of pulumi, vendor SDKs seen, added modules,
    their summed self time in us)."""
    base = _importtime("import pulumi")
    full = _importtime(f"import pulumi; {PROGRAM_IMPORT}")
    added = {m: t for m, t in full.items() if m not in base}
    vendors = sorted(m for m in full if m.split(".")[0] in VENDOR_SDKS)
    heaviest = sorted(added.items(), key=lambda item: item[1][0], reverse=True)[:top]
    rows = [f"| {m} | {s / 1000:.1f} | {c / 1000:.1f} |" for m, (s, c) in heaviest]
    return rows, vendors, len(added), sum(s for s, _ in added.values())


# --- peak memory --------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0])
    return found


@dataclass(frozen=True)
class Hosted:
    memory_rows: list[str]
    state: dict[str, Any]  # one created session's outputs as the engine stores them
    created: int


def host_sessions(sessions: int, repo: Path) -> Hosted:
    """Create ``sessions`` sessions in one provider host; memory read along the way."""
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp, run_emulator(
        time_scale=TIME_SCALE, storage_dir=Path(tmp)
    ) as emulator, ProviderHost(cwd=repo, task_journal=Path(tmp) / "task-journal.sqlite3") as host:
        pid = host.process.pid
        host.configure(
            {
                "agora:customerId": emulator.customer_id,
                "agora:customerSecret": emulator.customer_secret,
                "agora:endpoint": emulator.url,
                "agora:pollInterval": "0.05",
            },
            secret_keys=("agora:customerSecret",),
        )

        def show(label: str) -> None:
            status = _proc_status(pid)
            rows.append(f"| {label} | {status['VmHWM'] / 1024:.1f} | "
                        f"{status['VmRSS'] / 1024:.1f} |")

        show("after Configure (provider not loaded yet)")
        provider = SnapshotSessionProvider()
        resources: list[HostedResource] = [
            host.resource(provider, name=f"session-{i:03d}") for i in range(sessions)
        ]
        for i, resource in enumerate(resources):
            resource.check(session_inputs(emulator.app_id, i))
        show(f"after {sessions} Checks (provider unpickled, package imported)")
        resources[0].create()
        show("after 1 create")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda r: r.create(), resources[1:]))
        show(f"after {sessions} creates ({sessions} sessions hosted)")
        return Hosted(rows, resources[0].state,
                      sum(1 for r in resources if r.id is not None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--imports", type=int, default=15, help="fresh subprocesses per variant")
    parser.add_argument("--sessions", type=int, default=50, help="sessions hosted for memory")
    parser.add_argument("--top", type=int, default=12, help="heaviest added modules listed")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    load_before = os.getloadavg()

    times = import_times(args.imports)
    listing, vendors, added, added_self_us = import_listing(args.top)
    hosted = host_sessions(args.sessions, repo)

    print("## footprint\n")
    print("### Serialized provider (`__provider`)\n")
    print("| provider | pickled bytes | base64 chars in state | pickled as | target |")
    print("|---|---:|---:|---|---|")
    print("\n".join(provider_rows()))
    print("\n### State per session (one created session's outputs, as stored)\n")
    print("| serialized | keys | protobuf Struct bytes | compact JSON bytes |")
    print("|---|---:|---:|---:|")
    print("\n".join(state_rows(hosted.state)))
    print(f"\n### Import time on top of `import pulumi` (median of {times.runs} fresh "
          "subprocesses each)\n")
    print("| measured | ms |")
    print("|---|---:|")
    print(f"| `import pulumi` | {times.pulumi_ms:.1f} |")
    print(f"| `import pulumi; {PROGRAM_IMPORT}` | {times.program_ms:.1f} |")
    print(f"| difference (snapshot_resources on top of pulumi) | {times.added_ms:.1f} |")
    print(f"| cross-check: in-process delta after `import pulumi` | {times.in_process_ms:.1f} |")
    print(f"\n`-X importtime`: {added} modules added on top of pulumi, {added_self_us / 1000:.1f} ms "
          f"self time in total; vendor SDKs imported: {', '.join(vendors) or 'none'} "
          f"({'met' if not vendors else 'MISSED'}: none of {', '.join(VENDOR_SDKS)})\n")
    print("| heaviest added module | self ms | cumulative ms |")
    print("|---|---:|---:|")
    print("\n".join(listing))
    print(f"\n### Provider process memory (`python -m pulumi.dynamic`, {hosted.created} sessions)\n")
    print("| point | VmHWM MiB (peak) | VmRSS MiB |")
    print("|---|---:|---:|")
    print("\n".join(hosted.memory_rows))
    load_after = os.getloadavg()
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; python {platform.python_version()}, "
          f"pulumi {metadata.version('pulumi')}, dill {metadata.version('dill')}")
    print(f"reproduce: .venv/bin/python benchmarks/footprint.py --imports {args.imports} "
          f"--sessions {args.sessions} --top {args.top}")
    return 0 if not vendors and hosted.created == args.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
