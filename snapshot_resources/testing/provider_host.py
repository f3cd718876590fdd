"""Host a Pulumi Python dynamic provider exactly as the engine does, and drive it over gRPC.

The Pulumi CLI cannot run in tests here, so this module plays the engine's part
(docs/pulumi-dynamic.md section 4C, "Driving the real ``python -m pulumi.dynamic`` gRPC
server"): it starts ``python -u -m pulumi.dynamic`` in a subprocess with the working directory and
environment the engine would give it, reads the port from the first line of stdout, and calls
Configure, Check, Diff, Create, Read, Update and Delete with properties serialized by the SDK's own
``pulumi.runtime.rpc``.  It is the only way to prove a pickled provider loads in a fresh process.

Typical use::

    from snapshot_resources.testing.provider_host import ProviderHost
    from snapshot_resources.testing.noop_provider import NoopProvider

    with ProviderHost(project="my-project") as host:
        host.configure({"my-project:apiUrl": "http://127.0.0.1:8080"})
        res = host.resource(NoopProvider(), name="demo")
        res.check({"size": "small"})
        res.create()
        assert res.diff({"size": "large"}).changes == "DIFF_NONE"
        res.delete()

What the engine does and this host mirrors:

* Configure carries the whole stack config, namespaces kept (``"agora:customerId"``), secret values
  wrapped, object values as JSON text (section 1, recommended pattern 3).
* Secrets are stripped from every property bag before it is sent, because the servicer answers
  Configure with ``acceptSecrets=False``; afterwards outputs (and checked inputs) whose key matches
  a secret input are marked secret again, like the engine's ``annotateSecrets`` (section 2).  Mark
  an input secret with :func:`secret`; results report ``secret_paths``.
* Diff and Update receive the old *outputs* as ``olds``; Read receives the old outputs and old
  inputs; Delete receives the outputs (section 3).
* Unknown values (``pulumi.output.UNKNOWN``) may appear only in Check and Diff, as during preview
  (section 3, Check); Create, Update, Read and Delete refuse them, as the engine never sends them.
* Numbers travel as protobuf doubles: ``2`` comes back as ``2.0``, tuples come back as lists, and
  integers above 2**53 lose precision (section 4C).  A key whose value is ``None`` disappears:
  the SDK's deserializer drops it (``rpc.deserialize_properties``).
* The servicer runs 4 worker threads (section 3, Parallelism).  One host may be called from several
  Python threads at once; gRPC stubs are thread-safe and each call serializes on its own.

Not mirrored (section 4C, "What the harness does not cover"): preview skipping Create/Update, the
engine's own diff on ``DIFF_UNKNOWN``, refresh/import step logic and state encryption.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime._serialization import _serialize
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from snapshot_resources.session import SESSION_TYPE

__all__ = [
    "DEFAULT_RESOURCE_TYPE",
    "PROVIDER_KEY",
    "CheckResult",
    "ConfigureResult",
    "CreateResult",
    "DiffChanges",
    "DiffResult",
    "HostedResource",
    "ProviderError",
    "ProviderHost",
    "ProviderHostError",
    "ReadResult",
    "SecretPath",
    "UpdateResult",
    "pickled_size",
    "provider_property",
    "secret",
    "urn_for",
]

PROVIDER_KEY = "__provider"
"""The property that carries the pickled provider, in inputs and outputs (section 1)."""

DEFAULT_RESOURCE_TYPE = SESSION_TYPE
"""The type token ``session.SnapshotSession`` registers (``module="agora"``, section 5)."""

DiffChanges = Literal["DIFF_UNKNOWN", "DIFF_NONE", "DIFF_SOME"]
SecretPath = tuple[str, ...]
"""A path of object keys from the top of a property bag to a value the engine keeps secret."""

_DIFF_CHANGES: dict[int, DiffChanges] = {
    provider_pb2.DiffResponse.DIFF_UNKNOWN: "DIFF_UNKNOWN",
    provider_pb2.DiffResponse.DIFF_NONE: "DIFF_NONE",
    provider_pb2.DiffResponse.DIFF_SOME: "DIFF_SOME",
}

# The engine dials plugins with rpcutil.GrpcChannelOptions(): a 400 MiB message cap, the same
# figure the SDK uses for its own server (pulumi/runtime/_grpc_settings.py).
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 400 * 1024 * 1024),
    ("grpc.max_send_message_length", 400 * 1024 * 1024),
]

# serialize_provider swaps pickle.Pickler and its methods for the module while it runs
# (dynamic/dynamic.py, for deterministic output); two threads doing so at once could leave the
# patch in place for good, so this module serializes one provider at a time.
_SERIALIZE_LOCK = threading.Lock()


class ProviderHostError(RuntimeError):
    """The provider process could not be started or reached (not an error of the provider)."""


class ProviderError(Exception):
    """An RPC failed.  The servicer turns any exception into gRPC ``UNKNOWN`` whose message is the
    full Python traceback (section 1, Errors); the CLI shows that text as the resource's error.

    ``operation`` is the RPC name (``"Create"``), ``code`` the gRPC status name and ``message`` the
    text the engine would show.
    """

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(f"{operation} failed with {code}: {message}")

    @property
    def last_line(self) -> str:
        """The final non-blank line of the message: for a traceback, ``"KeyError: 'size'"``."""
        lines = [line for line in self.message.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


@dataclass(frozen=True)
class ConfigureResult:
    """What the provider answered to Configure (the dynamic servicer: no secrets, no preview)."""

    accept_secrets: bool
    supports_preview: bool
    accept_resources: bool
    accept_outputs: bool


@dataclass(frozen=True)
class CheckResult:
    """Checked inputs (``Unknown`` values kept, as in preview) and ``(property, reason)``
    failures."""

    inputs: dict[str, Any]
    failures: list[tuple[str, str]]
    secret_paths: frozenset[SecretPath] = frozenset()


@dataclass(frozen=True)
class DiffResult:
    """The provider's answer to Diff.  The dynamic servicer sets only ``changes``, ``replaces``
    and ``delete_before_replace``; ``stables``, ``changed_keys`` and ``detailed_diff`` stay empty
    (section 3, Diff) and are reported so a test can prove it."""

    changes: DiffChanges
    replaces: list[str]
    delete_before_replace: bool
    stables: list[str] = field(default_factory=list)
    changed_keys: list[str] = field(default_factory=list)
    detailed_diff: dict[str, str] = field(default_factory=dict)
    has_detailed_diff: bool = False


@dataclass(frozen=True)
class CreateResult:
    """The new resource's id and outputs as the engine stores them (``__provider`` included)."""

    id: str
    outs: dict[str, Any]
    secret_paths: frozenset[SecretPath] = frozenset()


