"""``snapshot-resources reconcile``: keep a stack's declared snapshot sessions running.

Runs until SIGTERM or SIGINT: a receiver for Agora's notifications on ``--listen`` (``POST
/ncs``, ``GET /metrics``, ``GET /healthz``) and a controller that restarts sessions that ended,
rotates tokens and resource IDs ahead of expiry (``--rotate-before``) and sweeps every
``--interval`` seconds, through the Automation API on the project in ``--cwd``
(docs/reconcile.md).  When ready it prints one line, ``listening on http://HOST:PORT``.  On
SIGTERM it stops taking work, lets the stack operation in progress finish for up to
``--stop-timeout`` seconds, then interrupts it (the Pulumi CLI cancels gracefully: operations in
flight finish, the state is saved, the lock released) and exits 0.  SIGHUP asks for a sweep at
the next round (``systemctl reload``).  ``--once`` runs one sweep
(refresh, then up what is missing) and exits 0, or 1 when a stack operation failed: a drop-in for
the scheduled ``pulumi refresh`` + ``pulumi up`` workflow.

The NCS secret is read from the environment variable named by ``--ncs-secret-env`` (default
``AGORA_NCS_SECRET``; repeat the flag when Cloud Recording and RTC channel events are configured
with different secrets), never from the command line; without one, notifications are refused and
only timers and sweeps run.  The backend and its credentials come from the environment as for any
``pulumi`` command (``PULUMI_BACKEND_URL``, ``PULUMI_CONFIG_PASSPHRASE``, ``PULUMI_ACCESS_TOKEN``).
``--shared-store URL`` (default ``$AGORA_SHARED_STORE``; a ``redis://`` or ``rediss://`` URL, its
password in the URL or ``$AGORA_SHARED_STORE_PASSWORD``, never printed) makes this process one of
any number of replicas of the stack behind one endpoint (``reconcile.replicas``: each
notification taken once, every replica told, one acting at a time under a lease), and gives the
provider runs it starts the shared request budget and task journal (it sets
``AGORA_SHARED_STORE`` for them).
Log: one JSON object per line on stderr, one per decision (``reconcile.report``; ``--log-format
text`` for people).  Exit status 2: no Pulumi CLI, no such stack, a bad ``--listen`` or ``--shared-store``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import yaml

from snapshot_resources.rules import is_ascii_digits

if TYPE_CHECKING:
    from snapshot_resources.reconcile import AutomationStackOps, Controller, ControllerSettings

HELP = "Keep a stack's declared snapshot sessions running (Agora notifications, timers, sweeps)."
DEFAULT_LISTEN = "127.0.0.1:8787"
DEFAULT_STOP_TIMEOUT = 30.0
_SIGNAL_POLL = 0.2  # seconds between looks at the signals received
DEFAULT_SECRET_ENV = "AGORA_NCS_SECRET"  # noqa: S105 - the name of a variable, not a secret


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text}")
    return value


def _positive(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not is_ascii_digits(port) or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. {DEFAULT_LISTEN}, not {text}")
    return host.strip("[]"), int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from snapshot_resources.reconcile.decisions import IdlePolicy

    defaults = _defaults()
    parser.add_argument("--stack", required=True, help="the stack to keep alive")
    parser.add_argument("--cwd", "--project-dir", dest="cwd", type=Path, default=Path("."),
                        metavar="DIR",
                        help="the Pulumi project (Pulumi.yaml, __main__.py, Pulumi.<stack>.yaml; "
                        "default: the current directory)")
    parser.add_argument("--listen", type=_listen, default=_listen(DEFAULT_LISTEN),
                        metavar="HOST:PORT", help="where to receive notifications (POST /ncs) and "
                        f"serve /metrics and /healthz (default: {DEFAULT_LISTEN}; port 0 picks a "
                        "free one)")
    parser.add_argument("--ncs-secret-env", action="append", metavar="VAR",
                        help="environment variable holding the NCS secret; repeat it for one "
                        f"secret per Agora product (default: {DEFAULT_SECRET_ENV})")
    parser.add_argument("--interval", type=_positive, default=defaults.interval,
                        metavar="SECONDS", help="seconds between sweeps, the safety net for "
                        "notifications that never arrive (default: %(default)g)")
    parser.add_argument("--rotate-before", type=_seconds, default=defaults.rotate_before,
                        metavar="SECONDS", help="replace a session whose token or resource ID "
                        "ends within this margin, at a moment chosen inside it; 0: never "
                        "(default: %(default)g)")
    parser.add_argument("--token-grace", type=_seconds, default=defaults.token_grace,
                        metavar="SECONDS", help="refresh a session this long after its "
                        "tokenExpiresAt when no exit notification came (default: %(default)g)")
    parser.add_argument("--idle-restart", choices=[p.value for p in IdlePolicy],
                        default=IdlePolicy.AUTO.value,
                        help="restart a session that ended on idle at once, or when its channel "
                        "has a broadcaster (auto, the default: the latter once channel events "
                        "arrive)")
    parser.add_argument("--stop-timeout", type=_seconds, default=DEFAULT_STOP_TIMEOUT,
                        metavar="SECONDS", help="on SIGTERM, how long the stack operation in "
                        "progress may run on before it is interrupted (default: %(default)g)")
    parser.add_argument("--shared-store", metavar="URL", default=None,
                        help="redis:// or rediss:// URL of the shared store: run as one of "
                        "several replicas of this stack, and share the request budget and task "
                        "journal with every process on it (default: $AGORA_SHARED_STORE; the "
                        "password may come from $AGORA_SHARED_STORE_PASSWORD)")
    parser.add_argument("--once", action="store_true",
                        help="one sweep (refresh, then up what is missing), then exit")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", default="json", choices=["json", "text"],
                        help="one JSON object per line (default), or plain text")


def _defaults() -> ControllerSettings:
    from snapshot_resources.reconcile import ControllerSettings

    return ControllerSettings()


def run(args: argparse.Namespace) -> int:
    from pulumi import automation as auto

    from snapshot_resources import engine
    from snapshot_resources.reconcile import (
        AutomationStackOps,
        Controller,
        ControllerSettings,
        IdlePolicy,
    )
    from snapshot_resources.reconcile.confirm import AgoraTaskQuery
    from snapshot_resources.reconcile.declared import ProgramSessions
    from snapshot_resources.reconcile.inventory import program_problem, project_name

    _configure_logging(args.log_level, args.log_format)
    project_dir: Path = args.cwd.resolve()
    try:
        project = project_name(project_dir)
        problem = program_problem(project_dir, project, args.stack)
    except (OSError, ValueError, yaml.YAMLError) as error:
        problem = str(error)
    if problem is not None:
        print(f"snapshot-resources reconcile: {problem}", file=sys.stderr)
        return 2
    cli = engine.find_cli(project_dir)
    if cli is None:
        print(f"snapshot-resources reconcile: {engine.cli_missing_message()}", file=sys.stderr)
        return 2
    env = {"PULUMI_PYTHON_CMD": sys.executable, "PULUMI_SKIP_UPDATE_CHECK": "true", **_home()}
    try:
        engine.select_stack(cli, project_dir, args.stack, env, create=False)
    except auto.errors.StackNotFoundError:
        print(f"snapshot-resources reconcile: no stack {args.stack!r} in this backend",
              file=sys.stderr)
        return 2

    from snapshot_resources import shared_store

    store_url = args.shared_store or os.environ.get(shared_store.ENV) or None
    replicas = None
    if store_url:
        try:
            store = shared_store.connect(store_url, say=_warn)
        except shared_store.SharedStoreConfigError as error:
            print(f"snapshot-resources reconcile: --shared-store: {error}", file=sys.stderr)
            return 2
        # The provider runs (and the task queries) use the same store.
        os.environ[shared_store.ENV] = store_url
        if not args.once:
            from snapshot_resources.reconcile.replicas import ReplicaSet

            replicas = ReplicaSet(store, f"{project}/{args.stack}")
    ops = AutomationStackOps(cli, project_dir, args.stack, project=project, env=env)
    controller = Controller(
        ops, declared=ProgramSessions(ops.preview, project_dir, args.stack), replicas=replicas,
        tasks=AgoraTaskQuery(cli, project_dir, args.stack, env=env),
        settings=ControllerSettings(interval=args.interval, rotate_before=args.rotate_before,
                                    token_grace=args.token_grace,
                                    idle_policy=IdlePolicy(args.idle_restart)))
    if args.once:
        ok = controller.sweep_once()
        status = controller.status()
        print(f"stack {args.stack}: {len(status['sessions'])} sessions in the state"
              + ("" if ok else f"; failed: {status['lastError']}"))
        return 0 if ok else 1
    return _serve(controller, ops, args)


def _warn(message: str) -> None:
    logging.getLogger("snapshot_resources.reconcile").warning("%s", message)


def _configure_logging(level: str, style: str) -> None:
    from snapshot_resources.reconcile.report import JsonLinesFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if style == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _home() -> dict[str, str]:
    home = os.environ.get("PULUMI_HOME")
    return {"PULUMI_HOME": home} if home else {}


def _serve(controller: Controller, ops: AutomationStackOps, args: argparse.Namespace) -> int:
    from snapshot_resources.reconcile import NotificationReceiver
    from snapshot_resources.reconcile.report import decision

    names: list[str] = args.ncs_secret_env or [DEFAULT_SECRET_ENV]
    secrets = [os.environ[name] for name in names if os.environ.get(name)]
    host, port = args.listen
    try:
        receiver = NotificationReceiver(controller, secret=secrets, host=host, port=port,
                                        replicas=controller.replicas).start()
    except OSError as error:
        print(f"snapshot-resources reconcile: cannot listen on {host}:{port}: {error}",
              file=sys.stderr)
        return 2
    for name in names:
        if not os.environ.get(name):
            logging.getLogger("snapshot_resources.reconcile").warning(
                "$%s is not set: %s", name, "notifications signed with that secret are refused"
                if secrets else "notifications are refused; timers and sweeps only")
    stop = threading.Event()
    # Signal handlers only record the signal: setting an Event (or logging) inside a handler can
    # deadlock on a lock the interrupted main thread holds.  The main loop acts on them.
    signals: list[int] = []

    def _record(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    worker = threading.Thread(target=controller.run, args=(stop,), name="reconcile")
    if controller.replicas is not None:
        controller.replicas.start()
    previous = {sig: signal.signal(sig, _record)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    seen = 0
    try:
        print(f"listening on {receiver.url}", flush=True)
        worker.start()
        while not stop.is_set():
            time.sleep(_SIGNAL_POLL)
            for signum in signals[seen:]:
                seen += 1
                if signum == signal.SIGHUP:
                    decision("sweep_requested", f"signal {signum}: sweeping at the next round")
                    controller.request_sweep()
                else:
                    stop.set()
                    controller.wake()
            if not stop.is_set() and not worker.is_alive():  # a bug: say so, exit non-zero
                print("snapshot-resources reconcile: the controller stopped", file=sys.stderr)
                return 1
        stopping = time.monotonic()
        receiver.drain()
        decision("stop", f"signal {signals[seen - 1]}: no new work; the stack operation in "
                 "progress may finish", seconds=args.stop_timeout)
        announced = False
        while worker.is_alive():
            worker.join(_SIGNAL_POLL)
            stops = [sig for sig in signals if sig != signal.SIGHUP]
            overdue = time.monotonic() - stopping > args.stop_timeout or len(stops) > 1
            if not worker.is_alive() or not overdue:
                continue
            # Each CLI run gets one SIGINT (a second would make Pulumi terminate at once and
            # cut a create short: stack_ops.interrupt); one started after the first call (the
            # controller starts no new operation once stopping, but one may have been on its
            # way) is interrupted too.
            count = ops.interrupt()
            if not announced:
                decision("stop", "the stack operation in progress is being interrupted "
                         "(the Pulumi CLI cancels gracefully and releases the lock)",
                         seconds=time.monotonic() - stopping, interrupted=count)
                announced = True
    finally:
        receiver.stop()
        if controller.replicas is not None:
            controller.replicas.stop()  # the lease is given up: another replica takes over
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("reconcile stopped", file=sys.stderr, flush=True)
    return 0
