"""``snapshot-resources emulator``: run the local Agora Cloud Recording emulator until interrupted.

When it is ready it prints exactly one line, ``listening on http://HOST:PORT``, to stdout; with
``--log-requests`` every request follows on stderr as ``METHOD PATH STATUS`` (never a header or a
body).  A bad flag, an address it cannot listen on or a storage directory it cannot use is one
line on stderr and exit 2.  Credentials can come from the environment (``AGORA_CUSTOMER_ID``,
``AGORA_CUSTOMER_SECRET``, ``AGORA_NCS_SECRET``) so that they stay out of shell history and ``ps``.
Without the ``emulator`` extra it exits at once with status 2 and the ``pip install`` to run.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Final

from snapshot_resources.emulator.defaults import (
    DEFAULT_APP_ID,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_CUSTOMER_SECRET,
)
from snapshot_resources.emulator.server import (
    MAX_LATENCY_MS,
    MAX_TIME_SCALE,
    EmulatorExtraError,
    EmulatorOptions,
    EmulatorServer,
)
from snapshot_resources.rules import is_ascii_digits

HELP = "Run a local Agora Cloud Recording emulator (snapshot sessions) on loopback."


MAX_SECONDS: Final = 10.0**9  # about 31 years: a bound that keeps dates representable


def _positive(text: str, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= high):
        raise argparse.ArgumentTypeError(f"must be positive and at most {high:g}, not {text}")
    return value


def _time_scale(text: str) -> float:
    return _positive(text, MAX_TIME_SCALE)


def _seconds(text: str) -> float:
    return _positive(text, MAX_SECONDS)


def _latency(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= MAX_LATENCY_MS:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_LATENCY_MS}, not {text}")
    return value


def _port(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (a free port) to 65535, not {text}")
    return value


def _count(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _whole(text: str) -> int:
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    if not is_ascii_digits(digits) or len(digits) > 12:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}")
    return int(stripped)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: "
                        "%(default)s)")
    parser.add_argument("--port", type=_port, default=0, help="port; 0 picks a free one "
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
    parser.add_argument("--time-scale", type=_time_scale, default=1.0, metavar="X",
                        help="emulated seconds per real second, > 0 and at most "
                        f"{MAX_TIME_SCALE:g} (default: %(default)s)")
    parser.add_argument("--latency-ms", type=_latency, default=0,
                        help=f"added to every REST answer, 0 to {MAX_LATENCY_MS}")
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
    parser.add_argument("--token-lifetime", type=_seconds, metavar="SECONDS",
                        help="for tests: a task started with a token leaves this many emulated "
                        "seconds after its start, as on a token expiry (NCS 1 code 109, 41, 11); "
                        "default: only the token's own expiry (AccessToken2) counts")
    parser.add_argument("--s3-endpoint", metavar="URL",
                        help="send vendor 1 (Amazon S3) uploads to this S3 API instead of "
                        "--storage-dir")
    parser.add_argument("--seed", type=_whole, default=0, help="seed for injected faults")
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
    except OSError as error:  # the address is taken or not ours, the directory unusable
        what = "not a directory" if isinstance(error, FileExistsError) \
            else error.strerror or type(error).__name__
        where = f" ({error.filename})" if error.filename else ""
        print(f"snapshot-resources emulator: cannot start on {args.host}:{args.port} with "
              f"storage {args.storage_dir or 'a temporary directory'}: {what}{where}",
              file=sys.stderr)
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