@dataclass(frozen=True)
class ReadResult:
    """Live state.  ``id == ""`` means the resource is gone and the engine drops it from state;
    ``inputs`` is None unless the provider returned new inputs (section 3, Read)."""

    id: str
    outs: dict[str, Any]
    inputs: dict[str, Any] | None
    secret_paths: frozenset[SecretPath] = frozenset()


@dataclass(frozen=True)
class UpdateResult:
    """The outputs after an update, as the engine stores them."""

    outs: dict[str, Any]
    secret_paths: frozenset[SecretPath] = frozenset()


def provider_property(provider: ResourceProvider) -> str:
    """Return the ``__provider`` string for ``provider``, built exactly as
    ``pulumi.dynamic.Resource.__init__`` builds it (section 4C step 1).

    The engine strips the secret wrapper before calling the provider (section 2), so the plain
    base64 string is what the provider process receives.
    """
    with _SERIALIZE_LOCK:
        serialized, _contains_secrets = _serialize(True, serialize_provider, provider)
    if not isinstance(serialized, str):  # pragma: no cover - the SDK always returns base64 text
        raise TypeError(f"serialize_provider returned {type(serialized).__name__}")
    return serialized


def pickled_size(provider: ResourceProvider) -> int:
    """Bytes of the dill pickle inside ``__provider``: a few dozen for a by-reference provider,
    kilobytes when dill captured code or globals by value (section 1, sizes table)."""
    return len(base64.b64decode(provider_property(provider)))


def secret(value: object) -> dict[str, Any]:
    """Mark an input value secret, as a ``pulumi.Output.secret`` input reaches the engine: the
    SDK's secret signature dict (``pulumi.runtime.rpc.wrap_rpc_secret``)."""
    wrapped: dict[str, Any] = rpc.wrap_rpc_secret(value)
    return wrapped


