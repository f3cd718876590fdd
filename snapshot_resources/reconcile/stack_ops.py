"""The stack operations the reconciler uses: the Pulumi CLI, and the Automation API.

``StackOps`` is what the controller needs; ``AutomationStackOps`` implements it for a stack of a
project whose program is this project's ``__main__.py``, run by the real CLI and engine:

* ``export()``: ``pulumi stack export`` without ``--show-secrets`` (the Automation API's
  ``export_stack`` decrypts, docs/engine.md item 9): the reconciler reads plain outputs only.
* ``refresh(urns)``: ``pulumi refresh --target ...``: the provider queries each task (S4) and drops
  the ones that are gone (after ``agora:failoverGrace``, S7).
* ``up(urns, replace=...)``: ``pulumi up --target ... [--replace ...]``: creates the missing
  sessions, and replaces (stop, then start: the resource's ``delete_before_replace``) the ones
  being rotated.  The stack outputs follow (measured on CLI 3.274.1).
* ``forget(urns)``: one ``pulumi state delete <urn>... --yes``: removes sessions whose task Agora
  said has exited (11 ``session_exit``, S12), without the provider's delete, so that the restart
  does not wait out a failover grace for a task known to be gone.  The CLI reads the state, edits
  it and writes it back under the stack's lock (``TotalStateEdit`` then ``ImportDeployment``,
  pkg/cmd/pulumi/state/io.go and backend/diy/backend.go of Pulumi 3.274.1): during someone else's
  update it fails with the lock error instead of writing (``StackBusyError``).
* ``interrupt()``: asks the CLI runs this process started to stop (SIGINT: the CLI cancels
  gracefully, finishing the resource operations in flight, saving the state and releasing the
  lock); used when a SIGTERM's grace runs out.

``export`` and ``forget`` run the CLI with its output going to files, never pipes; ``refresh`` and
``up`` run in a worker process of their own (``reconcile.worker``, which explains why): either
way, a reconciler killed mid-run leaves the CLI to finish, save the state and release the lock.

Errors: ``StackBusyError`` when another update holds the stack's lock (a user's ``pulumi up``,
CI): try again later; ``StackOperationError`` for anything else, with the CLI's last lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import psutil

if TYPE_CHECKING:
    from snapshot_resources import engine

__all__ = ["AutomationStackOps", "StackBusyError", "StackOperationError", "StackOps"]

log = logging.getLogger("snapshot_resources.reconcile")

_TAIL_LINES: Final = 12
_TORN_READ: Final = "failed to load checkpoint"
_TORN_READ_ATTEMPTS: Final = 3
_CANCEL_GRACE: Final = 300.0  # seconds a cancelling CLI gets before it is killed


class StackOperationError(RuntimeError):
    """A stack operation failed; the message ends with the CLI's last lines (no secret: the CLI
    and the provider print none)."""


class StackBusyError(StackOperationError):
    """Another update holds the stack (HTTP 409 / "currently locked"): try again later."""


class StackOps(Protocol):
    """What the controller does to a stack (module docstring).  ``stack`` and ``project`` name
    it (URNs are made from them)."""

    @property
    def stack(self) -> str: ...

    @property
    def project(self) -> str: ...

    def export(self) -> Mapping[str, Any]: ...

    def refresh(self, urns: Sequence[str]) -> None: ...

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None: ...

    def forget(self, urns: Sequence[str]) -> None: ...


class AutomationStackOps:
    """``StackOps`` on stack ``stack_name`` of the project in ``project_dir`` (module docstring).

    ``cli`` (``engine.PulumiCli``): the CLI.  ``project_dir`` (Path): holds ``Pulumi.yaml``,
    ``__main__.py`` and ``Pulumi.<stack>.yaml``.  ``stack_name`` (str).  ``project`` (str): the
    project's name (URNs are made from it).  ``env`` (mapping): variables every CLI run gets
    (``PULUMI_PYTHON_CMD``, ``PULUMI_HOME`` ...) on top of this process's environment, which
    holds the backend and its credentials.  ``timeout`` (float, s, default 3600): the longest a
    single CLI run may take before it is stopped and reported.
    """

    def __init__(self, cli: engine.PulumiCli, project_dir: Path, stack_name: str, *,
                 project: str, env: Mapping[str, str], timeout: float = 3600.0) -> None:
        self._cli_info = cli
        self._project_dir = project_dir
        self._stack = stack_name
        self._project = project
        self._env = dict(env)
        self._timeout = timeout
        self._interrupted: set[tuple[int, float]] = set()  # (pid, start time) sent a SIGINT

    @property
    def stack(self) -> str:
        return self._stack

    @property
    def project(self) -> str:
        return self._project

    def export(self) -> Mapping[str, Any]:
        """``pulumi stack export`` (secrets stay ciphertext), decoded.  A read that meets the
        checkpoint while another process rewrites it (the ``file://`` backend's ``state delete``
        rewrites it in place: a reader then gets "failed to load checkpoint: EOF", measured on
        CLI 3.274.1) is tried again, ``_TORN_READ_ATTEMPTS`` times in all, 0.5 s apart."""
        for attempt in range(1, _TORN_READ_ATTEMPTS + 1):
            try:
                text = self._cli("stack", "export", "--stack", self._stack)
                break
            except StackOperationError as error:
                if attempt == _TORN_READ_ATTEMPTS or _TORN_READ not in str(error):
                    raise
                time.sleep(0.5)
        try:
            document: dict[str, Any] = json.loads(text)
        except ValueError as error:
            raise StackOperationError(f"pulumi stack export: not JSON ({error})") from None
        return document

    def refresh(self, urns: Sequence[str]) -> None:
        """``pulumi refresh --target`` each of ``urns``, in a worker process."""
        self._worker("refresh", urns, ())

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
        """``pulumi up --target`` each of ``urns``, ``--replace`` each of ``replace`` (a subset
        of ``urns``), in a worker process."""
        self._worker("up", urns, replace)

    def preview(self) -> list[str]:
        """``pulumi preview`` of the whole program, in a worker process: the URNs of the
        ``SnapshotSession`` resources it registers (``reconcile.declared``)."""
        return [str(urn) for urn in self._worker("preview", (), ()).get("sessions", ())]

    def forget(self, urns: Sequence[str]) -> None:
        """One ``pulumi state delete`` of all ``urns``."""
        self._cli("state", "delete", *urns, "--stack", self._stack, "--yes")

    def interrupt(self) -> int:
        """SIGINT, once, to every ``pulumi`` process this process started, directly or through a
        worker, that still runs (found with ``psutil``); returns how many were signalled now.

        Once only: Pulumi takes a first SIGINT as "cancel" (finish the resource operations in
        flight, save the state, release the lock) and any later one as "terminate immediately"
        (``pkg/backend/cancellation_scope.go``, Pulumi 3.274), which would cut a create short
        after Agora's start. A CLI started after an earlier call is still signalled."""
        return sum(self._interrupt_once(process) for process in _cli_descendants())

    def _interrupt_once(self, process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            identity = (process.pid, process.create_time())
            if identity not in self._interrupted:
                process.send_signal(signal.SIGINT)
                self._interrupted.add(identity)
                return True
        return False

    def _environment(self) -> dict[str, str]:
        return {**os.environ, **self._env}

    def _cli(self, *args: str) -> str:
        with tempfile.TemporaryDirectory(prefix="reconcile-cli-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            with out.open("w") as stdout, err.open("w") as stderr:
                process = subprocess.Popen(  # noqa: S603 - the CLI we resolved, our arguments
                    [str(self._cli_info.executable), *args, "--non-interactive"],
                    cwd=self._project_dir, env=self._environment(), stdout=stdout,
                    stderr=stderr, stdin=subprocess.DEVNULL)
                code = self._wait(process, f"pulumi {args[0]} {args[1]}")
            if code != 0:
                raise _error(f"pulumi {args[0]} {args[1]}", err.read_text(errors="replace"))
            return out.read_text()

    def _wait(self, process: subprocess.Popen[Any], what: str) -> int:
        """The exit status of ``process`` (the CLI, or a worker running it).  After ``timeout``
        seconds the CLI is interrupted, once (SIGINT: it cancels gracefully, finishing the
        resource operations in flight, and releases the lock; a second SIGINT would make it
        terminate at once, ``interrupt``), and killed only after ``_CANCEL_GRACE`` more (a kill
        can leave the stack locked; the provider's task journal keeps what it was creating):
        reported as ``StackOperationError``."""
        try:
            return process.wait(self._timeout)
        except subprocess.TimeoutExpired:
            pass
        self.interrupt()  # the CLI, run directly (export, forget) or by a worker
        try:
            process.wait(_CANCEL_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise StackOperationError(f"{what}: no answer in {self._timeout:g} s, nor to "
                                      f"SIGINT within {_CANCEL_GRACE:g} s: killed (the stack may "
                                      "stay locked: check with `pulumi stack`, then `pulumi "
                                      "cancel`)") from None
        raise StackOperationError(f"{what}: no answer in {self._timeout:g} s: interrupted")

    def _worker(self, operation: str, urns: Sequence[str], replace: Sequence[str]
                ) -> dict[str, Any]:
        request = {"operation": operation, "cli": str(self._cli_info.bin_dir),
                   "cwd": str(self._project_dir), "stack": self._stack,
                   "targets": list(urns), "replace": list(replace), "env": self._env}
        with tempfile.TemporaryDirectory(prefix="reconcile-run-") as tmp:
            request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
            request_path.write_text(json.dumps(request))
            log_path = Path(tmp) / "worker.log"
            with log_path.open("w") as log_file:
                process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                    [sys.executable, "-m", "snapshot_resources.reconcile.worker",
                     str(request_path), str(result_path)],
                    cwd=self._project_dir, env=self._environment(), stdin=subprocess.DEVNULL,
                    stdout=log_file, stderr=log_file, start_new_session=True)
                code = self._wait(process, f"pulumi {operation}")
            if code != 0 or not result_path.is_file():
                raise StackOperationError(
                    f"pulumi {operation}: the worker exited with {code}: "
                    f"{_tail(log_path.read_text(errors='replace'))}")
            result = json.loads(result_path.read_text())
        if result.get("busy"):
            raise StackBusyError(f"pulumi {operation}: the stack is being updated by someone "
                                 f"else: {_tail(str(result.get('error', '')))}")
        if not result.get("ok"):
            raise StackOperationError(
                f"pulumi {operation} failed: {_tail(str(result.get('error', '')))}")
        log.debug("pulumi %s took %.2f s", operation, result.get("seconds", 0.0))
        return dict(result)


_BUSY_TEXTS: Final = ("the stack is currently locked by", "Another update is currently in progress")


def _error(what: str, stderr: str) -> StackOperationError:
    if any(text in stderr for text in _BUSY_TEXTS):
        return StackBusyError(f"{what}: the stack is being updated by someone else: "
                              f"{_tail(stderr)}")
    return StackOperationError(f"{what} failed: {_tail(stderr)}")


def _cli_descendants() -> list[psutil.Process]:
    """The running ``pulumi`` processes descending from this process (``psutil``)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # gone meanwhile, or not ours to read
            if child.name() == "pulumi":
                found.append(child)
    return found


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-_TAIL_LINES:])
