"""What the reconciler knows of a stack: the sessions in Pulumi's state and the declared ones.

The reconciler owns no state (docs/reconcile.md): each decision starts from

* the stack's state, read as ``pulumi stack export`` prints it (secrets stay ciphertext: only
  plain outputs are read), parsed by ``sessions_from_export``; and
* the stack file ``Pulumi.<stack>.yaml``: the names under ``<project>:sessions``
  (``declared_sessions``), which ``__main__.py`` turns into ``SnapshotSession`` resources of the
  same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from snapshot_resources.session import SESSION_TYPE

__all__ = [
    "SESSION_TYPE",
    "SessionRecord",
    "declared_sessions",
    "has_resources",
    "project_name",
    "session_urn",
    "sessions_from_export",
]

"""The type token of ``SnapshotSession`` resources in the state (permanent API, provider.py)."""


@dataclass(frozen=True)
class SessionRecord:
    """One ``SnapshotSession`` as the state records it (plain outputs only).

    ``name`` (str): the resource name (the session's key in the stack file).  ``urn`` (str).
    ``sid`` (str): the task's id.  ``cname`` (str), ``uid`` (str): channel and recorder uid.
    ``app_id`` (str | None).  ``max_idle_time`` (int | None, s): from ``recordingConfig``.
    ``token_expires_at`` (float | None, Unix s): output ``tokenExpiresAt``; None without an RTC
    token of known expiry.  ``resource_expires_at`` (float | None, Unix s): output
    ``resourceExpiresAt``.  ``resource_expired_hour`` (int | None, h).
    """

    name: str
    urn: str
    sid: str
    cname: str
    uid: str
    app_id: str | None = None
    max_idle_time: int | None = None
    token_expires_at: float | None = None
    resource_expires_at: float | None = None
    resource_expired_hour: int | None = None
    given_token: bool = False


def session_urn(stack: str, project: str, name: str) -> str:
    """The URN of session ``name`` of ``project``'s stack ``stack`` (a child of the stack, as
    ``__main__.py`` registers it): ``urn:pulumi:<stack>::<project>::<SESSION_TYPE>::<name>``."""
    return f"urn:pulumi:{stack}::{project}::{SESSION_TYPE}::{name}"


def sessions_from_export(document: Mapping[str, Any]) -> dict[str, SessionRecord]:
    """Resource name -> ``SessionRecord`` for every ``SnapshotSession`` in a ``pulumi stack
    export`` document (``{"deployment": {"resources": [...]}}``).  Resources without a plain
    ``sid`` are skipped.  Raises nothing for a document of another shape (returns ``{}``)."""
    deployment = document.get("deployment")
    resources = deployment.get("resources") if isinstance(deployment, Mapping) else None
    found: dict[str, SessionRecord] = {}
    for resource in resources if isinstance(resources, list) else ():
        if not isinstance(resource, Mapping) or resource.get("type") != SESSION_TYPE:
            continue
        urn = resource.get("urn")
        outputs = resource.get("outputs")
        if not isinstance(urn, str) or not isinstance(outputs, Mapping):
            continue
        sid, cname, uid = (outputs.get(k) for k in ("sid", "cname", "uid"))
        if not (isinstance(sid, str) and isinstance(cname, str) and isinstance(uid, str)):
            continue
        name = urn.rsplit("::", 1)[1]
        recording = outputs.get("recordingConfig")
        idle = recording.get("maxIdleTime") if isinstance(recording, Mapping) else None
        hours = outputs.get("resourceExpiredHour")
        app_id = outputs.get("appId")
        found[name] = SessionRecord(
            name=name, urn=urn, sid=sid, cname=cname, uid=uid,
            app_id=app_id if isinstance(app_id, str) else None,
            max_idle_time=_whole(idle),
            token_expires_at=_unix(outputs.get("tokenExpiresAt")),
            resource_expires_at=_unix(outputs.get("resourceExpiresAt")),
            resource_expired_hour=_whole(hours),
            given_token=outputs.get("token") not in (None, ""),
        )
    return found


def has_resources(document: Mapping[str, Any]) -> bool:
    """Whether the state holds anything beyond the stack itself and providers: False for a stack
    never deployed or destroyed, which the reconciler leaves alone (docs/reconcile.md)."""
    deployment = document.get("deployment")
    resources = deployment.get("resources") if isinstance(deployment, Mapping) else None
    for resource in resources if isinstance(resources, list) else ():
        kind = resource.get("type") if isinstance(resource, Mapping) else None
        if isinstance(kind, str) and kind != "pulumi:pulumi:Stack" \
                and not kind.startswith("pulumi:providers:"):
            return True
    return False


def project_name(project_dir: Path) -> str:
    """``name`` of ``project_dir/Pulumi.yaml``.  Raises ``FileNotFoundError`` without the file
    and ``ValueError`` when it has no name."""
    document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = document.get("name") if isinstance(document, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"{project_dir / 'Pulumi.yaml'}: no project name")
    return name


def declared_sessions(project_dir: Path, stack: str) -> frozenset[str]:
    """The session names declared in ``project_dir/Pulumi.<stack>.yaml`` under
    ``<project>:sessions`` or ``sessions`` (only the keys are read: no secret is decrypted).  A stack file
    without sessions declares none.  Raises ``FileNotFoundError`` without the stack file, and
    ``ValueError`` when it is empty (e.g. read while a deploy rewrites it: an empty file must not
    mean "nothing declared"), is not YAML (the message gives the position only, never the line:
    it may hold a plaintext secret), or ``sessions`` is not a mapping."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where}") from None
    except yaml.YAMLError:
        raise ValueError(f"{path}: not valid YAML") from None
    if document is None:
        raise ValueError(f"{path}: the stack file is empty")
    config = document.get("config") if isinstance(document, Mapping) else None
    # A key without a namespace is the project's own (the CLI prefixes it with the project name).
    sessions = (config or {}).get(f"{project_name(project_dir)}:sessions",
                                  (config or {}).get("sessions", {})) \
        if isinstance(config, Mapping | None) else None
    if sessions is None:
        return frozenset()
    if not isinstance(sessions, Mapping):
        raise ValueError(f"{path}: sessions must be a mapping of names to sessions")
    return frozenset(str(name) for name in sessions)


def _unix(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _whole(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
