"""Inside the dynamic-provider process: what each engine call is about, and when it is cancelled.

The engine runs a Python dynamic provider as ``python -u -m pulumi.dynamic`` (the SDK's
``pulumi/dynamic/__main__.py``): a gRPC server whose servicer hands each resource's properties
to ``ResourceProvider.create`` and friends, and nothing else. Three things a provider that starts
billing tasks must know are lost on the way (docs/engine.md, "The provider process"):

* **which resource** a call is for (the request's ``urn``): the task journal files each task
  under its stack and resource (``journal``);
* **whether anyone still waits for the answer**: after a ``kill -9`` of the CLI, a second Ctrl-C,
  or the SIGINT the CLI sends its plugins when it shuts down, the SDK's server cancels the call
  (``server.stop(0)``), but the provider's thread runs on, finishes a create, and its ``sid``
  goes nowhere;
* **how to fail with a message**: the SDK answers every exception with its Python traceback.

``install()`` widens the SDK's server from 4 calls at once to ``WORKERS`` (every wait inside a
call held one of the four), and adds a gRPC server interceptor (``grpc.ServerInterceptor``,
gRPC's own extension point) to it; the server is found in the main thread's ``main()`` frame. For
each call it
keeps an ``Operation`` (method, ``urn``, a ``cancelled`` event set by gRPC when the call ends
early) that ``current()`` returns in the serving thread; it answers the product's own errors
(``install(expected=...)``) with their message instead of a traceback; and it watches the
engine's end of the provider's stdin (a pipe the CLI holds open: ``plugin.go`` of Pulumi 3.274),
so that a provider whose CLI was killed stops its work and exits instead of running on forever.

Everything is guarded: only in the process ``python -m pulumi.dynamic`` runs; off with
``SNAPSHOT_RESOURCES_PROVIDER_ADAPTER=off``; when the SDK's server is not the shape expected
(another SDK version), nothing is changed and one warning says so. Without the adapter the
provider still journals every task (by channel and uid, without its URN) and recovers it at the
next create; only the prompt stop of an interrupted create and the clean messages are lost.
``tests/engine/test_engine_interrupt.py`` proves the adapter works with the SDK in the lock file,
so an SDK upgrade that breaks it fails CI, not a user's deploy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEFAULT_WORKERS",
    "SWITCH",
    "WORKERS",
    "Operation",
    "OperationCancelled",
    "check_cancelled",
    "current",
    "in_provider_process",
    "install",
    "installed",
    "plain_message",
    "shielded",
    "sleep",
]

log = logging.getLogger("snapshot_resources.provider")

SWITCH: Final = "SNAPSHOT_RESOURCES_PROVIDER_ADAPTER"
"""Set to ``off`` (or ``0``/``false``) to leave the SDK's provider server as it is."""

WORKERS: Final = "SNAPSHOT_RESOURCES_PROVIDER_WORKERS"
"""How many engine calls the provider serves at once (``DEFAULT_WORKERS``); the SDK's 4 when off."""

DEFAULT_WORKERS: Final = 128
"""More than the engine sends at once on any machine this runs on (Pulumi's default
``--parallel`` is 4 x CPUs, ``pkg/cmd/pulumi/operations/up.go``): the engine's ``--parallel``
(``PULUMI_PARALLEL``) is then the one limit, and Agora's request budget the other. Threads are
started only when calls wait for one (``ThreadPoolExecutor``), so a small stack starts few."""

_SDK_MAIN: Final = "pulumi.dynamic.__main__"
_SERVICE: Final = "/pulumirpc.ResourceProvider/"


class OperationCancelled(Exception):  # noqa: N818 - named for what happened, like CancelledError
    """The engine no longer waits for this call (it was cancelled, or the engine is gone)."""


@dataclass(eq=False)
class Operation:
    """One engine call being served: ``method`` (``Create``, ``Delete`` ...), the resource's
    ``urn`` (None when the request has none), and ``cancelled``, set when nobody waits for the
    answer any more. ``shield`` > 0 while cleanup runs that must not be cut short."""

    method: str
    urn: str | None
    cancelled: threading.Event = field(default_factory=threading.Event)
    shield: int = 0
    done: bool = False  # answered: a thread that still names it serves another call now


_state = threading.local()
_installed: list[str] = []  # what install() changed, for tests and the docs' claims
_lock = threading.RLock()  # install() holds it while it keeps the first call (_serve)
_active: set[Operation] = set()  # calls being served (the engine watch waits for them)
_ENGINE_GONE_WAIT: Final = 30.0  # seconds the cleanup of cancelled calls may take at most


