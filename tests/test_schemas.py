"""The generated JSON Schemas: committed = generated, the acceptance list of issue #8 rejected by
spec.py, by the stack schema and by ``validate`` alike, and schema and model agreeing on
generated configs."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from snapshot_resources import rules, schema_gen
from snapshot_resources.commands.validate import validate_text
from snapshot_resources.schema_gen import stack_schema_problems
from snapshot_resources.spec import Problem, is_secure_marker, stack_problems

REPO = Path(__file__).resolve().parent.parent
PathT = tuple[str | int, ...]


def base() -> dict[str, Any]:
    return {
        "storage": {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "my-snapshots",
                             "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE"}},
        "sessions": {"s": {"cname": "lobby", "uid": "527841", "storage": "main",
                           "recordingConfig": {"subscribeVideoUids": ["#allstream#"]}}},
    }


def with_(changes: Mapping[PathT, object]) -> dict[str, Any]:
    doc = base()
    for path, value in changes.items():
        node: Any = doc
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = copy.deepcopy(value)
    return doc


S: PathT = ("sessions", "s")
RC: PathT = (*S, "recordingConfig")
SC: PathT = (*S, "snapshotConfig")
ST: PathT = ("storage", "main")

# Issue #8 acceptance: (document changes, where it is reported, rule).
ACCEPTANCE: dict[str, tuple[Mapping[PathT, object], PathT, str]] = {
    "mode mix": ({(*S, "mode"): "mix"}, (*S, "mode"), "mode"),
    "recordingFileConfig": ({(*S, "recordingFileConfig"): {"avFileType": ["hls", "jpg"]}},
                            (*S, "recordingFileConfig"), "recording_file_config_forbidden"),
    "streamTypes 0": ({(*RC, "streamTypes"): 0}, (*RC, "streamTypes"), "stream_types"),
    "audio list without video": (
        {RC: {"subscribeAudioUids": ["1"]}}, (*RC, "subscribeAudioUids"), "audio_needs_video_list"),
    "fileType png": ({(*SC, "fileType"): ["png"]}, (*SC, "fileType"), "file_type"),
    "fileType jpg twice": ({(*SC, "fileType"): ["jpg", "jpg"]}, (*SC, "fileType"), "file_type"),
    "captureInterval 4": ({(*SC, "captureInterval"): 4}, (*SC, "captureInterval"),
                          "capture_interval"),
    "captureInterval 3601": ({(*SC, "captureInterval"): 3601}, (*SC, "captureInterval"),
                             "capture_interval"),
    "prefix with _": ({(*S, "fileNamePrefix"): ["a_b"]}, (*S, "fileNamePrefix"),
                      "file_name_prefix"),
    "prefix with -": ({(*ST, "fileNamePrefix"): ["a-b"]}, (*ST, "fileNamePrefix"),
                      "file_name_prefix"),
    "prefix with /": ({(*S, "fileNamePrefix"): ["a/b"]}, (*S, "fileNamePrefix"),
                      "file_name_prefix"),
    "prefix over 128": ({(*S, "fileNamePrefix"): ["x" * 129]}, (*S, "fileNamePrefix"),
                        "file_name_prefix"),
    "uid 0": ({(*S, "uid"): 0}, (*S, "uid"), "recorder_uid"),
    "uid 4294967296": ({(*S, "uid"): 4294967296}, (*S, "uid"), "recorder_uid"),
    "uid '12a'": ({(*S, "uid"): "12a"}, (*S, "uid"), "recorder_uid"),
    "33 subscribe uids": ({(*RC, "subscribeVideoUids"): [str(u) for u in range(1, 34)]},
                          (*RC, "subscribeVideoUids"), "subscribe_list"),
    "white and black video lists": (
        {RC: {"subscribeVideoUids": ["1"], "unsubscribeVideoUids": ["2"]}},
        (*RC, "unsubscribeVideoUids"), "subscribe_exclusive"),
    "white and black audio lists": (
        {RC: {"subscribeVideoUids": ["1"], "subscribeAudioUids": ["1"],
              "unsubscribeAudioUids": ["2"]}},
        (*RC, "unsubscribeAudioUids"), "subscribe_exclusive"),
    "sse with alibaba": (
        {ST: {"vendor": 2, "region": 3, "bucket": "snaps", "accessKey": "AK", "secretKey": "SK",
              "extensionParams": {"sse": "aes256"}}},
        (*ST, "extensionParams"), "extension_sse"),
    "vendor 11 without endpoint": (
        {ST: {"vendor": 11, "region": 0, "bucket": "snaps", "accessKey": "AK", "secretKey": "SK"}},
        (*ST, "extensionParams"), "extension_endpoint"),
    "region code not in the table": ({(*ST, "region"): 17}, (*ST, "region"), "storage_region"),
    "region name not in the table": ({(*ST, "region"): "us-east-7"}, (*ST, "region"),
                                     "storage_region"),
    "captureIntervall": ({(*SC, "captureIntervall"): 5}, (*SC, "captureIntervall"),
                         "unknown_key"),
}
# JSON Schema cannot compare entries of a stack with each other (schema_gen docstring): these two
# are rejected by spec.py and validate only.
CROSS_ENTRY: dict[str, tuple[Mapping[PathT, object], PathT, str]] = {
    "same channel and uid": (
        {("sessions", "t"): {"cname": "lobby", "uid": 527841, "storage": "main"}},
        ("sessions", "t", "uid"), "unique_task"),
    "storage target missing": ({(*S, "storage"): "archive"}, (*S, "storage"),
                               "storage_reference"),
}


def _found(problems: list[Problem], path: PathT, rule_id: str) -> list[Problem]:
    return [p for p in problems if p.rule_id == rule_id and p.path[: len(path)] == path]


def test_base_document_is_valid_everywhere() -> None:
    assert stack_problems(base()) == []
    assert stack_schema_problems(base()) == []
    assert validate_text(yaml.safe_dump(base()), "stack.yaml") == []


@pytest.mark.parametrize("case", sorted(ACCEPTANCE))
def test_acceptance_rejected_by_the_stack_schema(case: str) -> None:
    changes, path, rule_id = ACCEPTANCE[case]
    found = _found(stack_schema_problems(with_(changes)), path, rule_id)
    assert found
    assert rules.RULES_BY_ID[rule_id].text.split(":")[0] in found[0].message or (
        rule_id == "unknown_key")


@pytest.mark.parametrize("case", sorted({**ACCEPTANCE, **CROSS_ENTRY}))
def test_acceptance_rejected_by_spec(case: str) -> None:
    changes, path, rule_id = {**ACCEPTANCE, **CROSS_ENTRY}[case]
    assert _found(stack_problems(with_(changes)), path, rule_id)


@pytest.mark.parametrize("case", sorted({**ACCEPTANCE, **CROSS_ENTRY}))
def test_acceptance_rejected_by_validate(case: str) -> None:
    changes, path, rule_id = {**ACCEPTANCE, **CROSS_ENTRY}[case]
    located = validate_text(yaml.safe_dump(with_(changes), sort_keys=False), "stack.yaml")
    dotted = ".".join(str(p) for p in path if isinstance(p, str))
    hits = [loc for loc in located if loc.rule_id == rule_id and loc.path.startswith(dotted)]
    assert hits, [str(loc) for loc in located]
    assert str(hits[0]).startswith(f"stack.yaml:{hits[0].line}:{hits[0].column}: {dotted}")
    assert f"(rule {rule_id};" in str(hits[0])


def test_misspelt_key_gets_a_suggestion_from_model_and_schema() -> None:
    doc = with_({(*SC, "captureIntervall"): 5})
    for problems in (stack_problems(doc), stack_schema_problems(doc)):
        assert "did you mean 'captureInterval'?" in _found(problems, SC, "unknown_key")[0].message


def test_cross_entry_rules_are_beyond_the_schema() -> None:
    # Documented limits (schema_gen docstring): if a schema ever says these, update the docs.
    for changes, _path, _rule in CROSS_ENTRY.values():
        assert stack_schema_problems(with_(changes)) == []


# --------------------------------------------------------------------------------------------------
# The wire schema and Agora's own example


SEED_START_BODY: dict[str, Any] = {
    # docs/agora-api.md 3.1 (S8, S3, S19): the screenshot guide's request in a start body.
    "cname": "lobby",
    "uid": "527841",
    "clientRequest": {
        "token": "<RTC token>",
        "recordingConfig": {"channelType": 1, "streamTypes": 2, "maxIdleTime": 30,
                            "subscribeVideoUids": ["#allstream#"], "subscribeUidGroup": 0},
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storageConfig": {"vendor": 2, "region": 3, "bucket": "b", "accessKey": "…",
                          "secretKey": "…", "fileNamePrefix": ["dir1", "dir2"]},
    },
}


def test_seed_example_passes_the_start_schema() -> None:
    assert schema_gen.start_body_problems(SEED_START_BODY) == []


def _seed(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_START_BODY)
    for dotted, value in changes.items():
        node: Any = body["clientRequest"]
        *parents, last = dotted.split("__")
        for step in parents:
            node = node[step]
        node[last] = value
    return body


WIRE_REJECTIONS: dict[str, tuple[dict[str, Any], PathT, str]] = {
    "recordingFileConfig": (_seed(recordingFileConfig={}), ("clientRequest", "recordingFileConfig"),
                            "recording_file_config_forbidden"),
    "streamTypes 0": (_seed(recordingConfig__streamTypes=0),
                      ("clientRequest", "recordingConfig", "streamTypes"), "stream_types"),
    "streamTypes missing": (
        _seed(recordingConfig={"channelType": 1, "subscribeUidGroup": 0}),
        ("clientRequest", "recordingConfig", "streamTypes"), "stream_types"),
    "audio without video": (
        _seed(recordingConfig={"channelType": 1, "streamTypes": 2, "subscribeUidGroup": 0,
                               "subscribeAudioUids": ["1"]}),
        ("clientRequest", "recordingConfig", "subscribeAudioUids"), "audio_needs_video_list"),
    "fileType": (_seed(snapshotConfig__fileType=["png"]),
                 ("clientRequest", "snapshotConfig", "fileType"), "file_type"),
    "captureInterval": (_seed(snapshotConfig__captureInterval=4),
                        ("clientRequest", "snapshotConfig", "captureInterval"), "capture_interval"),
    "prefix": (_seed(storageConfig__fileNamePrefix=["dir_1"]),
               ("clientRequest", "storageConfig", "fileNamePrefix"), "file_name_prefix"),
    "uid int": ({**SEED_START_BODY, "uid": 527841}, ("uid",), "recorder_uid"),
    "uid 0": ({**SEED_START_BODY, "uid": "0"}, ("uid",), "recorder_uid"),
    "33 uids": (_seed(recordingConfig__subscribeVideoUids=[str(u) for u in range(1, 34)]),
                ("clientRequest", "recordingConfig", "subscribeVideoUids"), "subscribe_list"),
    "white and black": (_seed(recordingConfig__unSubscribeVideoUids=["2"]),
                        ("clientRequest", "recordingConfig", "unSubscribeVideoUids"),
                        "subscribe_exclusive"),
    # On the wire a blacklist has one spelling, the one sent (rules.BLACKLIST_WIRE_NAMES).
    "a blacklist not in the sent spelling": (_seed(recordingConfig__unsubscribeVideoUids=["2"]),
                                             ("clientRequest", "recordingConfig",
                                              "unsubscribeVideoUids"), "unknown_key"),
    "sse with vendor 2": (_seed(storageConfig__extensionParams={"sse": "kms"}),
                          ("clientRequest", "storageConfig", "extensionParams"), "extension_sse"),
    "vendor 11 without endpoint": (
        _seed(storageConfig__vendor=11, storageConfig__region=0),
        ("clientRequest", "storageConfig", "extensionParams"), "extension_endpoint"),
    "region not in table": (_seed(storageConfig__region=28),
                            ("clientRequest", "storageConfig", "region"), "storage_region"),
    "vendor name on the wire": (_seed(storageConfig__vendor="alibaba"),
                                ("clientRequest", "storageConfig", "vendor"), "storage_vendor"),
    "misspelt key": (_seed(snapshotConfig__captureIntervall=5),
                     ("clientRequest", "snapshotConfig", "captureIntervall"), "unknown_key"),
}


@pytest.mark.parametrize("case", sorted(WIRE_REJECTIONS))
def test_start_schema_rejects(case: str) -> None:
    body, path, rule_id = WIRE_REJECTIONS[case]
    assert _found(schema_gen.start_body_problems(body), path, rule_id)


def test_start_schema_problems_never_show_a_secret() -> None:
    body = _seed(storageConfig__accessKey=12345678, storageConfig__secretKey=["SECRET-SK-9d1c"],
                 token="")
    problems = schema_gen.start_body_problems(body)
    assert {p.path[-1] for p in problems} >= {"accessKey", "secretKey", "token"}
    text = "\n".join(str(p) for p in problems)
    assert "12345678" not in text
    assert "SECRET-SK-9d1c" not in text


# --------------------------------------------------------------------------------------------------
# Committed = generated; the schemas are valid Draft 2020-12


@pytest.mark.parametrize("name", sorted(schema_gen.SCHEMAS))
def test_committed_schema_equals_generated(name: str) -> None:
    committed = (REPO / "snapshot_resources" / "schemas" / name).read_text(encoding="utf-8")
    assert committed == schema_gen.render(schema_gen.SCHEMAS[name]()), (
        "run `snapshot-resources schema --write`")


@pytest.mark.parametrize("name", sorted(schema_gen.SCHEMAS))
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((REPO / "snapshot_resources" / "schemas" / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_stack_schema_accepts_a_pulumi_stack_file_with_secure_values() -> None:
    doc: dict[str, Any] = {"config": {
        "agora:appId": "0123456789abcdef0123456789abcdef",
        "agora:customerSecret": {"secure": "AAAB"},
        "agora-snapshots:storage": {"main": {**base()["storage"]["main"],
                                             "secretKey": {"secure": "AAABsk"}}},
        "agora-snapshots:sessions": {"s": {**base()["sessions"]["s"], "token": {"secure": "x"}}},
    }, "encryptionsalt": "v1:abc"}
    assert stack_schema_problems(doc) == []
    doc["config"]["agora-snapshots:sessions"]["s"]["uid"] = 0
    problems = stack_schema_problems(doc)
    assert [p.path for p in problems] == [
        ("config", "agora-snapshots:sessions", "s", "uid")]


def test_anchored_patterns_do_not_accept_a_trailing_newline() -> None:
    assert stack_problems(with_({(*S, "cname"): "lobby\n"}))
    assert stack_schema_problems(with_({(*S, "cname"): "lobby\n"}))


def test_uid_pattern_stops_at_two_to_the_32() -> None:
    import re

    pattern = re.compile(schema_gen.anchored(schema_gen.up_to(rules.UID_MAX)))
    assert pattern.search(str(rules.UID_MAX))
    assert not pattern.search(str(rules.UID_MAX + 1))
    small = re.compile(schema_gen.anchored(schema_gen.up_to(2305)))
    assert [n for n in range(0, 4000) if small.search(str(n))] == list(range(1, 2306))


# --------------------------------------------------------------------------------------------------
# Schema and model agree on generated configs


_ABSENT = object()
SALT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

# Storage profiles whose values agree with each other: (vendor spellings, regions, buckets,
# extensionParams, provision allowed, STS allowed).
PROFILES: list[tuple[list[object], list[object], list[str], list[object], bool, bool]] = [
    (["aws", 1, "S3", " Amazon "], ["us-east-1", "US_EAST_1", 0, 25, "eu-south-1"],
     ["my-snapshots", "a.b-c"], [_ABSENT, {"sse": "kms"}, {"tag": "a=b", "sse": "aes256"}],
     True, True),
    (["alibaba", 2, "2"], ["cn-beijing", "CN_Beijing", 3, "ap-northeast-2", "cn-northeast-2"],
     ["snaps", "snap-shots"], [_ABSENT, {"tag": "a=b"}], True, True),
    (["tencent", "cos"], ["ap-guangzhou", 3, "AP_Beijing_1"], ["snaps-1250000000"], [_ABSENT],
     True, True),
    (["azure", 5], [_ABSENT, 0, "westeurope"], ["snapshots"], [_ABSENT], True, False),
    (["gcp", "google"], [_ABSENT, 0, "europe-west1"], ["snap_shots.1"], [_ABSENT], True, False),
    (["huawei"], ["cn-north-4", 1], ["snaps.obs"], [_ABSENT], True, False),
    (["baidu"], ["gz", 3], ["bosbucket"], [_ABSENT], False, False),
    (["s3-compatible", 11], [_ABSENT, 0, "anything"], ["snapshots"],
     [{"endpoint": "minio.local:9000"}], False, False),
    (["qiniu", 0], ["z0", 4], ["snaps"], [_ABSENT], False, False),
]
BREAKS: dict[str, list[object]] = {
    "vendor": [9, "nope", True, "s4"],
    "region": [17, 99, "", "mars-1", 2.5, True],
    "bucket": ["B", "ab", "goog-x", "x" * 64, "xn--abc", 5],
    "provision": ["yes", 1],
    "retentionDays": [0, "7"],
    "fileNamePrefix": [["a_b"], [], ["x" * 129], "a"],
    "extensionParams": [{"sse": "rsa"}, {"endpoint": "http://x"}, {"ssse": "kms"}, [],
                        {"sse": "kms"}, {"tag": "a=b"}, {"endpoint": "h.example"}],
    "accessKey": ["", 5, _ABSENT],
    "secretKey": [_ABSENT, ""],
    "stsToken": ["STS"],
    "stsExpiration": [-1, 1_900_000_000],
    "channelType": [2, "1"],
    "streamTypes": [0, 3],
    "maxIdleTime": [4, 2_592_001],
    "videoStreamType": [2],
    "decryptionMode": [9, 5, 0],
    "secret": ["k"],
    "salt": ["c2FsdA==", SALT],
    "subscribeVideoUids": [["#allstream#", "1"], [], ["0"], [str(u) for u in range(1, 34)],
                           ["1", "1"], "1"],
    "unsubscribeVideoUids": [["9"]],
    "subscribeAudioUids": [["1"], ["#allstream#"]],
    "unsubscribeAudioUids": [["8"]],
    "subscribeUidGroup": [6, 0],
    "unSubscribeVideoUids": [["9"]],
    "cname": ["a b!", "x/y", "", 5, "c" * 64],
    "uid": [0, "0", 4294967296, "12a", True],
    "appId": ["a b"],
    "region.session": ["US"],
    "resourceExpiredHour": [0, 721],
    "mode": ["mix"],
    "captureInterval": [4, 3601, "10"],
    "fileType": [["png"], "jpg", ["jpg", "jpg"]],
    "captureIntervall": [5],
    "token": [""],
    "recordingFileConfig": [{}],
    "recordingConfig": [[], "x"],
}


class _Maker:
    """Draws a document whose every value is valid, except where a draw decides to break one."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.rate = draw(st.sampled_from([0, 0, 3, 15]))  # percent of values broken

    def pick(self, key: str, valid: Sequence[object]) -> object:
        if key in BREAKS and self.draw(st.integers(0, 99)) < self.rate:
            return self.draw(st.sampled_from(BREAKS[key]))
        return self.draw(st.sampled_from(valid))

    def storage(self) -> dict[str, object]:
        vendors, regions, buckets, extensions, provision, sts = self.draw(st.sampled_from(PROFILES))
        entry: dict[str, object] = {
            "vendor": self.pick("vendor", vendors),
            "region": self.pick("region", regions),
            "bucket": self.pick("bucket", buckets),
            "fileNamePrefix": self.pick("fileNamePrefix", [_ABSENT, ["snapshots"], ["x" * 100]]),
            "extensionParams": self.pick("extensionParams", extensions),
        }
        provisioned = provision and self.draw(st.booleans())
        entry["provision"] = self.pick("provision", [True] if provisioned else [_ABSENT, False])
        entry["retentionDays"] = self.pick("retentionDays", [_ABSENT, 7] if provisioned else
                                           [_ABSENT])
        keys: list[object] = [_ABSENT] if provisioned else ["AK", {"secure": "AAAB"}]
        entry["accessKey"] = self.pick("accessKey", keys)
        entry["secretKey"] = self.pick("secretKey", keys)
        with_sts = sts and not provisioned and self.draw(st.booleans())
        entry["stsToken"] = self.pick("stsToken", ["STS"] if with_sts else [_ABSENT])
        entry["stsExpiration"] = self.pick("stsExpiration", [1_900_000_000] if with_sts
                                           else [_ABSENT])
        return entry

    def recording(self) -> object:
        decryption = self.draw(st.sampled_from([(), (0,), (1, "k"), (7, "k", SALT)]))
        # Audio lists stay within the video whitelist, so the union count the model checks equals
        # the per-list bound the schema can state (schema_gen.uid_group_bounds).
        lists: dict[str, object] = self.draw(st.sampled_from([
            {}, {"subscribeVideoUids": ["#allstream#"]},
            {"subscribeVideoUids": ["1", 2, "3"], "subscribeAudioUids": ["1"],
             "subscribeUidGroup": 1},
            {"unsubscribeVideoUids": ["9"]},
            {"subscribeVideoUids": ["1"], "subscribeAudioUids": ["#allstream#"]},
            {"subscribeVideoUids": ["1"], "unsubscribeAudioUids": ["8"]},
        ]))
        audio = any(k in lists for k in rules.AUDIO_LIST_KEYS)
        out: dict[str, object] = {
            "channelType": self.pick("channelType", [_ABSENT, 0, 1]),
            "streamTypes": self.pick("streamTypes", [_ABSENT, 2] if audio else [_ABSENT, 1, 2]),
            "maxIdleTime": self.pick("maxIdleTime", [_ABSENT, 5, 2_592_000]),
            "videoStreamType": self.pick("videoStreamType", [_ABSENT, 0, 1]),
            "decryptionMode": self.pick("decryptionMode",
                                        [decryption[0]] if decryption else [_ABSENT]),
            "secret": self.pick("secret", [decryption[1]] if len(decryption) > 1 else [_ABSENT]),
            "salt": self.pick("salt", [decryption[2]] if len(decryption) > 2 else [_ABSENT]),
            "unSubscribeVideoUids": self.pick("unSubscribeVideoUids", [_ABSENT]),
        }
        for key in (*rules.SUBSCRIBE_LIST_KEYS, "subscribeUidGroup"):
            out[key] = self.pick(key, [lists.get(key, _ABSENT)])
        return self.pick("recordingConfig", [out])

    def session(self, i: int) -> dict[str, object]:
        return {
            "cname": self.pick("cname", [f"lobby{i}", f"room {i}!"]),  # distinct: see CROSS_ENTRY
            "uid": self.pick("uid", [527841, "527841", 4294967295]),
            "storage": "main",  # a reference that exists: see CROSS_ENTRY
            "appId": self.pick("appId", [_ABSENT, "abc123"]),
            "region": self.pick("region.session", [_ABSENT, "NA"]),
            "resourceExpiredHour": self.pick("resourceExpiredHour", [_ABSENT, 1, 720]),
            "mode": self.pick("mode", [_ABSENT, "individual"]),
            "recordingConfig": self.recording(),
            "snapshotConfig": {
                "captureInterval": self.pick("captureInterval", [_ABSENT, 5, 3600]),
                "fileType": self.pick("fileType", [_ABSENT, ["jpg"]]),
                "captureIntervall": self.pick("captureIntervall", [_ABSENT]),
            },
            "fileNamePrefix": self.pick("fileNamePrefix", [_ABSENT, ["lobby"]]),
            "token": self.pick("token", [_ABSENT, "tok", {"secure": "AAAB"}]),
            "recordingFileConfig": self.pick("recordingFileConfig", [_ABSENT]),
        }


