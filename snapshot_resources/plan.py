"""What ``pulumi up`` will do when a stack file changes, decided offline from two versions of it.

Public API::

    stack_config(document, app_id=None) -> stack.StackConfig   # raises SpecError / SecretsError
    plan(old, new) -> list[PlannedChange]                       # two validated stacks
    session_inputs(stack, name) -> dict                         # a session's would-be inputs
    summary(changes) -> dict[str, int]
    PlannedChange(kind, name, action, details, note), Action, REPLACE_TEXT

Sessions: the answer is the provider's own.  Each session's resource inputs are built from each
file as ``stack.deploy`` builds them (``session.resource_inputs`` of the written keys, the App ID
falling back to ``agora:appId``, the storage's target with the session prefix appended by
``target.with_session_prefix``), and the two are compared by ``changes.classify``, the function
``SnapshotSessionProvider.diff`` answers the engine with.  Nothing here restates that rule.

Storage entries are Pulumi component resources, not dynamic resources, so their rule is this
module's own (the engine diffs each child resource by its vendor provider):

* provisioned (``provision: true``): a different ``vendor``, ``region`` or ``bucket`` is a new
  bucket, a **replace**: Pulumi creates the new bucket, then deletes the old one with the
  snapshots already taken in it.  ``retentionDays``, ``fileNamePrefix`` and ``extensionParams``
  **update** children in place (lifecycle rule, upload policy, encryption).  The upload key is the
  component's own (an IAM user named after the storage entry), so it stays the same across those
  changes; only a different vendor, which is a different component type, makes a new key.
* bring your own (``provision: false``): nothing exists at the vendor for Pulumi to change, so any
  difference is an **update** of the target handed to the sessions; new keys are a rotation.
* switching ``provision`` replaces the component: a provisioned bucket is deleted with it.

Secrets.  Files under review hold ``secure:`` ciphertexts that cannot be decrypted here, so they
are compared as ciphertexts: a different one means the value was rotated (or re-encrypted: setting
the same value again, or a new secrets provider, looks the same to plan).  Each is replaced by a
stand-in derived from its ciphertext that passes the field's rules; no value, stand-in or
ciphertext is ever printed, only the path and "rotated".
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from snapshot_resources import changes, rules
from snapshot_resources.session import resource_inputs
from snapshot_resources.spec import (
    Path,
    StorageSpec,
    is_secure_marker,
    parse_stack,
    storage_target,
)
from snapshot_resources.stack import StackConfig
from snapshot_resources.target import StorageTarget, with_session_prefix

Kind = Literal["storage", "session"]


class Action(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    UPDATE = "update"
    REPLACE = "replace"
    UNCHANGED = "unchanged"


REPLACE_TEXT: Final = "replace (new sid: snapshots restart, a gap in the series)"
"""How a session replacement reads: a new task has a new sid, and no snapshot is taken between the
stop of the old task and the start of the new one (delete-before-replace, changes.py)."""

COMPARABLE_SECRETS: Final = frozenset({*rules.SECRET_FIELDS, "appId"})
"""Keys whose ``secure:`` value plan can stand in for: every field spec.py treats as secret, and
the App ID, which some teams keep encrypted too."""

PROVISIONED_REPLACE_KEYS: Final = ("vendor", "region", "bucket", "provision")
"""Storage fields whose change makes a provisioned storage a new bucket (see module docstring)."""


@dataclass(frozen=True)
class PlannedChange:
    """What happens to one storage entry or session: ``details`` are the dotted paths that differ
    (for sessions exactly ``changes.classify``'s), ``note`` what a reviewer should know."""

    kind: Kind
    name: str
    action: Action
    details: tuple[str, ...] = ()
    note: str = ""

    @property
    def rotated(self) -> tuple[str, ...]:
        """The details that are secrets (rules.SECRET_FIELDS): shown as rotated, never a value."""
        return tuple(d for d in self.details if d.rsplit(".", 1)[-1] in rules.SECRET_FIELDS)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": str(self.action),
            "details": list(self.details),
            "rotated": list(self.rotated),
            "note": self.note,
        }


