"""Before a session is forgotten, Agora confirms that its task is gone.

An exit notification (11 ``session_exit``, S12) is signed, but a signature proves who sent it,
not that it is true now: a notification about a task that still runs (a resend that arrives
after something restarted the recorder, an NCS error) would make the reconciler ``pulumi state
delete`` the session, leaving its task running unmanaged, and the restart's ``up`` would then
fail with 53 (a second task on the same channel and uid, S7).  So each session about to be
forgotten is queried first (S4), with the provider's settings and client:

* 404, or an exit status (6, 7, 8, 20: ``rules.EXITED_STATUSES``): ``gone``, forget it;
* any other status (the task runs or is starting): ``running``, keep it;
* no answer (429, 5xx or a network fault after the client's retries, 433 resource expired,
  credentials missing): ``unknown``, refresh it instead, which decides with Agora's word and the
  failover grace (the slow, authoritative path).

The credentials are the stack's ``agora:customerId`` and ``agora:customerSecret`` (or
``AGORA_CUSTOMER_ID`` / ``AGORA_CUSTOMER_SECRET``), as the provider reads them: ``pulumi config
--show-secrets --json``, on a pipe, kept only while the queries run and never logged.  A query
takes no lock and changes nothing.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from snapshot_resources.reconcile.inventory import SessionRecord

if TYPE_CHECKING:
    from pulumi.dynamic import Config

    from snapshot_resources import engine

__all__ = ["AgoraTaskQuery", "TaskQuery", "TaskState", "Verdict"]

_CONFIG_TIMEOUT: Final = 60.0  # seconds for `pulumi config` (a read of the stack file)


class TaskState(enum.Enum):
    """What Agora says of a task (module docstring)."""

    GONE = "gone"
    RUNNING = "running"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    """Agora's word on one task: ``state`` (``TaskState``) and ``why`` (words, no secret)."""

    state: TaskState
    why: str


class TaskQuery(Protocol):
    """Asks Agora about tasks; ``states`` returns sid -> ``Verdict`` for each record given."""

    def states(self, records: Sequence[SessionRecord]) -> dict[str, Verdict]: ...


class AgoraTaskQuery:
    """``TaskQuery`` with the provider's client and the stack's settings (module docstring).

    ``cli`` (``engine.PulumiCli``), ``project_dir`` (Path), ``stack`` (str): whose config is
    read.  ``env`` (mapping): variables for the CLI on top of this process's environment.
    """

    def __init__(self, cli: engine.PulumiCli, project_dir: Path, stack: str, *,
                 env: Mapping[str, str]) -> None:
        self._cli = cli
        self._project_dir = project_dir
        self._stack = stack
        self._env = dict(env)

    def states(self, records: Sequence[SessionRecord]) -> dict[str, Verdict]:
        from snapshot_resources.agora import errors
        from snapshot_resources.provider import (
            ProviderConfigError,
            ProviderSettings,
            SnapshotSessionProvider,
        )
        from snapshot_resources.rules import EXITED_STATUSES, QUERY_STATUSES

        if not records:
            return {}
        try:
            config = cast("Config", _Config(self._agora_config()))
            settings = ProviderSettings.from_config(config)
            # The provider's own client (retries, rate limit, endpoints, redaction).
            client = SnapshotSessionProvider._build_client(settings)
        except (ProviderConfigError, OSError, ValueError, subprocess.SubprocessError) as error:
            why = f"cannot ask Agora ({type(error).__name__}: {_first_line(error)})"
            return {r.sid: Verdict(TaskState.UNKNOWN, why) for r in records}
        verdicts: dict[str, Verdict] = {}
        with client:
            for record in records:
                if not (record.app_id and record.resource_id):
                    verdicts[record.sid] = Verdict(TaskState.UNKNOWN, "no appId or resourceId "
                                                   "in the state to query it by")
                    continue
                try:
                    status = client.query(record.app_id, record.resource_id, record.sid).status
                except errors.TaskNotFoundError:
                    verdicts[record.sid] = Verdict(TaskState.GONE, "Agora no longer knows the "
                                                   "task (404)")
                    continue
                except errors.AgoraError as error:
                    verdicts[record.sid] = Verdict(TaskState.UNKNOWN,
                                                   f"the query failed ({type(error).__name__})")
                    continue
                name = QUERY_STATUSES.get(status or 0, "unknown")
                state = TaskState.GONE if status in EXITED_STATUSES else TaskState.RUNNING
                verdicts[record.sid] = Verdict(state, f"the query answers status {status} "
                                               f"({name})")
        return verdicts

    def _agora_config(self) -> dict[str, str]:
        """The stack's ``agora:*`` settings, secrets decrypted (read from a pipe, never a
        file); nothing else is kept."""
        done = subprocess.run(  # noqa: S603 - the CLI we resolved, our own arguments
            [str(self._cli.executable), "config", "--show-secrets", "--json", "--stack",
             self._stack, "--non-interactive"],
            cwd=self._project_dir, env={**os.environ, **self._env}, capture_output=True,
            text=True, timeout=_CONFIG_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise OSError(f"pulumi config failed: {_last_line(done.stderr)}")
        document: Any = json.loads(done.stdout or "{}")
        found: dict[str, str] = {}
        for key, entry in (document.items() if isinstance(document, Mapping) else ()):
            value = entry.get("value") if isinstance(entry, Mapping) else None
            if isinstance(key, str) and key.startswith("agora:") and isinstance(value, str):
                found[key] = value
        return found


class _Config:
    """The ``get`` of ``pulumi.dynamic.Config`` over a mapping, for ``ProviderSettings``."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def get(self, key: str) -> str | None:
        return self._values.get(key)


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