def current() -> Operation | None:
    """The engine call this thread is serving, or None (not in the provider process, or the
    adapter is off). A call that was answered is never returned: the first call's thread may
    serve calls that reached the server before the interceptor did (``_adopt_current_call``)."""
    operation: Operation | None = getattr(_state, "operation", None)
    return None if operation is None or operation.done else operation


def sleep(seconds: float) -> None:
    """``time.sleep`` that ends early, raising ``OperationCancelled``, when the call this thread
    serves is cancelled (unless shielded)."""
    operation = current()
    if operation is None or operation.shield:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    if operation.cancelled.wait(seconds):
        if not operation.done:
            raise OperationCancelled(f"{operation.method} was cancelled")
        time.sleep(max(0.0, deadline - time.monotonic()))  # it was another call's end


def check_cancelled() -> None:
    """Raise ``OperationCancelled`` if this thread's call was cancelled (and is not shielded)."""
    operation = current()
    if operation is not None and not operation.shield and operation.cancelled.is_set() \
            and not operation.done:
        raise OperationCancelled(f"{operation.method} was cancelled")


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Cleanup after a cancellation (stopping a task) runs with ordinary sleeps."""
    operation = current()
    if operation is None:
        yield
        return
    operation.shield += 1
    try:
        yield
    finally:
        operation.shield -= 1


def in_provider_process() -> bool:
    """Whether this is the process ``python -m pulumi.dynamic`` runs (the engine's, or
    ``testing.ProviderHost``'s)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) == _SDK_MAIN


def installed() -> tuple[str, ...]:
    """What ``install`` changed in this process (empty when nothing)."""
    with _lock:
        return tuple(_installed)


def install(*, expected: tuple[type[BaseException], ...] = ()) -> tuple[str, ...]:
    """Add the interceptor and the stdin watch to the SDK's server (module docstring), once per
    process; returns what was changed. ``expected``: exceptions answered with their message
    alone (the product's own errors); anything else keeps the SDK's traceback (a bug)."""
    with _lock:
        if _installed or not in_provider_process():
            return tuple(_installed)
        if os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "false", "no"):
            _installed.append("off")
            return ("off",)
        server = _sdk_server()
        state = getattr(server, "_state", None)
        if state is None or not hasattr(state, "interceptor_pipeline"):
            _warn("the dynamic-provider server of this Pulumi SDK is not the shape expected: it "
                  "serves 4 calls at once, and an interrupted create is recovered by the next "
                  "`pulumi up` only")
            _installed.append("unexpected-sdk")
            return tuple(_installed)
        try:
            from grpc import _interceptor
        except ImportError:  # pragma: no cover - grpc without its interceptor module
            _warn("this gRPC has no server interceptor pipeline: an interrupted create is "
                  "recovered by the next `pulumi up` only")
            _installed.append("unexpected-grpc")
            return tuple(_installed)
        interceptors = [_Interceptor(expected)]
        if state.interceptor_pipeline is not None:  # someone else's: keep it, after ours
            interceptors.extend(state.interceptor_pipeline.interceptors)
        state.interceptor_pipeline = _interceptor.service_pipeline(interceptors)
        _installed.append("interceptor")
        widened = _widen_pool(state)
        if widened:
            _installed.append(widened)
        if _adopt_current_call(expected):
            _installed.append("first-call")
        if _watch_engine(server):
            _installed.append("engine-watch")
        return tuple(_installed)


def _widen_pool(state: Any) -> str | None:
    """Serve ``WORKERS`` calls at once instead of the SDK's 4 (``ThreadPoolExecutor(
    max_workers=4)`` in ``pulumi/dynamic/__main__.py``, fixed since 2019): every wait inside a
    call (a task's readiness, a failover grace) held one of four threads, so the engine's other
    calls queued behind it (docs/engine.md, "The provider process")."""
    from concurrent.futures import ThreadPoolExecutor

    raw = os.environ.get(WORKERS, "").strip()
    try:
        workers = int(raw) if raw else DEFAULT_WORKERS
    except ValueError:
        _warn(f"{WORKERS}={raw!r} is not a whole number; the provider serves 4 calls at once")
        return None
    pool = getattr(state, "thread_pool", None)
    if not isinstance(pool, ThreadPoolExecutor) or not isinstance(
            getattr(pool, "_max_workers", None), int):
        _warn("the dynamic-provider server's thread pool is not the shape expected; the provider "
              "serves 4 calls at once")
        return None
    if workers < 1:
        return None
    # ThreadPoolExecutor reads _max_workers at each submit (_adjust_thread_count).
    pool._max_workers = max(pool._max_workers, workers)
    # Calls the server took before this ran (a destroy's deletes arrive together, and the first
    # of them imports this module) wait in the pool's queue with no thread to come: start one
    # for each, as each submit would have (measured: a destroy of 50 ended sessions waited two
    # failover graces instead of one).
    queued = getattr(pool, "_work_queue", None)
    adjust = getattr(pool, "_adjust_thread_count", None)
    if queued is not None and callable(adjust):
        for _ in range(min(queued.qsize(), pool._max_workers)):
            adjust()
    return f"workers={pool._max_workers}"