class SecretsError(Exception):
    """``secure:`` values at paths plan cannot compare (not in ``COMPARABLE_SECRETS``)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths: list[Path] = list(paths)
        super().__init__(f"{len(self.paths)} secret value(s) plan cannot compare")


# --------------------------------------------------------------------------------------------------
# Reading a validated stack document


def _stand_in(key: str, ciphertext: str) -> str:
    """A value for a ``secure:`` field that passes the field's rule and differs exactly when the
    ciphertext does.  It is a digest of the ciphertext, which is itself no secret."""
    digest = hashlib.sha256(ciphertext.encode()).digest()
    if key == "salt":  # rules.SALT_REGEX: canonical Base64 of 32 bytes
        return base64.b64encode(digest).decode()
    return "secure-" + digest.hex()[:24]  # passes rules.APP_ID as well as any non-empty string


def _stand_ins(value: Any, path: Path, unsupported: list[Path]) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secure_marker(item) and str(key) in COMPARABLE_SECRETS:
                out[key] = _stand_in(str(key), item["secure"])
            elif is_secure_marker(item):
                unsupported.append((*path, str(key)))
                out[key] = item
            else:
                out[key] = _stand_ins(item, (*path, str(key)), unsupported)
        return out
    if isinstance(value, list):
        return [_stand_ins(item, (*path, i), unsupported) for i, item in enumerate(value)]
    return value


def stack_config(document: Mapping[str, Any], app_id: object = None) -> StackConfig:
    """A validated stack document (``validate.load_file``'s) as ``stack.deploy`` would read it,
    ``secure:`` values replaced by stand-ins.  Raises ``SecretsError`` for a secret plan cannot
    compare and ``spec.SpecError`` for a document that is not valid."""
    unsupported: list[Path] = []
    raw = _stand_ins(document, (), unsupported)
    if is_secure_marker(app_id):
        assert isinstance(app_id, Mapping)  # narrowed by is_secure_marker
        app_id = _stand_in("appId", app_id["secure"])
    if unsupported:
        raise SecretsError(unsupported)
    default_app_id = app_id if isinstance(app_id, str) else None
    return StackConfig(parse_stack(raw, default_app_id=default_app_id), raw, default_app_id)


# --------------------------------------------------------------------------------------------------
# Would-be inputs


def _provisioned_keys(name: str, storage: StorageSpec) -> tuple[str, str]:
    """Stand-ins for the upload key a provisioning component creates: the same for the same
    storage entry and vendor (the key belongs to the component's user, named after the entry)."""
    key = f"provisioned-{storage.vendorCode}-{name}"
    return key, key


def storage_target_of(stack: StackConfig, name: str) -> StorageTarget:
    """The ``target`` the storage component ``name`` would emit (``target.build_target``)."""
    storage = stack.spec.storage[name]
    access = secret = None
    if storage.provision:
        access, secret = _provisioned_keys(name, storage)
    return storage_target(storage, (), access_key=access, secret_key=secret)


def session_inputs(stack: StackConfig, name: str) -> dict[str, Any]:
    """The SnapshotSession inputs ``stack.deploy`` would register for session ``name``, with
    stand-ins for secrets and provisioned keys, keyed like ``changes.INPUT_KEYS``."""
    session = stack.spec.sessions[name]
    written = stack.raw.get("sessions", {}).get(name)
    inputs = resource_inputs(session, written)
    app_id = session.appId or stack.app_id
    if app_id is not None:
        inputs["appId"] = app_id
    inputs["storage"] = with_session_prefix(
        storage_target_of(stack, session.storage), tuple(session.fileNamePrefix or ())
    )
    return {key: inputs[key] for key in changes.INPUT_KEYS if key in inputs}


# --------------------------------------------------------------------------------------------------
# The plan


def _storage_fields(storage: StorageSpec) -> dict[str, Any]:
    """What a storage entry is, normalised: names resolved to codes, so ``us-east-1`` and
    ``US_EAST_1`` are the same region.  ``region`` also holds the location a provisioned Azure or
    Google bucket is created in (Agora's code is 0 for any location there)."""
    ext = storage.extensionParams.model_dump(exclude_none=True) if storage.extensionParams else {}
    return {
        "provision": storage.provision,
        "vendor": storage.vendorCode,
        "region": [storage.regionCode, storage.vendor_region if storage.provision else None],
        "bucket": storage.bucket,
        "retentionDays": storage.retentionDays if storage.provision else None,
        "fileNamePrefix": list(storage.fileNamePrefix or ()),
        "extensionParams": ext,
        "accessKey": storage.accessKey,
        "secretKey": storage.secretKey,
        "stsToken": storage.stsToken,
        "stsExpiration": storage.stsExpiration,
    }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found.extend(f"{key}.{n}" for n in _differences(a, b))
        else:
            found.append(key)
    return found


# What a provisioned storage changes in place, by field (storage/aws.py and its siblings).
_CHILDREN: Final = {
    "retentionDays": "the lifecycle rule",
    "fileNamePrefix": "the upload policy and lifecycle rule (scoped to the prefix)",
    "extensionParams": "the bucket encryption and upload policy",
}


def _storage_change(name: str, old: StorageSpec, new: StorageSpec) -> PlannedChange:
    details = tuple(_differences(_storage_fields(old), _storage_fields(new)))
    if not details:
        return PlannedChange("storage", name, Action.UNCHANGED)
    top = {d.split(".", 1)[0] for d in details}
    if old.provision and new.provision and top & set(PROVISIONED_REPLACE_KEYS):
        return PlannedChange(
            "storage", name, Action.REPLACE, details,
            f"a new bucket: Pulumi creates {new.bucket!r}, then deletes {old.bucket!r} with the "
            "snapshots already taken in it (copy them first; a vendor that refuses to delete a "
            "non-empty bucket fails the update there)",
        )
    if old.provision != new.provision:
        if not old.provision:
            note = f"bucket {new.bucket!r} is created: this fails while a bucket of that name exists"
        else:
            note = (f"the provisioned bucket {old.bucket!r} and its upload key are deleted with the "
                    "old component, with every snapshot in it (copy them first)")
            if new.bucket == old.bucket and new.vendorCode == old.vendorCode:
                note += "; the new target names that same bucket, which will no longer exist"
        return PlannedChange("storage", name, Action.REPLACE, details, note)
    if new.provision:
        note = "in place: " + ", ".join(sorted({_CHILDREN.get(k, k) for k in top}))
    elif top & {"accessKey", "secretKey", "stsToken", "stsExpiration"}:
        note = "keys rotated: sessions using it get them through Agora's update API (same sid)"
    else:
        note = "bring your own: nothing changes at the vendor; sessions using it get the new target"
    return PlannedChange("storage", name, Action.UPDATE, details, note)


def _created_storage(name: str, storage: StorageSpec) -> PlannedChange:
    if storage.provision:
        note = f"creates bucket {storage.bucket!r} and an upload-only key"
    else:
        note = "bring your own: nothing is created at the vendor"
    return PlannedChange("storage", name, Action.CREATE, (), note)


def _deleted_storage(name: str, storage: StorageSpec) -> PlannedChange:
    if storage.provision:
        note = (f"deletes bucket {storage.bucket!r} and its upload key, with every snapshot in it "
                "(copy them first)")
    else:
        note = "bring your own: the bucket and its snapshots stay"
    return PlannedChange("storage", name, Action.DELETE, (), note)


def _ordered(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names in the new file's order, then the removed ones in the old file's."""
    return [*new, *(name for name in old if name not in new)]


def _task(stack: StackConfig, name: str) -> tuple[Any, str, str]:
    session = stack.spec.sessions[name]
    return (session.appId or stack.app_id, session.cname, session.uid)


def _session_change(
    old: StackConfig, new: StackConfig, name: str, replaced_storage: set[str]
) -> PlannedChange:
    change = changes.classify(session_inputs(old, name), session_inputs(new, name))
    storage = new.spec.sessions[name].storage
    if change.kind is changes.ChangeKind.REPLACE:
        return PlannedChange("session", name, Action.REPLACE, change.details,
                             "stops the task, then starts a new one (same channel and uid)")
    note = ""
    if storage in replaced_storage:
        # Possible when only a provisioned Azure/Google location changes: Agora's region code is
        # 0 for every location, so the session's inputs, and the provider's answer, stay the same.
        note = f"storage {storage!r} is replaced, but this session's inputs do not change"
    if change.kind is changes.ChangeKind.UPDATE:
        text = "in place through Agora's update API (same sid)"
        return PlannedChange("session", name, Action.UPDATE, change.details,
                             f"{text}; {note}" if note else text)
    return PlannedChange("session", name, Action.UNCHANGED, (), note)


def plan(old: StackConfig, new: StackConfig) -> list[PlannedChange]:
    """Every storage entry and session of either stack, with what ``pulumi up`` does to it when
    the stack goes from ``old`` to ``new``: storage first, each in file order, unchanged included."""
    result: list[PlannedChange] = []
    old_storage, new_storage = old.spec.storage, new.spec.storage
    deleted_buckets = {
        (s.vendorCode, s.bucket): n for n, s in old_storage.items()
        if n not in new_storage and s.provision
    }
    for name in _ordered(old_storage, new_storage):
        if name not in old_storage:
            planned = _created_storage(name, new_storage[name])
            spec = new_storage[name]
            other = deleted_buckets.get((spec.vendorCode, spec.bucket))
            if spec.provision and other is not None:
                # Pulumi creates new resources before it deletes removed ones.
                planned = _with_note(planned, f"bucket {spec.bucket!r} still belongs to storage "
                                     f"{other!r}, which is deleted only after this is created: "
                                     "the create fails (rename with a Pulumi alias instead)")
        elif name not in new_storage:
            planned = _deleted_storage(name, old_storage[name])
        else:
            planned = _storage_change(name, old_storage[name], new_storage[name])
        result.append(planned)
    replaced = {c.name for c in result if c.action is Action.REPLACE}
    old_sessions, new_sessions = old.spec.sessions, new.spec.sessions
    deleted_tasks = {_task(old, n): n for n in old_sessions if n not in new_sessions}
    for name in _ordered(old_sessions, new_sessions):
        if name not in old_sessions:
            planned = PlannedChange("session", name, Action.CREATE, (), "starts a new task")
            other = deleted_tasks.get(_task(new, name))
            if other is not None:
                # S7 code 53: one task per App ID + channel + uid, and Pulumi creates new
                # resources before it deletes removed ones.
                planned = _with_note(planned, f"session {other!r} records the same channel as "
                                     "the same uid and is stopped only after this starts: the "
                                     "start fails with 'task conflict' (53); rename with a Pulumi "
                                     "alias instead")
        elif name not in new_sessions:
            planned = PlannedChange("session", name, Action.DELETE, (),
                                    "stops the task; its snapshots stay in the bucket")
        else:
            planned = _session_change(old, new, name, replaced)
        result.append(planned)
    return result


def _with_note(change: PlannedChange, note: str) -> PlannedChange:
    joined = f"{change.note}; {note}" if change.note else note
    return PlannedChange(change.kind, change.name, change.action, change.details, joined)


def summary(planned: Sequence[PlannedChange]) -> dict[str, int]:
    """How many entries each action has, every action present (Terraform's plan summary)."""
    return {str(action): sum(1 for c in planned if c.action is action) for action in Action}


def has_changes(planned: Sequence[PlannedChange]) -> bool:
    return any(c.action is not Action.UNCHANGED for c in planned)


__all__ = [
    "COMPARABLE_SECRETS",
    "REPLACE_TEXT",
    "Action",
    "PlannedChange",
    "SecretsError",
    "has_changes",
    "plan",
    "session_inputs",
    "stack_config",
    "storage_target_of",
    "summary",
]
