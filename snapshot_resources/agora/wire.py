"""Request bodies for acquire, start, update and stop, built from a ``SessionSpec``.

Public API::

    acquire_body(spec, *, start_body=None) -> dict       # docs/agora-api.md section 2.1
    start_body(spec, storage, *, token=None) -> dict     # section 3; checked before it is returned
    update_body(spec, *, storage=None) -> dict           # section 5
    object_body(shape, model) -> dict                    # one nested object, from its table
    stop_body(cname, uid, *, async_stop=False) -> dict   # section 4.4
    MODE: the URL mode for every call ("individual")

The nested objects (``recordingConfig``, ``snapshotConfig``) are sent field by field from their
tables in rules.py (``object_body``: every key under the name it is sent as); ``storageConfig`` is
the target as built by ``target.build_target``.

``start_body`` validates its result against ``snapshot_resources/schemas/agora-snapshot-start.schema.json`` (generated
by ``schema_gen.start_schema``, equal to the committed file by test) and re-checks the storage target
with ``spec.storage_target_problems`` (bucket naming, the joined prefix length: rules a schema
cannot say).  A violation raises ``SpecError`` naming the wire path and the rule, never a secret.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from pydantic import BaseModel

from snapshot_resources import rules
from snapshot_resources.schema_gen import start_body_problems
from snapshot_resources.spec import Problem, SessionSpec, SpecError, storage_target_problems
from snapshot_resources.target import StorageTarget

Body = dict[str, Any]

MODE: Final = str(rules.MODE.default)  # snapshots run in individual mode only (S3, S8)


def acquire_body(spec: SessionSpec, *, start_body: Body | None = None) -> Body:
    """``acquire``: scene 0, resourceExpiredHour, region when given (S2).

    ``startParameter`` is sent only when ``start_body`` is passed; it must then be identical to
    the later start's ``clientRequest`` (S2, S3), so it is copied from that very body.
    """
    request: Body = {"scene": rules.ACQUIRE_SCENE, "resourceExpiredHour": spec.resourceExpiredHour}
    if spec.region is not None:
        request["region"] = spec.region
    if start_body is not None:
        request["startParameter"] = copy.deepcopy(start_body["clientRequest"])
    return {"cname": spec.cname, "uid": spec.uid, "clientRequest": request}


def wire_key(key: str) -> str:
    """The key a subscription list is sent under (rules.BLACKLIST_WIRE_NAMES for blacklists)."""
    return rules.BLACKLIST_WIRE_NAMES.get(key, key)


def object_body(shape: rules.Shape, model: BaseModel) -> Body:
    """One of Agora's objects from its checked model: the fields of ``shape`` in table order,
    each under the key it is sent as (blacklists as the official clients spell them,
    rules.BLACKLIST_SPELLING), unset optional ones left out.  Defaults are filled by the spec, so
    every field with a default is sent explicitly (streamTypes: a missing one became 0 in the Go
    client, G1; subscribeUidGroup is required, S3)."""
    data = model.model_dump()
    return {f.wire_name: data[f.name] for f in shape.fields
            if f.input and f.name in data and data[f.name] is not None}


def recording_config(spec: SessionSpec) -> Body:
    """``recordingConfig``, every default explicit (``object_body``)."""
    return object_body(rules.RECORDING, spec.recordingConfig)


def start_body(spec: SessionSpec, storage: StorageTarget, *, token: str | None = None) -> Body:
    """``start`` in individual mode with ``snapshotConfig`` and no ``recordingFileConfig`` (S3, S8).

    ``token`` (the RTC token for the recorder uid) falls back to ``spec.token``; ``storage`` is the
    full wire ``storageConfig`` (prefix already combined).  Raises ``SpecError`` if the body breaks
    the start schema or the storage rules.
    """
    request: Body = {}
    rtc_token = token if token is not None else spec.token
    if rtc_token is not None:
        request["token"] = rtc_token
    request["recordingConfig"] = recording_config(spec)
    request["snapshotConfig"] = object_body(rules.SNAPSHOT, spec.snapshotConfig)
    request["storageConfig"] = copy.deepcopy(dict(storage))
    body: Body = {"cname": spec.cname, "uid": spec.uid, "clientRequest": request}
    problems = start_body_problems(body)
    problems += [
        p for p in storage_target_problems(storage, path=("clientRequest", "storageConfig"))
        if (p.path, p.rule_id) not in {(q.path, q.rule_id) for q in problems}
    ]
    if problems:
        raise SpecError(problems)
    return body


def update_body(spec: SessionSpec, *, storage: StorageTarget | None = None) -> Body:
    """``update`` of a running snapshot task: the subscription lists, and optionally a new
    ``storageConfig`` (to refresh an stsToken) (S5).

    A spec with no video list subscribes every video stream, as a task started without lists does
    (S15), so ``videoUidList`` then carries ``["#allstream#"]``.  ``audioUidList`` is sent only
    when the spec has an audio list (it applies only with streamTypes 2, S5).
    """
    rc = spec.recordingConfig
    video: Body = {wire_key(k): list(getattr(rc, k))
                   for k in rules.VIDEO_LIST_KEYS if getattr(rc, k) is not None}
    subscribe: Body = {"videoUidList": video or {"subscribeVideoUids": [rules.ALL_STREAMS]}}
    audio = {wire_key(k): list(getattr(rc, k))
             for k in rules.AUDIO_LIST_KEYS if getattr(rc, k) is not None}
    if audio:
        subscribe["audioUidList"] = audio
    request: Body = {"streamSubscribe": subscribe}
    if storage is not None:
        problems: list[Problem] = storage_target_problems(storage, path=("clientRequest",
                                                                          "storageConfig"))
        if problems:
            raise SpecError(problems)
        request["storageConfig"] = copy.deepcopy(dict(storage))
    return {"cname": spec.cname, "uid": spec.uid, "clientRequest": request}


def stop_body(cname: str, uid: str, *, async_stop: bool = False) -> Body:
    """``stop``: ``async_stop`` false waits for the uploads (at most about 20 s, S6)."""
    return {"cname": cname, "uid": uid, "clientRequest": {"async_stop": async_stop}}
