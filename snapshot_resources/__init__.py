"""Agora Cloud Recording video snapshot sessions as Pulumi resources.

The public API is listed in ``__all__``.  Names are loaded on first use (PEP 562), so importing the
package costs little and imports no cloud vendor SDK: ``snapshot-resources validate`` runs without
Pulumi's engine, and a program that uses only S3 never loads the Azure SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "rules": "snapshot_resources.rules",
    "StorageTarget": "snapshot_resources.target",
    "Change": "snapshot_resources.changes",
    "ChangeKind": "snapshot_resources.changes",
    "classify_change": "snapshot_resources.changes",
}

__all__ = [
    "Change",
    "ChangeKind",
    "StorageTarget",
    "classify_change",
    "rules",
]

if TYPE_CHECKING:
    from snapshot_resources import rules as rules
    from snapshot_resources.changes import Change as Change
    from snapshot_resources.changes import ChangeKind as ChangeKind
    from snapshot_resources.changes import classify as classify_change
    from snapshot_resources.target import StorageTarget as StorageTarget

_RENAMES = {"classify_change": "classify"}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'snapshot_resources' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith(f".{name}") else getattr(module, _RENAMES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
