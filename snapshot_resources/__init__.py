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
    "ExtensionParams": "snapshot_resources.target",
    "Change": "snapshot_resources.changes",
    "ChangeKind": "snapshot_resources.changes",
    "classify_change": "snapshot_resources.changes",
    "StackSpec": "snapshot_resources.spec",
    "SessionSpec": "snapshot_resources.spec",
    "StackSessionSpec": "snapshot_resources.spec",
    "StorageSpec": "snapshot_resources.spec",
    "SpecError": "snapshot_resources.spec",
    "Problem": "snapshot_resources.spec",
    "parse_stack": "snapshot_resources.spec",
    "parse_session": "snapshot_resources.spec",
    "parse_storage": "snapshot_resources.spec",
    "storage_target": "snapshot_resources.spec",
    "stack_problems": "snapshot_resources.spec",
    "session_problems": "snapshot_resources.spec",
    "storage_target_problems": "snapshot_resources.spec",
    "SnapshotSession": "snapshot_resources.session",
    "SnapshotSessionArgs": "snapshot_resources.session",
    "RecordingConfigArgsDict": "snapshot_resources.session",
    "SnapshotConfigArgsDict": "snapshot_resources.session",
    "StorageTargetArgsDict": "snapshot_resources.session",
    "SnapshotSessionProvider": "snapshot_resources.provider",
    "ProviderSettings": "snapshot_resources.provider",
    "provision_storage": "snapshot_resources.storage",
    "bring_your_own": "snapshot_resources.storage",
    "storage_component_for": "snapshot_resources.storage",
    "SnapshotBucketArgs": "snapshot_resources.storage",
    "SnapshotBucketComponent": "snapshot_resources.storage",
    "StorageConfigError": "snapshot_resources.storage",
    "MissingExtraError": "snapshot_resources.storage",
    "deploy": "snapshot_resources.stack",
    "read_stack_config": "snapshot_resources.stack",
    "SnapshotName": "snapshot_resources.naming",
    "LocalDirectory": "snapshot_resources.naming",
    "S3Bucket": "snapshot_resources.naming",
    "SnapshotSourceError": "snapshot_resources.naming",
    "format_snapshot_name": "snapshot_resources.naming",
    "parse_snapshot_name": "snapshot_resources.naming",
    "snapshot_pattern": "snapshot_resources.naming",
    "list_snapshots": "snapshot_resources.naming",
    "scan_snapshots": "snapshot_resources.naming",
    "NcsEvent": "snapshot_resources.events",
    "SignatureError": "snapshot_resources.events",
    "NotificationError": "snapshot_resources.events",
    "NotificationBodyError": "snapshot_resources.events",
    "ReplayError": "snapshot_resources.events",
    "SeenNotices": "snapshot_resources.events",
    "build_event": "snapshot_resources.events",
    "parse_event": "snapshot_resources.events",
    "sign_headers": "snapshot_resources.events",
    "verify_signature": "snapshot_resources.events",
    "snapshot_file": "snapshot_resources.events",
    "dedup_key": "snapshot_resources.events",
    "AgoraClient": "snapshot_resources.agora.client",
    "AgoraError": "snapshot_resources.agora.errors",
    "AgoraApiError": "snapshot_resources.agora.errors",
    "build_rtc_token": "snapshot_resources.agora.token",
    "EmulatorServer": "snapshot_resources.emulator.server",
    "EmulatorOptions": "snapshot_resources.emulator.server",
    "TaskJournal": "snapshot_resources.journal",
    "SqliteTaskJournal": "snapshot_resources.journal",
}
_RENAMES = {"classify_change": "classify"}

__all__ = sorted(_EXPORTS)  # the table above is the one list of public names

