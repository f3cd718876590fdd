"""``EmulatorServer``: the backend, the gateway, the workers and a loopback HTTP server, in process.

``start()`` binds (port 0 picks a free port) and starts every thread; ``stop()`` stops them all and
joins them, including the threads serving open keep-alive connections, so no thread outlives the
server.  ``snapshot-resources emulator`` and the test fixtures both use it.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from snapshot_resources.emulator.capture import CaptureWorker
from snapshot_resources.emulator.clock import Clock, ScaledClock
from snapshot_resources.emulator.defaults import (
    DEFAULT_APP_ID,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_CUSTOMER_SECRET,
)
from snapshot_resources.emulator.faults import FaultInjector, FaultPlan
from snapshot_resources.emulator.gateway import Gateway
from snapshot_resources.emulator.models import EXIT_SECONDS, FAILOVER_SECONDS, Backend
from snapshot_resources.emulator.responses import Handler, Responses
from snapshot_resources.emulator.uploads import SnapshotStore
from snapshot_resources.emulator.webhooks import WebhookSender
from snapshot_resources.http_server import ConnectionTrackingServer

MAX_TIME_SCALE: Final = 10_000.0
"""The fastest emulated clock: a day in under 9 s.  Faster, emulated dates leave what a date can
hold (year 9999) within days, and every answer would fail."""
MAX_LATENCY_MS: Final = 600_000  # ten minutes: longer than any client waits


@dataclass
class EmulatorOptions:
    """How ``EmulatorServer`` runs; every field has a default (``snapshot-resources emulator``
    flags of the same names set them).

    ``host`` (str, ``"127.0.0.1"``): the address to bind.  ``port`` (int, 0): 0 picks a free port.
    ``storage_dir`` (``Path`` | None): snapshots go to ``<storage_dir>/<bucket>/<key>``; None for a
    temporary directory removed on ``stop``.  ``app_ids`` (sequence of str): the App IDs with
    Cloud Recording enabled; others get 400 ``invalid_appid`` (S7).  ``customer_id``,
    ``customer_secret`` (str): the HTTP Basic credentials accepted (401 otherwise, S7); demo
    values by default.  ``time_scale`` (float, 1.0, positive): emulated seconds per real second.
    ``latency_ms`` (int, 0): milliseconds added to every REST answer.  ``qps`` (int, 10):
    requests per second per App ID before 429 (S10).  ``max_tasks`` (int, 50): concurrent tasks
    per App ID before acquire answers 400 code 406 (S7, S10).  ``webhook_url`` (str | None): where
    NCS events are posted (S12, S13); None posts none.  ``webhook_secret`` (str | None): the NCS
    secret that signs them (S13); None sends no signature headers.  ``s3_endpoint`` (str |
    None): an S3 API (e.g. moto) that vendor 1 uploads go to instead of ``storage_dir``; vendor 11
    always uses its ``extensionParams.endpoint``.  ``log_requests`` (bool, False): write ``METHOD
    PATH STATUS`` per request to ``log_stream`` (``TextIO`` | None; None for stderr), never a
    header or body.  ``seed`` (int, 0): seed of injected faults.  ``failover_seconds`` (float,
    30): emulated seconds a failed-over task answers 404 (S7).  ``exit_seconds`` (float, 6):
    emulated seconds a stopped task spends in status 6, 7 and 8 (S4).  ``upload_threads`` (int,
    8): threads that draw and upload JPGs.  ``clock`` (``Clock`` | None): emulated time, for
    tests; None for a clock running ``time_scale`` times faster than the wall clock.
    ``channel_events`` (bool, False): also post RTC channel events (productId 1: 101-104) for
    the admin API's joins and leaves (``emulator.channel_events``).  ``token_lifetime`` (float |
    None, emulated seconds): for tests, a task started with a token leaves at most this long
    after its start (NCS 1 code 109, 41, 11), as if its token expired then; None: only the
    token's own expiry counts (``emulator.models``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    storage_dir: Path | None = None  # None: a temporary directory, removed on stop
    app_ids: Sequence[str] = (DEFAULT_APP_ID,)
    customer_id: str = field(default=DEFAULT_CUSTOMER_ID, repr=False)
    customer_secret: str = field(default=DEFAULT_CUSTOMER_SECRET, repr=False)
    time_scale: float = 1.0
    latency_ms: int = 0
    qps: int = 10  # per App ID (S8, S10)
    max_tasks: int = 50  # PCW per App ID (S10, W3)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    s3_endpoint: str | None = None
    log_requests: bool = False
    log_stream: TextIO | None = None
    seed: int = 0
    failover_seconds: float = FAILOVER_SECONDS
    exit_seconds: float = EXIT_SECONDS
    upload_threads: int = 8  # file creation and S3 puts wait on I/O, not on the GIL
    clock: Clock | None = None  # injected in tests; default ScaledClock(time_scale)
    channel_events: bool = False
    token_lifetime: float | None = None

    def __post_init__(self) -> None:
        # Out of these bounds every answer would fail later (an emulated date past year 9999, a
        # negative sleep): refused here, at once.
        if not (math.isfinite(self.time_scale) and 0 < self.time_scale <= MAX_TIME_SCALE):
            raise ValueError(f"time_scale must be > 0 and <= {MAX_TIME_SCALE:g}, not "
                             f"{self.time_scale}")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be 0 to {MAX_LATENCY_MS}, not {self.latency_ms}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0 to 65535, not {self.port}")