def _warn(why: str) -> None:
    print(f"snapshot-resources: {why} (docs/engine.md, \"The provider process\"; set "
          f"{SWITCH}=off to silence this)", file=sys.stderr)


def _sdk_server() -> Any:
    """The SDK's ``grpc.Server``: the local ``server`` of ``main()`` in ``pulumi.dynamic``'s
    ``__main__``, which blocks in the main thread for the process's whole life."""
    import grpc

    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "__main__":
            server = frame.f_locals.get("server")
            return server if isinstance(server, grpc.Server) else None
        frame = frame.f_back
    return None


def _serve(name: str, request: Any, context: Any,
           expected: tuple[type[BaseException], ...], *, adopted: bool = False) -> Operation:
    """Start keeping one call: its ``Operation`` for this thread, cancelled when the call ends
    (gRPC runs the callback however it ends), and an ``abort`` that answers an expected error
    with its message: the SDK aborts the call from inside its ``except`` block, where the
    provider's exception is the one being handled."""
    urn = getattr(request, "urn", None) or None
    operation = Operation(name, str(urn) if urn else None)
    if adopted:
        # Its end is known only from gRPC's callback, in another thread: marked answered
        # before it is marked cancelled, so that its thread's next call never sees it cancelled.
        context.add_callback(functools.partial(_done, operation))
    context.add_callback(operation.cancelled.set)
    original = context.abort

    def abort(code: Any, details: str) -> Any:
        error = sys.exc_info()[1]
        if expected and isinstance(error, expected):
            details = plain_message(error)
        return original(code, details)

    with contextlib.suppress(AttributeError):  # a context that takes no attributes: tracebacks
        context.abort = abort
    _state.operation = operation
    with _lock:
        _active.add(operation)
    return operation


def _done(operation: Operation) -> None:
    operation.done = True
    if current() is operation:
        _state.operation = None
    with _lock:
        _active.discard(operation)


class _Interceptor:
    """Keeps each call's ``Operation`` and turns expected errors into plain messages."""

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        self._expected = expected

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method = str(getattr(details, "method", ""))
        if handler is None or handler.unary_unary is None or not method.startswith(_SERVICE):
            return handler
        inner = handler.unary_unary
        name = method.removeprefix(_SERVICE)

        def behavior(request: Any, context: Any) -> Any:
            operation = _serve(name, request, context, self._expected)
            try:
                return inner(request, context)
            finally:
                _done(operation)

        return handler._replace(unary_unary=behavior)


def _adopt_current_call(expected: tuple[type[BaseException], ...]) -> bool:
    """The call during which ``install`` runs (the first that loaded the provider) reached the
    SDK before the interceptor existed: keep it too, from its servicer method's frame."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        local = frame.f_locals
        if (frame.f_globals.get("__name__") == "__main__" and "request" in local
                and "context" in local and "self" in local):
            _serve(frame.f_code.co_name, local["request"], local["context"], expected,
                   adopted=True)
            return True
        frame = frame.f_back
    return False


def plain_message(error: BaseException) -> str:
    """An error as the user reads it: its text and notes, without a traceback."""
    notes = getattr(error, "__notes__", None) or []
    return "\n".join([str(error), *map(str, notes)])


def _watch_engine(server: Any) -> bool:
    """When the CLI is gone (its end of our stdin closed), stop serving: ``server.stop(0)``
    cancels every call in flight; once their cleanup is done (at most ``_ENGINE_GONE_WAIT``), a
    SIGINT ends the SDK's ``main()`` as the engine's own shutdown would. Only when stdin is a
    pipe, as the engine gives it."""
    try:
        if not stat.S_ISFIFO(os.fstat(0).st_mode):
            return False
    except OSError:
        return False

    def watch() -> None:
        while True:
            try:
                chunk = os.read(0, 4096)
            except OSError:
                return
            if not chunk:
                break
        if not threading.main_thread().is_alive():
            return  # already shutting down (the engine's SIGINT came first)
        log.info("the engine is gone (stdin closed): cancelling what is in flight")
        server.stop(0)
        deadline = time.monotonic() + _ENGINE_GONE_WAIT
        while time.monotonic() < deadline:
            with _lock:
                if not _active:
                    break
            time.sleep(0.05)
        if threading.main_thread().is_alive():
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="engine-watch", daemon=True).start()
    return True
