"""A dynamic provider that reports what it received and fails on demand, for ProviderHost tests.

It is pickled by reference like the real provider, so the provider process must be able to import
``support.probe_provider``: the tests start the host with the directory above ``support/`` as its
working directory, which ``python -m`` puts first on ``sys.path`` (docs/pulumi-dynamic.md
section 1, cwd / PYTHONPATH).

Inputs steer it:
  ``size``         check fails unless "small" or "large" (skipped when unknown, as in preview)
  ``raise``        check/create/update raise RuntimeError with this text
  ``id``           create returns this id (use "" to see the engine's empty-id error)
  ``configKeys``   create reports ``config.get(key)`` for each key, as configure() saw it
  ``envKeys``      create reports these environment variables of the provider process
  ``secretOutput``  create returns it as output ``token``, wrapped secret by the provider itself
  ``barrier``      create waits until four creates are running at once
  ``print``/``log``  create writes the text to stdout / stderr
  ``reportOlds``   diff answers ``replaces = sorted(olds)`` so a test sees what olds were
  ``driftTo``      read reports ``size`` drifted to this value, with new inputs
  ``goneOnRead``   read reports the resource gone (empty id)
  ``failDelete``   delete raises
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.dynamic.config import Config
from pulumi.output import Unknown
from pulumi.runtime import rpc

PARALLELISM = 4
"""The servicer's worker threads (docs/pulumi-dynamic.md section 3, Parallelism)."""

# Lives in the provider process only (the class is pickled by reference, so no global is
# captured).  A Barrier proves concurrency without timing anything: with fewer than four workers
# the fourth create never arrives and every waiter fails with BrokenBarrierError.
_BARRIER = threading.Barrier(PARALLELISM, timeout=30)


class ProbeError(RuntimeError):
    """Raised on demand; its text must reach the test as ProviderError.message."""


def _compared(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != "__provider"}


class ProbeProvider(ResourceProvider):
    _config: Config | None = None

    def configure(self, req: ConfigureRequest) -> None:
        # Runs in the provider process after unpickling; the parent's instance stays empty.
        self._config = req.config

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        if "raise" in news:
            raise ProbeError(str(news["raise"]))
        failures = []
        size = news.get("size")
        if size is not None and not isinstance(size, Unknown) and size not in ("small", "large"):
            failures.append(CheckFailure("size", "must be 'small' or 'large'"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if news.get("reportOlds"):
            return DiffResult(changes=None, replaces=sorted(olds))
        changed = [k for k, v in _compared(news).items() if olds.get(k) != v]
        return DiffResult(
            changes=bool(changed),
            replaces=[k for k in changed if k == "region"],
            delete_before_replace=True,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        if "raise" in props:
            raise ProbeError(str(props["raise"]))
        if props.get("barrier"):
            _BARRIER.wait()
        if "print" in props:
            print(props["print"])
        if "log" in props:
            print(props["log"], file=sys.stderr)
        config = self._config
        outs = {
            **props,
            "types": {k: type(v).__name__ for k, v in _compared(props).items()},
            "sawSecretMarker": any(rpc.is_rpc_secret(v) for v in props.values()),
            "thread": threading.current_thread().name,
            "executable": sys.executable,
            "env": {key: os.environ.get(key) for key in props.get("envKeys", [])},
            "config": {
                key: (config.get(key) if config is not None else None)
                for key in props.get("configKeys", [])
            },
        }
        if "secretOutput" in props:
            # The provider-side way to return a new secret (docs/pulumi-dynamic.md section 2, Inputs).
            outs["token"] = rpc.wrap_rpc_secret(props["secretOutput"])
        id_ = props["id"] if "id" in props else f"probe-{uuid.uuid4().hex}"
        return CreateResult(str(id_), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if props.get("goneOnRead"):
            return ReadResult(None, {})
        if "driftTo" in props:
            inputs = {**_compared(props), "size": props["driftTo"]}
            return ReadResult(id_, {**props, "size": props["driftTo"]}, inputs=inputs)
        return ReadResult(id_, props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if "raise" in news:
            raise ProbeError(str(news["raise"]))
        return UpdateResult({**news, "updated": True})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("failDelete"):
            raise ProbeError("delete refused by probe")
