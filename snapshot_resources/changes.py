"""What a change to a snapshot session's inputs means: nothing, an in-place update, or a replacement.

This is the single copy of the rule. ``provider.SnapshotSessionProvider.diff`` uses it to answer the
engine, and ``snapshot-resources plan`` uses it to tell a reviewer what ``pulumi up`` will do.

The rule (docs/agora-api.md section 5, S5, S17, G1): Agora's ``update`` call can change only
the subscription lists (``streamSubscribe``) and the ``storageConfig`` of a running individual-mode
task, the latter "mainly to refresh an stsToken".  Everything else (channel, recorder uid, App ID,
interval, stream types, idle time, bucket, prefix, ...) needs a new task: stop, acquire, start.
A replacement stops the old task before starting the new one (delete-before-replace) because both
would use the same channel and recorder uid, and Agora refuses a second such task (code 53, S7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from snapshot_resources import rules
from snapshot_resources.props import plain

INPUT_KEYS: Final[tuple[str, ...]] = rules.INPUT_KEYS
"""The inputs of a SnapshotSession resource (CONTRIBUTING.md), in the order of rules.SESSION."""

UPDATABLE_RECORDING_KEYS: Final = rules.RECORDING.updatable()
"""recordingConfig keys the update API changes in place (S5: streamSubscribe lists)."""

ROTATABLE_STORAGE_KEYS: Final = rules.STORAGE.updatable()
"""storageConfig keys a credential rotation changes; sent whole with update (S5)."""


class ChangeKind(StrEnum):
    """What ``pulumi up`` does with a session whose inputs changed (``Change.kind``).

    ``NONE`` ("none"): nothing changed.  ``UPDATE`` ("update"): only subscription lists or
    storage keys changed; Agora's ``update`` applies them to the running task, same ``sid`` (S5).
    ``REPLACE`` ("replace"): anything else; the task is stopped and a new one started with a new
    ``sid`` (stop first: code 53 otherwise, S7).  A ``str`` enum: its values are the words above.
    """

    NONE = "none"
    UPDATE = "update"
    REPLACE = "replace"


@dataclass(frozen=True)
class Change:
    """The outcome of comparing old and new inputs (``classify``).

    ``kind`` (``ChangeKind``): NONE, UPDATE or REPLACE.  ``replaces`` (tuple of str): the
    top-level inputs (``changes.INPUT_KEYS``, e.g. ``"snapshotConfig"``) that force a new task;
    ``updates`` (tuple of str): the ones the update API applies in place (``"recordingConfig"``,
    ``"storage"``); ``details`` (tuple of str): the dotted paths that changed, for reviewers
    (``"recordingConfig.subscribeVideoUids"``; a whole input when it is not a mapping).  All
    empty by default.  ``rotates_storage`` is True when storage keys change in place.
    """

    kind: ChangeKind
    replaces: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    @property
    def rotates_storage(self) -> bool:
        return any(d.startswith("storage.") for d in self.details) and "storage" not in self.replaces


def canonical_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs`` with ``recordingConfig``'s blacklists under their canonical keys
    (rules.BLACKLIST_SPELLING), so the spelling a user chose is never a change."""
    out = dict(inputs)
    recording = out.get("recordingConfig")
    if isinstance(recording, Mapping):
        out["recordingConfig"] = rules.canonical_blacklists(recording)
    return out


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def classify(old_inputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Change:
    """Compare two input bags (old outputs are fine: only ``INPUT_KEYS`` are read).

    ``old_inputs`` and ``new_inputs``: a SnapshotSession's inputs (or stored outputs) by Agora's
    camelCase keys; keys other than ``INPUT_KEYS`` are ignored, a missing key counts as None.
    Values are normalised first (``5.0 == 5``, either blacklist spelling, rule
    blacklist_spelling), so a round trip through the engine is no change.  A value that is not
    known yet (preview) differs from anything, which is the safe answer.

    Returns a ``Change``: REPLACE when any input other than the subscription lists
    (``recordingConfig``) and the storage keys ``accessKey``, ``secretKey``, ``stsToken``,
    ``stsExpiration`` changed (S5, S17, G1), else UPDATE when those changed, else NONE.  Raises
    nothing.
    """
    old = canonical_inputs({k: plain(old_inputs.get(k)) for k in INPUT_KEYS})
    new = canonical_inputs({k: plain(new_inputs.get(k)) for k in INPUT_KEYS})
    replaces: list[str] = []
    updates: list[str] = []
    details: list[str] = []
    for key in INPUT_KEYS:
        if old[key] == new[key]:
            continue
        if not (isinstance(old[key], Mapping) and isinstance(new[key], Mapping)):
            replaces.append(key)
            details.append(key)
            continue
        nested = _changed_keys(old[key], new[key])
        details.extend(f"{key}.{n}" for n in nested)
        in_place = _in_place_keys(key)
        if in_place is not None and all(n in in_place for n in nested):
            updates.append(key)
        else:
            replaces.append(key)
    if replaces:
        return Change(ChangeKind.REPLACE, tuple(replaces), tuple(updates), tuple(details))
    if updates:
        return Change(ChangeKind.UPDATE, (), tuple(updates), tuple(details))
    return Change(ChangeKind.NONE)


def _in_place_keys(key: str) -> frozenset[str] | None:
    """The nested keys of input ``key`` that Agora's update changes in place (the tables'
    ``update`` fields, rules.SESSION); None when any change of it replaces the task."""
    shape = rules.SESSION[key].shape
    return (shape.updatable() or None) if shape is not None else None