def _drop_absent(value: object) -> object:
    if isinstance(value, dict):
        return {k: _drop_absent(v) for k, v in value.items() if v is not _ABSENT}
    return value


@st.composite
def stacks(draw: st.DrawFn) -> dict[str, Any]:
    make = _Maker(draw)
    count = draw(st.integers(min_value=0, max_value=3))
    doc = {"storage": {"main": make.storage()},
           "sessions": {f"s{i}": make.session(i) for i in range(count)}}
    return cast(dict[str, Any], _drop_absent(doc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_schema_and_model_agree(doc: dict[str, Any]) -> None:
    model = stack_problems(doc, is_unknown=is_secure_marker)
    schema = stack_schema_problems(doc)
    assert bool(model) == bool(schema), (
        [str(p) for p in model], [str(p) for p in schema])
    # Both name the same entries as broken.
    assert {p.path[:2] for p in model} == {p.path[:2] for p in schema}


# --------------------------------------------------------------------------------------------------
# Patterns mean the same in ECMA-262 (editors, check-jsonschema's default regex engine) and Python

SAMPLES = [
    "", " ", "lobby", "lobby\n", "Lobby 1!", "x/y", "527841", "4294967295", "4294967296", "0",
    "012", "12a", "us-east-1", "US_EAST_1", " us-east-1 ", "cn-beijing", "CN_Beijing", "aws",
    "AWS", " Alibaba ", "2", "02", "s3-compatible", "S3_Compatible", "my-snapshots",
    "my..snapshots", "xn--abc", "snaps-1250000000", "goog-x", "snap--shots", "192.168.1.1",
    "minio.local:9000", "http://x", "dir1", "a_b", "a-b", "İstanbul", "ǅ", "\u212a", "ſ",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "abc123", "a b",
]


def _patterns() -> list[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for build in schema_gen.SCHEMAS.values():
        walk(build())
    return sorted(found)


def test_patterns_behave_the_same_in_ecma_262() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js (`node` on PATH) to run the patterns as ECMA-262 regexes")
    patterns = _patterns()
    script = (
        "const [ps, ss] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(ps.map(p => { const r = new RegExp(p, 'u');"
        " return ss.map(s => r.test(s)); })));"
    )
    result = subprocess.run([node, "-e", script], input=json.dumps([patterns, SAMPLES]),
                            capture_output=True, text=True, check=True, timeout=60)
    ecma = json.loads(result.stdout)
    python = [[re.search(p, s) is not None for s in SAMPLES] for p in patterns]
    differ = [(p, s) for p, e_row, p_row in zip(patterns, ecma, python, strict=True)
              for s, e, py in zip(SAMPLES, e_row, p_row, strict=True) if e != py]
    assert differ == []
