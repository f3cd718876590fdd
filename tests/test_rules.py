"""rules.py: every rule has a source (or a decision saying why not) and one accepted and one
rejected example, checked through spec.py and, where JSON Schema can say it, the stack schema."""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from snapshot_resources import config_keys, rules
from snapshot_resources.agora import token as rtc_token
from snapshot_resources.schema_gen import stack_schema_problems
from snapshot_resources.spec import (
    Problem,
    is_secure_marker,
    stack_problems,
    storage_target_problems,
)

Path = tuple[str | int, ...]
DELETE = object()  # a patch value that removes the key


def base() -> dict[str, Any]:
    """A valid stack: one storage target, one session."""
    return {
        "storage": {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "my-snapshots",
                             "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE"}},
        "sessions": {"s": {"cname": "lobby", "uid": "527841", "storage": "main"}},
    }


def patched(patch: Mapping[Path, object]) -> dict[str, Any]:
    doc = base()
    for path, value in patch.items():
        node: Any = doc
        for step in path[:-1]:
            node = node.setdefault(step, {})
        if value is DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(value)
    return doc


S: Path = ("sessions", "s")
RC: Path = (*S, "recordingConfig")
SC: Path = (*S, "snapshotConfig")
ST: Path = ("storage", "main")
SALT_32 = base64.b64encode(bytes(range(32))).decode()
SALT_16 = base64.b64encode(bytes(range(16))).decode()


def _token(channel: str, uid: int, *, issued: int = 0) -> str:
    """An AccessToken2 for the base session (no App ID is known there), valid 2 h from ``issued``
    seconds after now."""
    return rtc_token.build_rtc_token(
        app_id="0123456789abcdef0123456789abcdef", app_certificate="f" * 32,
        channel_name=channel, uid=uid, token_expire=2 * 3600, issued_at=int(time.time()) + issued)


@dataclass(frozen=True)
class Example:
    accepted: Mapping[Path, object]
    rejected: Mapping[Path, object]
    path: Path  # where the rejection is reported (spec.py; the schema reports at or below it)
    schema: bool = True  # False: JSON Schema cannot say this rule (schema_gen docstring)
    # A rule of the provider's inputs, not of the stack file: the examples are whole StorageTarget
    # values for spec.storage_target_problems, and the stack schema does not apply.
    target: tuple[object, object] | None = None
    # A rule of a Pulumi stack file's config keys (config_keys.key_problems, project
    # "agora-snapshots"): the accepted and the rejected keys; the stack schema does not apply.
    config: tuple[list[str], list[str]] | None = None