if TYPE_CHECKING:  # for type checkers: the table above as imports (a test compares them)
    from snapshot_resources import rules as rules
    from snapshot_resources.agora.client import AgoraClient as AgoraClient
    from snapshot_resources.agora.errors import AgoraApiError as AgoraApiError
    from snapshot_resources.agora.errors import AgoraError as AgoraError
    from snapshot_resources.agora.token import build_rtc_token as build_rtc_token
    from snapshot_resources.changes import Change as Change
    from snapshot_resources.changes import ChangeKind as ChangeKind
    from snapshot_resources.changes import classify as classify_change  # noqa: F401 (in _EXPORTS)
    from snapshot_resources.emulator.server import EmulatorOptions as EmulatorOptions
    from snapshot_resources.emulator.server import EmulatorServer as EmulatorServer
    from snapshot_resources.events import NcsEvent as NcsEvent
    from snapshot_resources.events import NotificationBodyError as NotificationBodyError
    from snapshot_resources.events import NotificationError as NotificationError
    from snapshot_resources.events import ReplayError as ReplayError
    from snapshot_resources.events import SeenNotices as SeenNotices
    from snapshot_resources.events import SignatureError as SignatureError
    from snapshot_resources.events import build_event as build_event
    from snapshot_resources.events import dedup_key as dedup_key
    from snapshot_resources.events import parse_event as parse_event
    from snapshot_resources.events import sign_headers as sign_headers
    from snapshot_resources.events import snapshot_file as snapshot_file
    from snapshot_resources.events import verify_signature as verify_signature
    from snapshot_resources.journal import SqliteTaskJournal as SqliteTaskJournal
    from snapshot_resources.journal import TaskJournal as TaskJournal
    from snapshot_resources.naming import LocalDirectory as LocalDirectory
    from snapshot_resources.naming import S3Bucket as S3Bucket
    from snapshot_resources.naming import SnapshotName as SnapshotName
    from snapshot_resources.naming import SnapshotSourceError as SnapshotSourceError
    from snapshot_resources.naming import format_snapshot_name as format_snapshot_name
    from snapshot_resources.naming import list_snapshots as list_snapshots
    from snapshot_resources.naming import parse_snapshot_name as parse_snapshot_name
    from snapshot_resources.naming import scan_snapshots as scan_snapshots
    from snapshot_resources.naming import snapshot_pattern as snapshot_pattern
    from snapshot_resources.provider import ProviderSettings as ProviderSettings
    from snapshot_resources.provider import SnapshotSessionProvider as SnapshotSessionProvider
    from snapshot_resources.session import RecordingConfigArgsDict as RecordingConfigArgsDict
    from snapshot_resources.session import SnapshotConfigArgsDict as SnapshotConfigArgsDict
    from snapshot_resources.session import SnapshotSession as SnapshotSession
    from snapshot_resources.session import SnapshotSessionArgs as SnapshotSessionArgs
    from snapshot_resources.session import StorageTargetArgsDict as StorageTargetArgsDict
    from snapshot_resources.spec import Problem as Problem
    from snapshot_resources.spec import SessionSpec as SessionSpec
    from snapshot_resources.spec import SpecError as SpecError
    from snapshot_resources.spec import StackSessionSpec as StackSessionSpec
    from snapshot_resources.spec import StackSpec as StackSpec
    from snapshot_resources.spec import StorageSpec as StorageSpec
    from snapshot_resources.spec import parse_session as parse_session
    from snapshot_resources.spec import parse_stack as parse_stack
    from snapshot_resources.spec import parse_storage as parse_storage
    from snapshot_resources.spec import session_problems as session_problems
    from snapshot_resources.spec import stack_problems as stack_problems
    from snapshot_resources.spec import storage_target as storage_target
    from snapshot_resources.spec import storage_target_problems as storage_target_problems
    from snapshot_resources.stack import deploy as deploy
    from snapshot_resources.stack import read_stack_config as read_stack_config
    from snapshot_resources.storage import MissingExtraError as MissingExtraError
    from snapshot_resources.storage import SnapshotBucketArgs as SnapshotBucketArgs
    from snapshot_resources.storage import SnapshotBucketComponent as SnapshotBucketComponent
    from snapshot_resources.storage import StorageConfigError as StorageConfigError
    from snapshot_resources.storage import bring_your_own as bring_your_own
    from snapshot_resources.storage import provision_storage as provision_storage
    from snapshot_resources.storage import storage_component_for as storage_component_for
    from snapshot_resources.target import ExtensionParams as ExtensionParams
    from snapshot_resources.target import StorageTarget as StorageTarget


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
