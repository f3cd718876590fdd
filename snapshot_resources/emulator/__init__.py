"""A local Agora Cloud Recording server for snapshot sessions, like moto for AWS.

Layout (moto's split):

* ``models``: the backend state machine (resources, tasks, channels) on an injectable ``clock``;
  ``resource_ids`` makes self-describing resource ids; ``errors`` has Agora's two error shapes;
* ``validation`` + ``tables``: acquire/start/update checks written straight from
  docs/agora-api.md, independently of ``spec.py``/``rules.py`` (the other side of the wire);
* ``gateway`` (Basic auth, QPS, counters, request log), ``urls`` + ``responses``: the thin HTTP
  layer; ``faults``: injected failures;
* ``capture`` drives snapshots on the emulated clock, ``testcard`` draws each JPG, ``uploads``
  stores it (local directory or S3 API with the task's keys), ``webhooks`` posts signed NCS events;
* ``server``: ``EmulatorServer`` puts it together; ``defaults``: the demo credentials.

Start one with ``snapshot-resources emulator`` or ``EmulatorServer(EmulatorOptions(...))``; in
tests use ``snapshot_resources.testing.emulator``.  The admin API is documented in ``urls``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from snapshot_resources.emulator.defaults import (
    DEFAULT_APP_ID,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_CUSTOMER_SECRET,
)

if TYPE_CHECKING:
    from snapshot_resources.emulator.clock import Clock, ManualClock, ScaledClock
    from snapshot_resources.emulator.models import Backend
    from snapshot_resources.emulator.server import EmulatorOptions, EmulatorServer

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_CUSTOMER_ID",
    "DEFAULT_CUSTOMER_SECRET",
    "Backend",
    "Clock",
    "EmulatorOptions",
    "EmulatorServer",
    "ManualClock",
    "ScaledClock",
]

# Loaded on first use, so that importing a light submodule (``defaults``) stays light.
_LAZY = {"Clock": "clock", "ManualClock": "clock", "ScaledClock": "clock", "Backend": "models",
         "EmulatorOptions": "server", "EmulatorServer": "server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
