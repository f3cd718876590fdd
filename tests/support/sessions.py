"""The one source of valid snapshot-session inputs for the tests.

Every shape a test needs is derived from one session: :func:`session_config` (the session as
``spec.parse_session`` and a stack file's ``sessions`` entry take it, without storage),
:func:`session_inputs` (the provider's inputs: the session with ``appId`` and a full
``storage`` target) and :func:`stack_session` (a stack file's entry, naming its storage). The
interval is the smallest the rules allow (``rules.CAPTURE_INTERVAL``), so that the emulated
clock runs the fewest seconds per snapshot and a change of the bound moves the tests with it.

A test that is *about* a value (an exact request body, a bound, a line of a stack file) writes
that value itself; everything else starts here and overrides what it varies.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from snapshot_resources import rules
from snapshot_resources.target import StorageTarget

SESSION_TYPE: Final = "pulumi-python:dynamic/agora:SnapshotSession"
"""The type token as the engine records it, written out: tests compare the product's to it."""

APP_ID: Final = "0123456789abcdef0123456789abcdef"
CNAME: Final = "lobby"
RECORDER_UID: Final = "527841"
CAPTURE_INTERVAL: Final = rules.CAPTURE_INTERVAL.minimum
FILE_TYPE: Final = [rules.FILE_TYPE.default]

RECORDING_CONFIG: Final[dict[str, Any]] = {"channelType": 1,
                                           "subscribeVideoUids": ["#allstream#"]}
SNAPSHOT_CONFIG: Final[dict[str, Any]] = {"captureInterval": CAPTURE_INTERVAL,
                                          "fileType": FILE_TYPE}
# The emulator writes any vendor's uploads under its storage directory (vendor 2 region 3:
# Alibaba Cloud cn-beijing, a region table entry that every test reading keys agrees on).
STORAGE: Final[StorageTarget] = {
    "vendor": 2,
    "region": 3,
    "bucket": "snaps",
    "accessKey": "test-access-key",
    "secretKey": "test-secret-key",
    "fileNamePrefix": ["dir1", "dir2"],
}


def session_config(**overrides: Any) -> dict[str, Any]:
    """A valid session in Agora's keys (``cname``, ``uid``, ``recordingConfig``,
    ``snapshotConfig``), with ``overrides`` replacing whole top-level keys."""
    config: dict[str, Any] = {
        "cname": CNAME,
        "uid": RECORDER_UID,
        "recordingConfig": copy.deepcopy(RECORDING_CONFIG),
        "snapshotConfig": copy.deepcopy(SNAPSHOT_CONFIG),
    }
    config.update(overrides)
    return config


def session_inputs(app_id: str = APP_ID, **overrides: Any) -> dict[str, Any]:
    """Valid ``SnapshotSession`` inputs (what the provider's ``check`` takes): the session of
    :func:`session_config`, its App ID and the emulator's local-directory :data:`STORAGE`."""
    return {**session_config(appId=app_id, storage=copy.deepcopy(dict(STORAGE))), **overrides}


def stack_session(storage: str = "main", **overrides: Any) -> dict[str, Any]:
    """A valid entry of a stack file's ``sessions``: the session, referring to ``storage``."""
    return {**session_config(storage=storage), **overrides}
