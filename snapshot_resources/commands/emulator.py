"""``snapshot-resources emulator``: run the local Agora Cloud Recording emulator until interrupted.

When it is ready it prints exactly one line, ``listening on http://HOST:PORT``, to stdout; with
``--log-requests`` every request follows on stderr as ``METHOD PATH STATUS`` (never a header or a
body).  Credentials can come from the environment (``AGORA_CUSTOMER_ID``,
``AGORA_CUSTOMER_SECRET``, ``AGORA_NCS_SECRET``) so that they stay out of shell history and ``ps``.
Without the ``emulator`` extra it exits at once with status 2 and the ``pip install`` to run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from snapshot_resources.emulator.defaults import (
    DEFAULT_APP_ID,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_CUSTOMER_SECRET,
)
from snapshot_resources.emulator.server import EmulatorExtraError, EmulatorOptions, EmulatorServer

HELP = "Run a local Agora Cloud Recording emulator (snapshot sessions) on loopback."


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: "
                        "%(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one "
                        "(default: %(default)s)")
    parser.add_argument("--storage-dir", type=Path, metavar="DIR",
                        help="where snapshots go, as DIR/<bucket>/<key> (default: a temporary "
                        "directory removed on exit)")
    parser.add_argument("--app-id", action="append", dest="app_ids", metavar="APPID",
                        help=f"an App ID with Cloud Recording enabled; repeatable (default: "
                        f"{DEFAULT_APP_ID})")
    parser.add_argument("--customer-id", default=os.environ.get("AGORA_CUSTOMER_ID",
                                                                DEFAULT_CUSTOMER_ID),
                        help="Basic auth user (default: $AGORA_CUSTOMER_ID, else "
                        f"{DEFAULT_CUSTOMER_ID})")
    parser.add_argument("--customer-secret",
                        default=os.environ.get("AGORA_CUSTOMER_SECRET", DEFAULT_CUSTOMER_SECRET),
                        help="Basic auth password (default: $AGORA_CUSTOMER_SECRET, else the "
                        "demo secret emulator-customer-secret)")
    parser.add_argument("--time-scale", type=_positive, default=1.0, metavar="X",
                        help="emulated seconds per real second (default: %(default)s)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every REST answer")
    parser.add_argument("--qps", type=_count, default=10,
                        help="requests per second per App ID before 429 (default: %(default)s)")
    parser.add_argument("--max-tasks", type=_count, default=50,
                        help="concurrent tasks per App ID before acquire answers 406 "
                        "(default: %(default)s)")
    parser.add_argument("--webhook-url", metavar="URL", help="post NCS events here")
    parser.add_argument("--webhook-secret", default=os.environ.get("AGORA_NCS_SECRET"),
                        help="NCS secret that signs webhook bodies (default: $AGORA_NCS_SECRET)")
    parser.add_argument("--channel-events", action="store_true",
                        help="also post RTC channel events (productId 1: channel create/destroy, "
                        "broadcaster join/leave) for the admin API's joins and leaves")
    parser.add_argument("--token-lifetime", type=_positive, metavar="SECONDS",
                        help="for tests: a task started with a token leaves this many emulated "
                        "seconds after its start, as on a token expiry (NCS 1 code 109, 41, 11); "
                        "default: only the token's own expiry (AccessToken2) counts")
    parser.add_argument("--s3-endpoint", metavar="URL",
                        help="send vendor 1 (Amazon S3) uploads to this S3 API instead of "
                        "--storage-dir")
    parser.add_argument("--seed", type=int, default=0, help="seed for injected faults")
    parser.add_argument("--log-requests", action="store_true",
                        help="print METHOD PATH STATUS for every request on stderr")


def run(args: argparse.Namespace) -> int:
    options = EmulatorOptions(
        host=args.host, port=args.port, storage_dir=args.storage_dir,
        app_ids=tuple(args.app_ids or (DEFAULT_APP_ID,)), customer_id=args.customer_id,
        customer_secret=args.customer_secret, time_scale=args.time_scale,
        latency_ms=args.latency_ms, qps=args.qps, max_tasks=args.max_tasks,
        webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
        s3_endpoint=args.s3_endpoint, log_requests=args.log_requests, seed=args.seed,
        channel_events=args.channel_events, token_lifetime=args.token_lifetime,
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    try:
        server = EmulatorServer(options)
    except EmulatorExtraError as error:
        print(f"snapshot-resources emulator: {error}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _stop)
    server.start()
    try:
        print(f"listening on {server.url}", flush=True)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    print("emulator stopped", file=sys.stderr, flush=True)
    return 0
