"""One engine run (``refresh``, ``up`` or ``preview``) in a process of its own: ``python -m
snapshot_resources.reconcile.worker REQUEST RESULT``.

Why a process: the project's ``__main__.py`` runs as an Automation API inline program, served by
the process that starts the Pulumi CLI (``snapshot_resources.engine``), and the CLI writes its
progress to that process through pipes.  Run inside the reconciler, a ``kill -9`` of the
reconciler would take the program's host and the pipes' reader with it: the CLI then dies in the
middle of the update (SIGPIPE) and leaves the stack locked, with resource operations half done
(measured: a diy backend stays locked until ``pulumi cancel``).  This worker is started in a
session of its own, reads the CLI's output itself and writes its result to a file, never to a
pipe, so a killed reconciler leaves it to finish its one run, save the state and release the
lock; the next reconciler waits for that lock and goes on from the state.  SIGINT and SIGTERM
are ignored here: the reconciler interrupts the CLI itself (``AutomationStackOps.interrupt``),
which then cancels gracefully.

REQUEST (JSON): ``operation`` (``"up"``, ``"refresh"`` or ``"preview"``), ``cli`` (the directory
holding ``pulumi``), ``cwd`` (the project directory), ``stack`` (its name), ``targets`` and
``replace`` (URNs; no targets: the whole stack), ``env`` (variables for the CLI, on top of this
process's environment).  RESULT (JSON, written once at the end): ``ok`` (bool), ``busy`` (bool:
the stack was locked by another update), ``error`` (str: the CLI's last lines, or ""),
``seconds`` (float), and when ``ok``, ``sessions``: the URNs of the ``SnapshotSession``
resources the program registers (a preview's engine events; empty for the other operations).
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pulumi import automation as auto

__all__ = ["main", "run_operation"]


def run_operation(request: dict[str, Any]) -> dict[str, Any]:
    """Run the ``request`` (module docstring) and return its RESULT; raises nothing for a
    failed run (``ok`` False), ``KeyError``/``ValueError`` for a malformed request."""
    from pulumi import automation as auto

    from snapshot_resources import engine

    operation = request["operation"]
    if operation not in ("up", "refresh", "preview"):
        raise ValueError(f"operation must be up, refresh or preview, not {operation!r}")
    cli = engine.PulumiCli(Path(request["cli"]), "", "reconcile")
    env = {str(k): str(v) for k, v in request["env"].items()}
    if operation == "preview":
        env.update(engine.PREVIEW_ENV)  # a preview writes nothing that matters
    started = time.monotonic()
    lines: list[str] = []
    options: dict[str, Any] = {}
    if request.get("targets"):
        options["target"] = list(request["targets"])
    if operation == "up" and request.get("replace"):
        options["replace"] = list(request["replace"])
    sessions: list[str] = []
    if operation == "preview":
        options["on_event"] = functools.partial(_registered_session, sessions)
    try:
        stack = engine.select_stack(cli, Path(request["cwd"]), request["stack"], env,
                                    create=False)
        getattr(stack, operation)(color="never", on_output=lines.append, **options)
    except auto.errors.ConcurrentUpdateError as error:
        return _result(False, True, str(error), started)
    except auto.errors.CommandError as error:
        return _result(False, False, str(error), started)
    return {**_result(True, False, "", started), "sessions": sorted(set(sessions))}


# The steps of a preview that mean the program registers the resource (the others: a resource in
# the state that the program no longer declares, or one it only reads).
_REGISTERED_OPS: Final = frozenset({"same", "create", "update", "replace", "create-replacement",
                                    "import", "import-replacement"})


def _registered_session(sessions: list[str], event: auto.EngineEvent) -> None:
    """Collect the URN of each session the program registers (``preview``'s engine events)."""
    from snapshot_resources.session import SESSION_TYPE

    pre = event.resource_pre_event
    if pre is None:
        return
    metadata = pre.metadata
    if metadata.type == SESSION_TYPE and str(metadata.op.value) in _REGISTERED_OPS:
        sessions.append(metadata.urn)


def _result(ok: bool, busy: bool, error: str, started: float) -> dict[str, Any]:
    return {"ok": ok, "busy": busy, "error": error, "seconds": time.monotonic() - started}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``argv`` is ``[REQUEST, RESULT]`` (paths).  Exit 0 once RESULT is written
    (whatever the run's outcome), 2 for a bad request."""
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m snapshot_resources.reconcile.worker REQUEST RESULT",
              file=sys.stderr)
        return 2
    request_path, result_path = (Path(a) for a in args)
    try:
        result = run_operation(json.loads(request_path.read_text()))
    except (KeyError, ValueError, TypeError) as error:
        print(f"bad request: {error}", file=sys.stderr)
        return 2
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(result_path)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by AutomationStackOps
    sys.exit(main())
