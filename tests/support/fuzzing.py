"""Hypothesis strategies and valid documents for the fuzz tests of the spec, the provider's
``check`` and ``validate`` (tests/test_fuzz_*.py): each test mutates one of the valid documents
below at one path and checks a property."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from support.sessions import CAPTURE_INTERVAL, FILE_TYPE

PathT = tuple[str | int, ...]
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SALT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def valid_stack() -> dict[str, Any]:
    """A valid stack touching most keys: two targets (one provisioned), three sessions."""
    return {
        "storage": {
            "main": {"vendor": "aws", "region": "us-east-1", "bucket": "my-snapshots",
                     "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE",
                     "fileNamePrefix": ["snapshots"], "extensionParams": {"sse": "kms",
                                                                          "tag": "k=v"},
                     "stsToken": "STS", "stsExpiration": 1_900_000_000},
            "prov": {"vendor": "alibaba", "region": "cn-beijing", "bucket": "snaps",
                     "provision": True, "retentionDays": 7},
            "minio": {"vendor": 11, "bucket": "snaps", "accessKey": "AK", "secretKey": "SK",
                      "extensionParams": {"endpoint": "minio.local:9000"}},
        },
        "sessions": {
            "lobby": {"cname": "lobby", "uid": "527841", "storage": "main",
                      "fileNamePrefix": ["lobby"], "appId": "abc123", "region": "NA",
                      "resourceExpiredHour": 24, "mode": "individual",
                      "token": "006eJxTYBBZ",
                      "recordingConfig": {"channelType": 1, "streamTypes": 2, "maxIdleTime": 300,
                                          "videoStreamType": 0, "decryptionMode": 7,
                                          "secret": "k", "salt": SALT,
                                          "subscribeVideoUids": ["1", 2, "3"],
                                          "subscribeAudioUids": ["1"], "subscribeUidGroup": 1},
                      "snapshotConfig": {"captureInterval": CAPTURE_INTERVAL,
                                         "fileType": FILE_TYPE}},
            "hall": {"cname": "hall", "uid": 7, "storage": "prov",
                     "recordingConfig": {"unsubscribeVideoUids": ["9"]}},
            "stage": {"cname": "stage", "uid": "8", "storage": "minio",
                      "recordingConfig": {"subscribeVideoUids": ["#allstream#"]},
                      "snapshotConfig": {"captureInterval": 3600}},
        },
    }


def valid_session() -> dict[str, Any]:
    session = copy.deepcopy(valid_stack()["sessions"]["lobby"])
    del session["storage"]
    session["token"] = "006eJxTYBBZ"
    return cast(dict[str, Any], session)


def valid_target() -> dict[str, Any]:
    """A wire StorageTarget (codes, keys required), as the provider checks ``storage``."""
    return {"vendor": 1, "region": 0, "bucket": "my-snapshots", "accessKey": "AK",
            "secretKey": "SK", "fileNamePrefix": ["a", "b"],
            "extensionParams": {"sse": "aes256"}, "stsToken": "T", "stsExpiration": 1_900_000_000}


# --------------------------------------------------------------------------------------------------
# Strategies

_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["vendor", "region", "uid", "cname", "storage", "sessions", "secure",
                     "subscribeVideoUids", "fileType", "captureInterval", "accessKey"]),
)
def _scalars(*, huge: bool) -> st.SearchStrategy[object]:
    options: list[st.SearchStrategy[object]] = [
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**53, max_value=2**70),
        st.sampled_from([0, -1, 1, 5, 2**32, 2**64]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([5.0, 527841.0, 1.5]),
        st.text(max_size=20),
        st.sampled_from(["", " ", "#allstream#", "jpg", "aws", "us-east-1", "527841", "0",
                         "a_b", "\x00", "İ", "x" * 200, "1e3", "NaN", "a\nb"]),
        st.binary(max_size=8),
    ]
    if huge:
        # Over 4300 digits: str() refuses them (Python 3.11), so no message may format one.
        # Built by map() so that hypothesis never has to print the bound.
        options.append(st.integers(4300, 4400).map(lambda e: 10**e * (-1) ** e))
    return st.one_of(options)


def _json(*, huge: bool) -> st.SearchStrategy[object]:
    return st.recursive(
        _scalars(huge=huge),
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(_keys, inner, max_size=5),
            st.dictionaries(st.integers(), inner, max_size=2),  # YAML allows non-string keys
            inner.map(lambda v: {"secure": v}),
        ),
        max_leaves=12,
    )


json_values = _json(huge=True)
# jsonschema formats an int over 4300 digits into its messages and raises (see the xfail below).
json_values_for_schema = _json(huge=False)


def paths(value: object, prefix: PathT = ()) -> Iterator[PathT]:
    """Every path in a JSON-like value, containers and leaves, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replace(doc: Any, path: PathT, value: object) -> Any:
    """``doc`` with the value at ``path`` replaced (the root itself for ``()``)."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def delete(doc: Any, path: PathT) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return doc


@st.composite
def mutated(
    draw: st.DrawFn, base: Callable[[], Any], values: st.SearchStrategy[object] = json_values
) -> tuple[Any, PathT]:
    """``base()`` with one change at one path: a value replaced by an arbitrary one, a key
    deleted, or an arbitrary key added to a mapping.  Returns the document and the path."""
    doc = base()
    path = draw(st.sampled_from(list(paths(doc))))
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    node: Any = doc
    for step in path:
        node = node[step]
    if action == "delete" and path:
        return delete(doc, path), path
    if action == "add" and isinstance(node, dict):
        key = draw(_keys)
        return replace(doc, (*path, key), draw(values)), (*path, key)
    return replace(doc, path, draw(values)), path