def urn_for(
    type_: str, name: str, project: str = "agora-snapshots", stack: str = "test"
) -> str:
    """The URN the engine gives a top-level resource:
    ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    # The engine fills CheckRequest.name/type etc. from the URN (provider_plugin.go); a parent
    # chain "parent$child" precedes the type, and the name is everything after the last "::".
    parts = urn.split("::")
    if len(parts) < 4:
        return "", ""
    return parts[2].rsplit("$", 1)[-1], "::".join(parts[3:])


# --- secrets, unknowns and serialization -------------------------------------------------------


def _strip_secrets(value: Any) -> tuple[Any, bool]:
    """Return ``value`` with every secret wrapper removed, and whether it contained one."""
    if rpc.is_rpc_secret(value):
        inner, _ = _strip_secrets(rpc.unwrap_rpc_secret(value))
        return inner, True
    if isinstance(value, Mapping):
        found = False
        plain: dict[str, Any] = {}
        for key, item in value.items():
            plain[key], item_secret = _strip_secrets(item)
            found = found or item_secret
        return plain, found
    if isinstance(value, (list, tuple)):
        items = [_strip_secrets(item) for item in value]
        return [item for item, _ in items], any(flag for _, flag in items)
    return value, False


def _annotate_secrets(
    outs: Mapping[str, Any], ins: Mapping[str, Any], prefix: SecretPath = ()
) -> set[SecretPath]:
    """The paths the engine marks secret after a call: its ``annotateSecrets(outs, ins)``
    (provider_plugin.go; section 2) recurses where both sides are objects and otherwise marks the
    whole output value secret when the same-named input contains any secret."""
    paths: set[SecretPath] = set()
    for key, in_value in ins.items():
        if key not in outs:
            continue
        out_value = outs[key]
        in_plain = rpc.unwrap_rpc_secret(in_value)
        if (
            isinstance(out_value, Mapping)
            and isinstance(in_plain, Mapping)
            and not rpc.is_rpc_secret(in_value)
        ):
            paths |= _annotate_secrets(out_value, in_plain, (*prefix, key))
        elif _strip_secrets(in_value)[1]:
            paths.add((*prefix, key))
    return paths


def _returned_secret_paths(value: Any, prefix: SecretPath = ()) -> set[SecretPath]:
    """Paths the provider itself returned wrapped (``rpc.wrap_rpc_secret`` in outs; section 2)."""
    if rpc.is_rpc_secret(value):
        return {prefix}
    if isinstance(value, Mapping):
        paths: set[SecretPath] = set()
        for key, item in value.items():
            paths |= _returned_secret_paths(item, (*prefix, key))
        return paths
    return set()


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return True
    if isinstance(value, Mapping):
        return any(_contains_unknown(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_unknown(item) for item in value)
    return False


def _run(coro_factory: Callable[[], Any]) -> Any:
    # A private event loop per call, as the servicer itself does (dynamic/__main__.py): safe from
    # any number of threads, and independent of whatever loop the caller may own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_factory())
    finally:
        loop.close()


def _to_struct(props: Mapping[str, Any]) -> Any:
    return _run(lambda: rpc.serialize_properties(dict(props), {}))


def _from_struct(struct: Any, *, keep_unknowns: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = rpc.deserialize_properties(struct, keep_unknowns)
    return result


def _plain(props: Mapping[str, Any], operation: str, *, allow_unknowns: bool) -> dict[str, Any]:
    stripped, _ = _strip_secrets(props)
    if not allow_unknowns and _contains_unknown(stripped):
        # The engine calls Create/Update/Read/Delete only with known values: during preview it
        # skips Create and Update for dynamic providers (section 3, Diff, "Preview never calls").
        raise ValueError(
            f"{operation}: unknown values occur only in Check and Diff (preview); "
            "the engine never sends them here"
        )
    result: dict[str, Any] = stripped
    return result


# --- the host -----------------------------------------------------------------------------------


class ProviderHost:
    """A ``python -m pulumi.dynamic`` subprocess plus a gRPC client, driven like the engine.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`).  All methods take and
    return plain Python dicts; see the module docstring for what the engine does in between.

    :param project: sets ``PULUMI_PROJECT``; ``Config.get("key")`` in ``configure()`` resolves to
        ``"<project>:key"`` (section 1, recommended pattern 3).
    :param stack: used only to build URNs (the servicer never learns the stack).
    :param cwd: the program directory; the engine starts the plugin there, and because the shim
        runs ``python -m``, it is first on ``sys.path`` (section 1, cwd / PYTHONPATH).  A provider
        pickled by reference must be importable from it.  Default: the current directory.
    :param env: the environment the CLI runs in (default ``os.environ``); the engine passes it on
        and adds ``PULUMI_PROJECT``, ``PULUMI_CONFIG`` and ``PULUMI_RUNTIME_<OPTION>``.
    :param runtime_options: ``runtime.options`` from ``Pulumi.yaml`` (e.g. ``{"virtualenv":
        ".venv"}``), exported as ``PULUMI_RUNTIME_<OPTION>`` as the engine does.
    :param python: the interpreter.  Default: like the shim, ``<virtualenv>/bin/python`` when
        ``runtime_options`` names a ``virtualenv`` (relative to ``cwd``); otherwise this test's
        own interpreter, where the shim would run ``python3`` from ``PATH`` (section 1).
    :param startup_timeout: bound on the wait for the port line and the channel.
    :param call_timeout: per-RPC deadline in seconds, so a hung provider fails a test instead of
        hanging it.  The engine sets none (section 3, Timeouts); ``None`` mirrors that.
    :param task_journal: the provider's task journal file (``AGORA_TASK_JOURNAL``), so a test or
        benchmark keeps its tasks out of the user's ``$PULUMI_HOME`` journal.
    """

    def __init__(
        self,
        *,
        project: str = "agora-snapshots",
        stack: str = "test",
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        runtime_options: Mapping[str, str] | None = None,
        python: str | None = None,
        startup_timeout: float = 30.0,
        call_timeout: float | None = 60.0,
        task_journal: Path | None = None,
    ) -> None:
        self.project = project
        self.task_journal = task_journal
        self.stack = stack
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self._runtime_options = dict(runtime_options or {})
        self.python = python if python is not None else self._default_python()
        self.startup_timeout = startup_timeout
        self.call_timeout = call_timeout
        self._base_env = dict(os.environ if env is None else env)
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Any = None
        self._stub: Any = None
        self._port: int | None = None
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._output_lock = threading.Lock()
        self._drains: list[threading.Thread] = []
        # Until Configure says otherwise the engine assumes a provider takes no secrets.
        self._accept_secrets = False

    def _default_python(self) -> str:
        virtualenv = self._runtime_options.get("virtualenv")
        if virtualenv is None:
            return sys.executable
        # The shim makes a relative virtualenv absolute against its cwd (section 1).
        return str(self.cwd / virtualenv / "bin" / "python")

    # -- lifecycle ------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The environment the provider process gets (engine: provider_plugin.go NewProvider)."""
        env = dict(self._base_env)
        for option, value in self._runtime_options.items():
            env[f"PULUMI_RUNTIME_{option.upper()}"] = value
        env["PULUMI_PROJECT"] = self.project
        if self.task_journal is not None:
            env["AGORA_TASK_JOURNAL"] = str(self.task_journal)
        # PULUMI_CONFIG holds only config in the plugin's own namespace (pulumi-python), which is
        # empty in practice (section 1, "Where those variables come from").
        env["PULUMI_CONFIG"] = "{}"
        return env

    def start(self) -> ProviderHost:
        """Start the provider process and connect; raises :class:`ProviderHostError` with the
        tail of the child's stderr if it dies or stays silent past ``startup_timeout``."""
        if self._process is not None:
            raise ProviderHostError("provider host already started")
        # The shim runs `python -u -m pulumi.dynamic <engine address>`; the servicer ignores the
        # argument, and there is no engine here to name, so none is passed.
        # The engine holds the write end of the provider's stdin for the provider's whole life
        # (plugin.go): the provider sees it close when the engine is gone (drop_engine).
        self._process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            [self.python, "-u", "-m", "pulumi.dynamic"],
            cwd=self.cwd,
            env=self.environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self._port = self._wait_for_port()
            self._channel = grpc.insecure_channel(
                f"127.0.0.1:{self._port}", options=_CHANNEL_OPTIONS
            )
            try:
                grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
            except grpc.FutureTimeoutError:
                raise ProviderHostError(
                    f"port {self._port} did not accept a gRPC connection within "
                    f"{self.startup_timeout}s{self._stderr_tail()}"
                ) from None
            self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> int:
        process = self._process
        if process is None or process.stdout is None or process.stderr is None:
            raise ProviderHostError("provider process started without pipes")
        first_line: queue.Queue[str | None] = queue.Queue(maxsize=1)
        stdout_drain = threading.Thread(
            target=self._drain,
            args=(process.stdout, self._stdout, first_line),
            name="provider-host-stdout",
            daemon=True,
        )
        stderr_drain = threading.Thread(
            target=self._drain,
            args=(process.stderr, self._stderr, None),
            name="provider-host-stderr",
            daemon=True,
        )
        # Both pipes are drained for the host's whole life: provider print()s and logging go to
        # them (section 1, Logging), and a full pipe would block the provider mid-RPC.
        for drain in (stdout_drain, stderr_drain):
            drain.start()
            self._drains.append(drain)
        try:
            line = first_line.get(timeout=self.startup_timeout)
        except queue.Empty:
            raise ProviderHostError(
                f"no port from `python -m pulumi.dynamic` within {self.startup_timeout}s"
                f"{self._stderr_tail()}"
            ) from None
        if line is None:
            process.wait(timeout=self.startup_timeout)
            stderr_drain.join(timeout=self.startup_timeout)
            raise ProviderHostError(
                f"`python -m pulumi.dynamic` exited with {process.returncode} before reporting "
                f"its port{self._stderr_tail()}"
            )
        try:
            return int(line.strip())
        except ValueError:
            raise ProviderHostError(
                f"expected the port on the first stdout line, got {line.strip()!r}"
                f"{self._stderr_tail()}"
            ) from None

    def _drain(
        self, pipe: Any, sink: list[str], first_line: queue.Queue[str | None] | None
    ) -> None:
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", errors="replace")
            if first_line is not None:
                # The servicer writes the port as the first line of stdout (section 1).
                first_line.put(text)
                first_line = None
                continue
            with self._output_lock:
                sink.append(text)
        if first_line is not None:
            first_line.put(None)

    def _stderr_tail(self, lines: int = 20) -> str:
        tail = self.stderr_text().splitlines()[-lines:]
        return ("; stderr:\n" + "\n".join(tail)) if tail else "; stderr was empty"

    def drop_engine(self) -> None:
        """What the provider sees when the engine dies (``kill -9`` of the CLI): every call in
        flight loses its caller and the provider's stdin closes. The process is left to act on
        it (the product's provider stops what it was creating, then exits)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        process = self._process
        if process is not None and process.stdin is not None:
            process.stdin.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the channel and end the process as the engine does when it closes a plugin:
        SIGINT, then kill after ``timeout`` seconds (5 in the engine: plugin.go).  Idempotent.
        Output stays readable through :meth:`stdout_text` / :meth:`stderr_text`."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        for drain in self._drains:
            drain.join(timeout=timeout)
        # A grandchild that inherited the pipes can keep them open after the provider exits; a
        # drain still blocked in readline() holds the pipe's lock, so close only finished ones.
        if not any(drain.is_alive() for drain in self._drains):
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> ProviderHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The provider process (to check its pid or exit status)."""
        if self._process is None:
            raise ProviderHostError("provider host not started")
        return self._process

    @property
    def port(self) -> int:
        if self._port is None:
            raise ProviderHostError("provider host not started")
        return self._port

    def stdout_text(self) -> str:
        """Everything the provider printed to stdout after the port line."""
        with self._output_lock:
            return "".join(self._stdout)

    def stderr_text(self) -> str:
        """Everything the provider wrote to stderr (tracebacks, logging, ``pulumi.log``).  Complete
        once :meth:`stop` has returned; scan it to prove no secret reached a log (section 2)."""
        with self._output_lock:
            return "".join(self._stderr)

    # -- RPCs -----------------------------------------------------------------------------------

    def _call(self, operation: str, request: Any) -> Any:
        if self._stub is None:
            raise ProviderHostError("provider host not started")
        method = getattr(self._stub, operation)
        try:
            return method(request, timeout=self.call_timeout)
        except grpc.RpcError as error:
            raise ProviderError(operation, error.code().name, error.details() or "") from None

    def _rpc(self, operation: str, message: Callable[..., Any], urn: str, *,
             id_: str | None = None, unknowns: bool = False, **bags: Mapping[str, Any]) -> Any:
        """Send ``operation`` about the resource ``urn`` and return the answer: the request
        carries the resource's id (all but Check and Create), URN, name and type, and each
        property bag in ``bags`` as the engine sends it (``unknowns`` only in Check and Diff)."""
        type_, name = _urn_type_and_name(urn)
        ids = {} if id_ is None else {"id": id_}
        sent = {key: self._send(bag, operation, allow_unknowns=unknowns)
                for key, bag in bags.items()}
        return self._call(operation, message(urn=urn, name=name, type=type_, **ids, **sent))

    def _send(self, props: Mapping[str, Any], operation: str, *, allow_unknowns: bool) -> Any:
        if self._accept_secrets:  # pragma: no cover - the dynamic servicer never accepts secrets
            return _to_struct(props)
        return _to_struct(_plain(props, operation, allow_unknowns=allow_unknowns))

    def plugin_version(self) -> str:
        """GetPluginInfo: the dynamic servicer reports 0.1.0 (section 1)."""
        from google.protobuf import empty_pb2

        info = self._call("GetPluginInfo", empty_pb2.Empty())
        version: str = info.version
        return version

    def configure(
        self, config: Mapping[str, object], secret_keys: Collection[str] = ()
    ) -> ConfigureResult:
        """Send stack config as the engine does (section 1, recommended pattern 3).

        :param config: full keys, ``"namespace:key"``; non-string values (objects, lists,
            numbers, booleans) travel as JSON text, as the engine's config values do.
        :param secret_keys: keys whose values are secret; they travel wrapped and the servicer
            unwraps them, so ``configure()`` sees plaintext.

        The servicer stores the config and calls each provider's ``configure()`` lazily, on the
        first RPC that loads that provider's pickle, once per distinct pickle per process.
        """
        unknown_keys = set(secret_keys) - set(config)
        if unknown_keys:
            raise ValueError(f"secret_keys not in config: {sorted(unknown_keys)}")
        args: dict[str, Any] = {}
        variables: dict[str, str] = {}
        for key, value in config.items():
            # The engine's config values are text; objects are marshalled compactly by Go's
            # encoding/json, which sorts keys.
            text = value if isinstance(value, str) else json.dumps(
                value, separators=(",", ":"), sort_keys=True
            )
            args[key] = rpc.wrap_rpc_secret(text) if key in secret_keys else text
            # The engine also sends the older "<pkg>:config:<key>" spelling (provider_plugin.go
            # Configure); the dynamic servicer reads only `args`.
            variables[f"pulumi-python:config:{key}"] = text
        request = provider_pb2.ConfigureRequest(
            variables=variables,
            args=_to_struct(args),
            acceptSecrets=True,
            acceptResources=True,
            sends_old_inputs=True,
            sends_old_inputs_to_delete=True,
        )
        response = self._call("Configure", request)
        self._accept_secrets = bool(response.acceptSecrets)
        return ConfigureResult(
            accept_secrets=bool(response.acceptSecrets),
            supports_preview=bool(response.supportsPreview),
            accept_resources=bool(response.acceptResources),
            accept_outputs=bool(response.acceptOutputs),
        )

    def check(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckResult:
        """Check: ``olds`` are the old *inputs* (``{}`` on create), ``news`` the new inputs,
        ``__provider`` included (section 3, Check).  ``news`` may hold ``pulumi.output.UNKNOWN``
        values, as during preview; they come back as ``Unknown`` in ``inputs``."""
        response = self._rpc("Check", provider_pb2.CheckRequest, urn, unknowns=True,
                             olds=olds, news=news)
        inputs = _from_struct(response.inputs, keep_unknowns=True)
        failures = [(failure.property, failure.reason) for failure in response.failures]
        return CheckResult(
            inputs=_strip_secrets(inputs)[0],
            failures=failures,
            secret_paths=_secrets(inputs, news),
        )

    def diff(
        self,
        id_: str,
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
    ) -> DiffResult:
        """Diff: ``olds`` are the old *outputs* (section 3, Diff); ``old_inputs`` defaults to
        them.  ``news`` may hold unknown values (preview)."""
        response = self._rpc("Diff", provider_pb2.DiffRequest, urn, id_=id_, unknowns=True,
                             olds=olds, news=news,
                             old_inputs=olds if old_inputs is None else old_inputs)
        return DiffResult(
            changes=_DIFF_CHANGES[response.changes],
            replaces=list(response.replaces),
            delete_before_replace=bool(response.deleteBeforeReplace),
            stables=list(response.stables),
            changed_keys=list(response.diffs),
            detailed_diff={
                key: provider_pb2.PropertyDiff.Kind.Name(value.kind)
                for key, value in response.detailedDiff.items()
            },
            has_detailed_diff=bool(response.hasDetailedDiff),
        )

    def create(self, urn: str, properties: Mapping[str, Any]) -> CreateResult:
        """Create with the checked inputs.  An empty id is an error, as in the engine
        (provider_plugin.go Create: "returned empty resource.ID")."""
        response = self._rpc("Create", provider_pb2.CreateRequest, urn, properties=properties)
        if not response.id:
            raise ProviderError(
                "Create", "OK", f"plugin returned empty resource.ID from create '{urn}'"
            )
        outs = _from_struct(response.properties)
        return CreateResult(
            id=response.id, outs=_strip_secrets(outs)[0], secret_paths=_secrets(outs, properties)
        )

    def read(
        self,
        id_: str,
        urn: str,
        properties: Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
    ) -> ReadResult:
        """Read (refresh): ``properties`` are the old outputs, ``inputs`` the old inputs
        (section 3, Read).  A result with ``id == ""`` means the resource is gone."""
        response = self._rpc("Read", provider_pb2.ReadRequest, urn, id_=id_,
                             properties=properties, inputs=inputs or {})
        outs = _from_struct(response.properties)
        new_inputs = _from_struct(response.inputs) if response.HasField("inputs") else None
        return ReadResult(
            id=response.id,
            outs=_strip_secrets(outs)[0],
            inputs=None if new_inputs is None else _strip_secrets(new_inputs)[0],
            secret_paths=frozenset(_secrets(outs, properties)),
        )

    def update(
        self,
        id_: str,
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
    ) -> UpdateResult:
        """Update: ``olds`` are the old outputs, ``news`` the checked new inputs (section 3)."""
        response = self._rpc("Update", provider_pb2.UpdateRequest, urn, id_=id_, olds=olds,
                             news=news, old_inputs=olds if old_inputs is None else old_inputs)
        outs = _from_struct(response.properties)
        return UpdateResult(outs=_strip_secrets(outs)[0], secret_paths=_secrets(outs, news))

    def delete(
        self,
        id_: str,
        urn: str,
        properties: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete with the outputs (section 3).  Raising means the resource stays in state."""
        self._rpc("Delete", provider_pb2.DeleteRequest, urn, id_=id_, properties=properties,
                  old_inputs=properties if old_inputs is None else old_inputs)

    # -- convenience ----------------------------------------------------------------------------

    def urn(self, name: str, type_: str = DEFAULT_RESOURCE_TYPE) -> str:
        """The URN of a top-level resource of this host's project and stack."""
        return urn_for(type_, name, self.project, self.stack)

    def resource(
        self,
        provider: ResourceProvider,
        *,
        name: str,
        type_: str = DEFAULT_RESOURCE_TYPE,
    ) -> HostedResource:
        """A handle that remembers one resource's state and threads ``__provider`` through, so
        a test reads like the engine's steps: check -> create -> diff -> update -> read ->
        delete."""
        return HostedResource(self, provider, urn=self.urn(name, type_))


def _secrets(outs: Mapping[str, Any], ins: Mapping[str, Any]) -> frozenset[SecretPath]:
    return frozenset(_annotate_secrets(outs, ins) | _returned_secret_paths(outs))


class HostedResource:
    """One resource's life in a :class:`ProviderHost`, with the state the engine would keep.

    ``inputs`` are the last checked (or created/updated) inputs, secret markers kept as the
    engine keeps them; ``outputs`` the stored outputs; ``id`` is None until created and after
    delete or a read that found the resource gone.  Every call sends what the engine sends at
    that step (section 3): Check gets the old inputs, Diff/Update the old outputs, Read the old
    outputs and inputs, Delete the outputs.

    Usually made by ``ProviderHost.resource(provider, name=...)``.  ``host`` (``ProviderHost``):
    the started host.  ``provider`` (``ResourceProvider``): serialized once into ``__provider`` as
    the SDK does (``provider_property``).  ``urn`` (str): the resource's URN.  Methods ``check``,
    ``create``, ``diff``, ``update``, ``read`` and ``delete`` return the host's results; a call
    that needs an id before ``create`` raises ``ValueError``, a failing RPC ``ProviderError``.
    """

    def __init__(self, host: ProviderHost, provider: ResourceProvider, *, urn: str) -> None:
        self.host = host
        self.urn = urn
        self.provider_value = provider_property(provider)
        self.id: str | None = None
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.output_secret_paths: frozenset[SecretPath] = frozenset()
        self._checked: dict[str, Any] | None = None

    def _with_provider(self, news: Mapping[str, Any]) -> dict[str, Any]:
        if PROVIDER_KEY in news:
            # dynamic.Resource refuses a user-supplied __provider; so does this handle.
            raise ValueError("A dynamic resource must not define the __provider key")
        return {**news, PROVIDER_KEY: self.provider_value}

    @property
    def state(self) -> dict[str, Any]:
        """The outputs as the engine stores them: secret markers at ``output_secret_paths``."""
        return _rewrap(self.outputs, self.output_secret_paths)

    def _require_id(self, operation: str) -> str:
        if self.id is None:
            raise ValueError(f"{operation}: the resource does not exist (create it first)")
        return self.id

    def check(self, news: Mapping[str, Any]) -> CheckResult:
        """Check new inputs against the old inputs; on success they become the inputs the next
        create or update sends (secret markers re-applied as the engine does)."""
        result = self.host.check(self.urn, self.inputs, self._with_provider(news))
        if not result.failures:
            self._checked = _rewrap(result.inputs, result.secret_paths)
        return result

    def _take_checked(self, news: Mapping[str, Any] | None, operation: str) -> dict[str, Any]:
        if news is not None:
            return self._with_provider(news)
        if self._checked is None:
            raise ValueError(f"{operation}: call check() first or pass the inputs")
        return self._checked

    def create(self, inputs: Mapping[str, Any] | None = None) -> CreateResult:
        """Create from the last checked inputs (or ``inputs``, sent unchecked)."""
        properties = self._take_checked(inputs, "create")
        result = self.host.create(self.urn, properties)
        self.id, self.inputs, self._checked = result.id, properties, None
        self.outputs, self.output_secret_paths = result.outs, result.secret_paths
        return result

    def diff(self, news: Mapping[str, Any]) -> DiffResult:
        """Diff the stored outputs against ``news`` (``__provider`` added)."""
        return self.host.diff(
            self._require_id("diff"),
            self.urn,
            self.state,
            self._with_provider(news),
            old_inputs=self.inputs,
        )

    def update(self, news: Mapping[str, Any] | None = None) -> UpdateResult:
        """Update from the last checked inputs (or ``news``, sent unchecked)."""
        id_ = self._require_id("update")
        properties = self._take_checked(news, "update")
        result = self.host.update(id_, self.urn, self.state, properties, old_inputs=self.inputs)
        self.inputs, self._checked = properties, None
        self.outputs, self.output_secret_paths = result.outs, result.secret_paths
        return result

    def read(self) -> ReadResult:
        """Refresh: on an empty id the resource is dropped, as the engine drops it."""
        result = self.host.read(self._require_id("read"), self.urn, self.state, self.inputs)
        if not result.id:
            self.id, self.inputs, self.outputs = None, {}, {}
            self.output_secret_paths = frozenset()
            return result
        self.id, self.outputs = result.id, result.outs
        self.output_secret_paths = result.secret_paths
        if result.inputs is not None:
            self.inputs = _rewrap(result.inputs, _secrets(result.inputs, self.inputs))
        return result

    def delete(self) -> None:
        """Delete with the stored outputs; the state is cleared only if the provider succeeds."""
        self.host.delete(self._require_id("delete"), self.urn, self.state, old_inputs=self.inputs)
        self.id, self.inputs, self.outputs = None, {}, {}
        self.output_secret_paths = frozenset()


def _rewrap(props: Mapping[str, Any], paths: Collection[SecretPath]) -> dict[str, Any]:
    """Wrap the values at ``paths`` as secrets again (the engine's state keeps the marker)."""
    result: dict[str, Any] = dict(props)
    for path in sorted(paths, key=len):
        _wrap_at(result, path)
    return result


def _wrap_at(props: dict[str, Any], path: SecretPath) -> None:
    head, *rest = path
    if head not in props:
        return
    if not rest:
        props[head] = rpc.wrap_rpc_secret(props[head])
        return
    child = props[head]
    if isinstance(child, dict) and not rpc.is_rpc_secret(child):
        child = dict(child)
        props[head] = child
        _wrap_at(child, tuple(rest))