EXAMPLES: dict[str, Example] = {
    "channel_name": Example({(*S, "cname"): "lobby 1!"}, {(*S, "cname"): "lobby/1"}, (*S, "cname")),
    "recorder_uid": Example({(*S, "uid"): 4294967295}, {(*S, "uid"): 4294967296}, (*S, "uid")),
    "resource_expired_hour": Example({(*S, "resourceExpiredHour"): 720},
                                     {(*S, "resourceExpiredHour"): 721},
                                     (*S, "resourceExpiredHour")),
    "acquire_region": Example({(*S, "region"): "EU"}, {(*S, "region"): "US"}, (*S, "region")),
    "app_id": Example({(*S, "appId"): "0123456789abcdef0123456789abcdef"},
                      {(*S, "appId"): "my app"}, (*S, "appId")),
    "rtc_token": Example({(*S, "token"): "006eJxTYLi"}, {(*S, "token"): ""}, (*S, "token")),
    "rtc_token_identity": Example({(*S, "token"): _token("lobby", 527841)},
                                  {(*S, "token"): _token("other-room", 527841)}, (*S, "token"),
                                  schema=False),
    "rtc_token_lifetime": Example({(*S, "token"): _token("lobby", 527841)},
                                  {(*S, "token"): _token("lobby", 527841, issued=-7200)},
                                  (*S, "token"), schema=False),
    "recorder_uid_subscribed": Example({(*RC, "subscribeVideoUids"): ["1001"]},
                                       {(*RC, "subscribeVideoUids"): ["1001", "527841"]},
                                       (*RC, "subscribeVideoUids"), schema=False),
    "mode": Example({(*S, "mode"): "individual"}, {(*S, "mode"): "mix"}, (*S, "mode")),
    "recording_file_config_forbidden": Example(
        {(*S, "recordingFileConfig"): DELETE}, {(*S, "recordingFileConfig"): {"avFileType": ["hls"]}},
        (*S, "recordingFileConfig")),
    "channel_type": Example({(*RC, "channelType"): 1}, {(*RC, "channelType"): 2},
                            (*RC, "channelType")),
    "stream_types": Example({(*RC, "streamTypes"): 1}, {(*RC, "streamTypes"): 0},
                            (*RC, "streamTypes")),
    "max_idle_time": Example({(*RC, "maxIdleTime"): 2_592_000}, {(*RC, "maxIdleTime"): 4},
                             (*RC, "maxIdleTime")),
    "video_stream_type": Example({(*RC, "videoStreamType"): 1}, {(*RC, "videoStreamType"): 2},
                                 (*RC, "videoStreamType")),
    "decryption_mode": Example({(*RC, "decryptionMode"): 1, (*RC, "secret"): "k"},
                               {(*RC, "decryptionMode"): 9}, (*RC, "decryptionMode")),
    "decryption_secret": Example({(*RC, "decryptionMode"): 5, (*RC, "secret"): "k"},
                                 {(*RC, "decryptionMode"): 5}, (*RC, "secret")),
    "decryption_salt": Example(
        {(*RC, "decryptionMode"): 7, (*RC, "secret"): "k", (*RC, "salt"): SALT_32},
        {(*RC, "decryptionMode"): 7, (*RC, "secret"): "k", (*RC, "salt"): SALT_16},
        (*RC, "salt")),
    "subscribe_list": Example({(*RC, "subscribeVideoUids"): ["1", 2]},
                              {(*RC, "subscribeVideoUids"): [str(u) for u in range(1, 34)]},
                              (*RC, "subscribeVideoUids")),
    "blacklist_spelling": Example({(*RC, "unSubscribeVideoUids"): ["5"]},
                                  {(*RC, "unsubscribeVideoUids"): ["5"],
                                   (*RC, "unSubscribeVideoUids"): ["5"]},
                                  (*RC, "unSubscribeVideoUids")),
    "subscribe_exclusive": Example(
        {(*RC, "subscribeVideoUids"): ["1"]},
        {(*RC, "subscribeVideoUids"): ["1"], (*RC, "unsubscribeVideoUids"): ["2"]},
        (*RC, "unsubscribeVideoUids")),
    "audio_needs_video_list": Example(
        {(*RC, "subscribeVideoUids"): ["1"], (*RC, "subscribeAudioUids"): ["1"]},
        {(*RC, "subscribeAudioUids"): ["1"]}, (*RC, "subscribeAudioUids")),
    "audio_list_needs_audio_stream": Example(
        {(*RC, "streamTypes"): 2, (*RC, "subscribeVideoUids"): ["1"],
         (*RC, "subscribeAudioUids"): ["1"]},
        {(*RC, "streamTypes"): 1, (*RC, "subscribeVideoUids"): ["1"],
         (*RC, "subscribeAudioUids"): ["1"]},
        (*RC,)),
    "subscribe_uid_group": Example(
        {(*RC, "subscribeVideoUids"): ["1", "2", "3"], (*RC, "subscribeUidGroup"): 1},
        {(*RC, "subscribeVideoUids"): ["1", "2", "3"], (*RC, "subscribeUidGroup"): 0},
        (*RC, "subscribeUidGroup")),
    "capture_interval": Example({(*SC, "captureInterval"): 5}, {(*SC, "captureInterval"): 4},
                                (*SC, "captureInterval")),
    "file_type": Example({(*SC, "fileType"): ["jpg"]}, {(*SC, "fileType"): ["png"]},
                         (*SC, "fileType")),
    "storage_vendor": Example(
        {(*ST, "vendor"): "alibaba", (*ST, "region"): "cn-beijing"},
        {(*ST, "vendor"): 9}, (*ST, "vendor")),
    "storage_region": Example({(*ST, "region"): 25}, {(*ST, "region"): 17}, (*ST, "region")),
    "bucket_name": Example({(*ST, "bucket"): "my.snapshots-2"}, {(*ST, "bucket"): "My_Snapshots"},
                           (*ST, "bucket")),
    "file_name_prefix": Example({(*ST, "fileNamePrefix"): ["snapshots", "Lobby1"]},
                                {(*ST, "fileNamePrefix"): ["a_b"]}, (*ST, "fileNamePrefix")),
    "extension_sse": Example(
        {(*ST, "extensionParams"): {"sse": "kms"}},
        {(*ST, "vendor"): "alibaba", (*ST, "region"): "cn-beijing",
         (*ST, "extensionParams"): {"sse": "kms"}},
        (*ST, "extensionParams")),
    "extension_tag": Example(
        {(*ST, "vendor"): "alibaba", (*ST, "region"): "cn-beijing",
         (*ST, "extensionParams"): {"tag": "team=video"}},
        {(*ST, "vendor"): "tencent", (*ST, "region"): "ap-guangzhou",
         (*ST, "bucket"): "snaps-1250000000", (*ST, "extensionParams"): {"tag": "team=video"}},
        (*ST, "extensionParams")),
    "extension_endpoint": Example(
        {(*ST, "vendor"): 11, (*ST, "region"): 0,
         (*ST, "extensionParams"): {"endpoint": "minio.example.com:9000"}},
        {(*ST, "vendor"): 11, (*ST, "region"): 0}, (*ST, "extensionParams")),
    "sts_fields": Example(
        {(*ST, "stsToken"): "STS", (*ST, "stsExpiration"): 1_900_000_000},
        {(*ST, "stsToken"): "STS"}, (*ST,)),
    "provision": Example(
        {(*ST, "provision"): True, (*ST, "accessKey"): DELETE, (*ST, "secretKey"): DELETE},
        {(*ST, "vendor"): "baidu", (*ST, "region"): "gz", (*ST, "provision"): True,
         (*ST, "accessKey"): DELETE, (*ST, "secretKey"): DELETE},
        (*ST, "provision")),
    "storage_credentials": Example({(*ST, "secretKey"): "SK"}, {(*ST, "secretKey"): DELETE},
                                   (*ST, "secretKey")),
    "retention_days": Example(
        {(*ST, "provision"): True, (*ST, "retentionDays"): 7, (*ST, "accessKey"): DELETE,
         (*ST, "secretKey"): DELETE},
        {(*ST, "provision"): True, (*ST, "retentionDays"): 0, (*ST, "accessKey"): DELETE,
         (*ST, "secretKey"): DELETE},
        (*ST, "retentionDays")),
    "storage_target": Example(
        {}, {}, ("storage",), schema=False,
        target=({"vendor": 1, "region": 0, "bucket": "snaps", "accessKey": "A", "secretKey": "S"},
                "main")),
    "unique_task": Example(
        {("sessions", "t"): {"cname": "lobby", "uid": "527842", "storage": "main"}},
        {("sessions", "t"): {"cname": "lobby", "uid": 527841, "storage": "main"}},
        ("sessions", "t", "uid"), schema=False),
    "storage_reference": Example({(*S, "storage"): "main"}, {(*S, "storage"): "other"},
                                 (*S, "storage"), schema=False),
    "mapping": Example({(*S, "recordingConfig"): {}}, {(*S, "recordingConfig"): []},
                       (*S, "recordingConfig")),
    "sts_lifetime": Example(
        {(*ST, "stsToken"): "STS", (*ST, "stsExpiration"): 1_900_000_000},
        {(*ST, "stsToken"): "STS", (*ST, "stsExpiration"): int(time.time()) + 60},
        (*ST, "stsExpiration"), schema=False),
    "project_keys": Example(
        {}, {}, ("config", "media-infra:sessions"), schema=False,
        config=(["agora-snapshots:sessions", "sessions", "agora:appId"],
                ["media-infra:sessions"])),
    "unknown_key": Example({(*SC, "captureInterval"): 5}, {(*SC, "captureIntervall"): 5},
                           (*SC, "captureIntervall")),
}


