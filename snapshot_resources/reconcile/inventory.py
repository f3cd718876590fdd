"""What the reconciler knows of a stack: the sessions in Pulumi's state and the declared ones.

The reconciler owns no state (docs/reconcile.md): each decision starts from

* the stack's state, read as ``pulumi stack export`` prints it (secrets stay ciphertext: only
  plain outputs are read), parsed by ``sessions_from_export``; and
* the sessions the project's program declares: the resources of the session type it registers,
  by URN, whatever the program (``reconcile.declared``, from a preview).  ``declared_sessions``
  reads the names of this repository's stack-file program directly (``<project>:sessions`` of
  ``Pulumi.<stack>.yaml``), for tools and tests.

A session's name is the name part of its URN (``urn_name``: everything after the URN's third
``::``, so a name may itself contain ``::``); a stack may be named fully qualified
(``organization/<project>/dev``), its URNs and its stack file use the last part
(``stack_short_name``).
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
    "program_problem",
    "project_name",
    "session_urn",
    "sessions_from_export",
    "stack_short_name",
    "urn_name",
]



@dataclass(frozen=True)
class SessionRecord:
    """One ``SnapshotSession`` as the state records it (plain outputs only).

    ``name`` (str): the resource name (the session's key in the stack file).  ``urn`` (str).
    ``sid`` (str): the task's id.  ``cname`` (str), ``uid`` (str): channel and recorder uid.
    ``app_id`` (str | None).  ``max_idle_time`` (int | None, s): from ``recordingConfig``.
    ``token_expires_at`` (float | None, Unix s): output ``tokenExpiresAt``; None without an RTC
    token of known expiry.  ``resource_expires_at`` (float | None, Unix s): output
    ``resourceExpiresAt``.  ``resource_expired_hour`` (int | None, h).  ``given_token`` (bool):
    the stack gave the RTC token.  ``resource_id`` (str | None): output ``resourceId``, for a
    query of the task (S4).
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
    resource_id: str | None = None


_URN_PREFIX = "urn:pulumi:"
_URN_DELIMITER = "::"


def stack_short_name(stack: str) -> str:
    """The stack's own name: ``dev`` for ``dev``, ``acme/dev`` and ``acme/agora-snapshots/dev``
    (Pulumi's fully qualified forms); URNs and ``Pulumi.<stack>.yaml`` use it."""
    return stack.rsplit("/", 1)[-1]


def session_urn(stack: str, project: str, name: str) -> str:
    """The URN of session ``name`` of ``project``'s stack ``stack`` (a child of the stack, as
    ``__main__.py`` registers it): ``urn:pulumi:<stack>::<project>::<SESSION_TYPE>::<name>``,
    with the stack's short name (``stack_short_name``)."""
    return f"{_URN_PREFIX}{stack_short_name(stack)}::{project}::{SESSION_TYPE}::{name}"


def urn_name(urn: str) -> str:
    """The resource name of ``urn`` (``urn:pulumi:<stack>::<project>::<type>::<name>``):
    everything after the third ``::``, as Pulumi splits it (a name may contain ``::``, the stack,
    project and type may not).  Raises ``ValueError`` for a string that is no URN."""
    parts = urn.split(_URN_DELIMITER, 3)
    if not urn.startswith(_URN_PREFIX) or len(parts) != 4:
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return parts[3]


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
        try:
            name = urn_name(urn)
        except ValueError:
            continue
        recording = outputs.get("recordingConfig")
        idle = recording.get("maxIdleTime") if isinstance(recording, Mapping) else None
        hours = outputs.get("resourceExpiredHour")
        app_id = outputs.get("appId")
        found[name] = SessionRecord(
            name=name, urn=urn, sid=sid, cname=cname, uid=uid,
            app_id=_text(app_id),
            max_idle_time=_whole(idle),
            token_expires_at=_unix(outputs.get("tokenExpiresAt")),
            resource_expires_at=_unix(outputs.get("resourceExpiresAt")),
            resource_expired_hour=_whole(hours),
            given_token=outputs.get("token") not in (None, ""),
            resource_id=_text(outputs.get("resourceId")),
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


def program_problem(project_dir: Path, project: str, stack: str) -> str | None:
    """Why the reconciler cannot run ``project_dir``'s program for ``stack``, in one line, or
    None.  It runs ``__main__.py`` as Pulumi's Python executor does (``engine``), so the project
    must be a Python one without a ``main`` elsewhere; a fully qualified stack name
    (``org/project/stack``) must name this project."""
    document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    runtime = document.get("runtime") if isinstance(document, Mapping) else None
    runtime_name = runtime.get("name") if isinstance(runtime, Mapping) else runtime
    main = document.get("main") if isinstance(document, Mapping) else None
    parts = stack.split("/")
    if runtime_name != "python":
        return (f"{project_dir / 'Pulumi.yaml'}: runtime {runtime_name!r}: the reconciler runs "
                "Python programs only (it reads the declared sessions from the program)")
    if main not in (None, "", ".", "./"):
        return (f"{project_dir / 'Pulumi.yaml'}: main {main!r}: the reconciler runs the "
                "project's own __main__.py; move the program there")
    if not (project_dir / "__main__.py").is_file():
        return f"no __main__.py in {project_dir}: the reconciler runs the project's program"
    if len(parts) > 3 or not all(parts):
        return f"--stack {stack!r}: expected STACK, ORG/STACK or ORG/PROJECT/STACK"
    if len(parts) == 3 and parts[1] != project:
        return (f"--stack {stack!r} names project {parts[1]!r}, but {project_dir / 'Pulumi.yaml'} "
                f"is project {project!r}")
    return None


def declared_sessions(project_dir: Path, stack: str) -> frozenset[str]:
    """The session names declared in ``project_dir/Pulumi.<stack>.yaml`` under
    ``<project>:sessions`` or ``sessions`` (only the keys are read: no secret is decrypted).  A stack file
    without sessions declares none.  Raises ``FileNotFoundError`` without the stack file, and
    ``ValueError`` when it is empty (e.g. read while a deploy rewrites it: an empty file must not
    mean "nothing declared"), is not YAML (the message gives the position only, never the line:
    it may hold a plaintext secret), or ``sessions`` is not a mapping."""
    path = project_dir / f"Pulumi.{stack_short_name(stack)}.yaml"
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


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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