EXTRA: Final = "emulator"
"""The extra (pyproject.toml) that brings what the emulator imports while it runs."""
EXTRA_MODULES: Final = {"PIL": "Pillow", "boto3": "boto3", "botocore": "botocore"}
"""Module -> the distribution of the ``emulator`` extra that provides it: Pillow draws the test
cards, boto3 uploads them to S3-compatible storage."""


class EmulatorExtraError(ImportError):
    """The emulator's extra is not installed; the message names what is missing and the
    ``pip install`` that adds it.  Raised before anything starts (no port, no thread)."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(
            f"the emulator needs {', '.join(self.missing)}, which "
            f"{'is' if len(self.missing) == 1 else 'are'} not installed: add the extra, "
            f"pip install 'snapshot-resources[{EXTRA}]'", name=self.missing[0])


def require_extra() -> None:
    """Raise ``EmulatorExtraError`` unless every module of the ``emulator`` extra imports: found
    at start, not in the log of the first capture (which would leave tasks at status 4)."""
    missing = []
    for module, distribution in EXTRA_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise EmulatorExtraError(missing)


class EmulatorServer:
    """The local Agora Cloud Recording emulator: a loopback HTTP server answering acquire, start,
    query, update and stop for snapshot tasks with Agora's bodies, codes and statuses (S2-S7),
    plus the ``/_emulator/`` admin API.

    ``options`` (``EmulatorOptions`` | None): how it runs; None for the defaults.  The
    constructor binds the socket (``OSError`` if the address is taken) and creates
    ``storage_dir``; nothing runs until ``start()``, which starts every thread and returns the
    server.  ``stop()`` stops and joins them all and removes a temporary storage directory.  As a
    context manager it starts on entry and stops on exit.  ``url`` (str) is the base URL, e.g.
    ``http://127.0.0.1:8765``; ``address`` the bound ``(host, port)``; ``backend`` the state
    machine; ``storage_dir`` the directory in use.  Raises ``EmulatorExtraError`` at once when
    the ``emulator`` extra is not installed.
    """

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        require_extra()
        self.options = options or EmulatorOptions()
        opts = self.options
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if opts.storage_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="agora-emulator-")
            self.storage_dir = Path(self._tempdir.name)
        else:
            self.storage_dir = Path(opts.storage_dir)
            self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.clock = opts.clock or ScaledClock(opts.time_scale)
        self.webhooks = WebhookSender(opts.webhook_url, secret=opts.webhook_secret,
                                      clock=self.clock) if opts.webhook_url else None
        self.backend = Backend(clock=self.clock, app_ids=opts.app_ids, max_tasks=opts.max_tasks,
                               failover_seconds=opts.failover_seconds,
                               exit_seconds=opts.exit_seconds, notifier=self.webhooks,
                               channel_events=opts.channel_events,
                               token_lifetime=opts.token_lifetime)
        self.gateway = Gateway(customer_id=opts.customer_id, customer_secret=opts.customer_secret,
                               qps=opts.qps, clock=self.clock, log_requests=opts.log_requests,
                               log_stream=opts.log_stream)
        self.faults = FaultInjector()
        self.faults.set(FaultPlan(seed=opts.seed))
        self.store = SnapshotStore(self.storage_dir, s3_endpoint=opts.s3_endpoint)
        self.worker = CaptureWorker(self.backend, self.store, threads=opts.upload_threads)
        self.responses = Responses(
            backend=self.backend, gateway=self.gateway, faults=self.faults,
            latency_ms=opts.latency_ms,
            extra_counters=self.webhooks.snapshot_counters if self.webhooks else None)
        handler = type("EmulatorHandler", (Handler,), {"emulator": self.responses})
        self._http = ConnectionTrackingServer((opts.host, opts.port), handler)
        self._serve_thread = threading.Thread(target=self._http.serve_forever,
                                              kwargs={"poll_interval": 0.05},
                                              name="emulator-http", daemon=True)
        self._started = False

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        if self.webhooks is not None:
            self.webhooks.start()
        self.worker.start()
        self._serve_thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._http.shutdown()
            self._serve_thread.join()
        self._http.drop_connections()
        self._http.server_close()  # joins the request threads (block_on_close)
        if self._started:
            self.worker.stop()
            if self.webhooks is not None:
                self.webhooks.stop()
        self.store.close()
        self._started = False
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