def _has(problems: list[Problem], rule_id: str, path: Path) -> bool:
    return any(p.rule_id == rule_id and p.path[: len(path)] == path for p in problems)


def test_every_rule_has_examples() -> None:
    assert sorted(EXAMPLES) == sorted(r.id for r in rules.ALL_RULES)


@pytest.mark.parametrize("rule", rules.ALL_RULES, ids=lambda r: r.id)
def test_rule_has_a_known_source_or_a_decision(rule: rules.Rule) -> None:
    assert all(tag in rules.SOURCES for tag in rule.sources), rule.sources
    # A rule of this tool rather than of Agora's API says so in its decision.
    assert rule.sources or rule.decision


def _spec_problems(example: Example, accepted: bool) -> list[Problem]:
    if example.config is not None:
        return config_keys.key_problems(example.config[0 if accepted else 1], "agora-snapshots")
    if example.target is not None:
        value = example.target[0 if accepted else 1]
        return storage_target_problems(value, path=("storage",))
    return stack_problems(patched(example.accepted if accepted else example.rejected))


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_accepted_example_passes_spec(rule_id: str) -> None:
    assert _spec_problems(EXAMPLES[rule_id], accepted=True) == []


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rejected_example_fails_spec_with_the_rule(rule_id: str) -> None:
    example = EXAMPLES[rule_id]
    problems = _spec_problems(example, accepted=False)
    assert _has(problems, rule_id, example.path), [str(p) for p in problems]


@pytest.mark.parametrize("rule_id", sorted(k for k, v in EXAMPLES.items() if v.schema))
def test_accepted_example_passes_schema(rule_id: str) -> None:
    assert stack_schema_problems(patched(EXAMPLES[rule_id].accepted)) == []


@pytest.mark.parametrize("rule_id", sorted(k for k, v in EXAMPLES.items() if v.schema))
def test_rejected_example_fails_schema_with_the_rule(rule_id: str) -> None:
    example = EXAMPLES[rule_id]
    problems = stack_schema_problems(patched(example.rejected))
    assert _has(problems, rule_id, example.path), [str(p) for p in problems]


def test_rules_json_schema_cannot_say_are_the_comparing_and_decoding_ones() -> None:
    # No JSON Schema keyword compares a value with its siblings (unique_task, storage_reference,
    # recorder_uid_subscribed) or decodes a token and reads the clock (the token rules).
    stack_rules = {k for k, v in EXAMPLES.items() if v.target is None and v.config is None}
    assert {k for k in stack_rules if not EXAMPLES[k].schema} == {
        "unique_task", "storage_reference", "recorder_uid_subscribed", "rtc_token_identity",
        "rtc_token_lifetime", "sts_lifetime"}


# --------------------------------------------------------------------------------------------------
# Helpers of rules.py


@pytest.mark.parametrize(("count", "group"), [(0, 0), (2, 0), (3, 1), (7, 1), (8, 2), (17, 3),
                                              (18, 4), (32, 4), (33, 5), (49, 5)])
def test_uid_group_for_follows_the_current_table(count: int, group: int) -> None:
    assert rules.uid_group_for(count) == group


@pytest.mark.parametrize(("given", "code"), [("aws", 1), ("S3", 1), (" Alibaba ", 2), ("cos", 3),
                                             ("2", 2), (7, 7), ("minio", 11)])
def test_vendor_by_name_resolves(given: str | int, code: int) -> None:
    vendor = rules.vendor_by_name(given)
    assert vendor is not None
    assert vendor.code == code


@pytest.mark.parametrize("given", ["dropbox", 9, True, "²", ""])
def test_vendor_by_name_rejects(given: str | int) -> None:
    assert rules.vendor_by_name(given) is None


@pytest.mark.parametrize(("vendor", "region", "code"), [
    (1, "us-east-1", 0), (1, "US_EAST_1", 0), (1, 25, 25), (2, "cn-beijing", 3),
    (2, "CN_Beijing", 3), (2, "ap-northeast-2", 26), (2, "cn-northeast-2", 26),
    (3, "ap-guangzhou", 3), (5, "westeurope", 0), (8, "gz", 3), (7, "cn-north-4", 1),
])
def test_region_code_resolves(vendor: int, region: str | int, code: int) -> None:
    assert rules.VENDORS[vendor].region_code(region) == code


@pytest.mark.parametrize(("vendor", "region"), [(1, 17), (1, 23), (1, "us-gov-west-1"), (8, 0),
                                                (2, 28), (1, True), (5, ""), (5, 1)])
def test_region_code_rejects(vendor: int, region: str | int) -> None:
    assert rules.VENDORS[vendor].region_code(region) is None


def test_channel_name_limit_counts_bytes() -> None:
    assert rules.CHANNEL_NAME.matches("a" * 63)
    assert not rules.CHANNEL_NAME.matches("a" * 64)


def test_prefix_length_counts_the_slashes() -> None:
    assert rules.file_name_prefix_length(["a" * 63, "b" * 64]) == 128


def test_secure_marker_recognised_only_in_its_exact_shape() -> None:
    assert is_secure_marker({"secure": "AAAB"})
    assert not is_secure_marker({"secure": "AAAB", "other": 1})
    assert not is_secure_marker("AAAB")


# --------------------------------------------------------------------------------------------------
# Per-vendor data: bucket naming and region tables, through spec.py and the stack schema

BUCKETS: dict[int, tuple[str, str]] = {  # vendor code: (accepted, rejected)
    0: ("snaps", "Snaps"),
    1: ("my.snapshots-1", "xn--snaps"),
    2: ("snap-shots", "snap.shots"),
    3: ("snaps-1250000000", "snaps"),
    4: ("snaps", "snaps_1"),
    5: ("snap-shots", "snap--shots"),
    6: ("snap_shots.1", "goog-snaps"),
    7: ("snaps.obs", "snaps..obs"),
    8: ("bosbucket", "bos"),
    11: ("snapshots", "192.168.1.1"),
}


def _storage_doc(vendor: rules.Vendor, **entry: object) -> dict[str, Any]:
    keys = {"accessKey": "A", "secretKey": "S"}
    extra = {"extensionParams": {"endpoint": "minio.local"}} if vendor.code == 11 else {}
    region = next(iter(vendor.regions))
    return {"storage": {"t": {"vendor": vendor.code, "region": region, "bucket": BUCKETS[vendor.code][0],
                              **keys, **extra, **entry}}}


def test_every_vendor_has_bucket_examples() -> None:
    assert sorted(BUCKETS) == sorted(rules.VENDORS)


@pytest.mark.parametrize("code", sorted(BUCKETS))
def test_vendor_bucket_naming(code: int) -> None:
    vendor = rules.VENDORS[code]
    accepted, rejected = BUCKETS[code]
    assert vendor.bucket.matches(accepted)
    assert not vendor.bucket.matches(rejected)
    for check in (stack_problems, stack_schema_problems):
        assert check(_storage_doc(vendor, bucket=accepted)) == []
        assert [p.rule_id for p in check(_storage_doc(vendor, bucket=rejected))] == ["bucket_name"]


REGION_NAMES = [
    (vendor.code, name, code)
    for vendor in rules.VENDORS.values() if not vendor.any_region
    for code, (label, vendor_id) in vendor.regions.items()
    for name in dict.fromkeys((label, vendor_id))  # ordered: the same list in every process
]


@pytest.mark.parametrize(("vendor_code", "name", "code"), REGION_NAMES)
def test_every_region_name_resolves_in_spec_and_schema(vendor_code: int, name: str, code: int) -> None:
    vendor = rules.VENDORS[vendor_code]
    assert vendor.region_code(name) == code
    assert vendor.region_code(code) == code
    doc = _storage_doc(vendor, region=name)
    assert stack_problems(doc) == []
    assert stack_schema_problems(doc) == []
