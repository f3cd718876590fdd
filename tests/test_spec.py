"""spec.py: the user-facing models, the checker behind them and the StorageTarget they produce."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from snapshot_resources import rules, spec
from snapshot_resources.spec import (
    Problem,
    SessionSpec,
    SpecError,
    StackSessionSpec,
    StorageSpec,
    is_secure_marker,
    parse_session,
    parse_stack,
    parse_storage,
    session_problems,
    stack_problems,
    storage_target,
    storage_target_problems,
)


def stack(**sessions: dict[str, Any]) -> dict[str, Any]:
    return {
        "storage": {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "my-snapshots",
                             "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE",
                             "fileNamePrefix": ["snapshots"]}},
        "sessions": sessions or {"lobby": {"cname": "lobby", "uid": "527841", "storage": "main"}},
    }


def rule_ids(problems: list[Problem]) -> list[str]:
    return [p.rule_id for p in problems]


# --------------------------------------------------------------------------------------------------
# Names resolved to codes, values normalised, defaults filled


@pytest.mark.parametrize(("vendor", "region", "codes"), [
    ("aws", "us-east-1", (1, 0)),
    ("S3", "EU_SOUTH_1", (1, 25)),
    ("alibaba", "cn-beijing", (2, 3)),
    ("aliyun", "CN_Beijing", (2, 3)),
    (2, 3, (2, 3)),
    ("tencent", "ap-guangzhou", (3, 3)),
    ("huawei", "cn-north-4", (7, 1)),
    ("baidu", "gz", (8, 3)),
    ("azure", None, (5, 0)),
    ("gcp", "europe-west1", (6, 0)),
])
def test_vendor_and_region_names_resolve_to_codes(
    vendor: str | int, region: str | int | None, codes: tuple[int, int]
) -> None:
    entry: dict[str, Any] = {"vendor": vendor, "bucket": "snaps", "accessKey": "A", "secretKey": "S"}
    if region is not None:
        entry["region"] = region
    if vendor == "tencent":
        entry["bucket"] = "snaps-1250000000"
    spec = parse_storage(entry)
    assert (spec.vendorCode, spec.regionCode) == codes
    assert spec.vendor == vendor  # kept as given, for the reader of the stack file


def test_vendor_region_is_the_vendors_own_id() -> None:
    spec = parse_storage({"vendor": 2, "region": 3, "bucket": "snaps", "provision": True})
    assert spec.vendor_region == "cn-beijing"


def test_session_defaults_come_from_rules() -> None:
    session = parse_stack(stack()).sessions["lobby"]
    assert isinstance(session, StackSessionSpec)
    assert session.resourceExpiredHour == rules.RESOURCE_EXPIRED_HOUR.default
    assert session.mode == "individual"
    assert session.recordingConfig.streamTypes == rules.STREAM_TYPES.default
    assert session.recordingConfig.maxIdleTime == rules.MAX_IDLE_TIME.default
    assert session.recordingConfig.channelType == rules.CHANNEL_TYPE.default
    assert session.snapshotConfig.captureInterval == rules.CAPTURE_INTERVAL.default
    assert session.snapshotConfig.fileType == ["jpg"]


def test_uids_from_yaml_ints_become_digit_strings() -> None:
    session = parse_session({"cname": "c", "uid": 527841, "recordingConfig": {
        "subscribeVideoUids": [1, "2"], "unsubscribeAudioUids": [3]}})
    assert session.uid == "527841"
    assert session.recordingConfig.subscribeVideoUids == ["1", "2"]
    assert session.recordingConfig.unsubscribeAudioUids == ["3"]


@pytest.mark.parametrize(("lists", "group"), [
    ({"subscribeVideoUids": ["1", "2", "3"], "subscribeAudioUids": ["3", "4"]}, 1),  # union 4
    ({"subscribeVideoUids": ["1", "2"]}, 0),
    ({"subscribeVideoUids": [str(u) for u in range(1, 19)]}, 4),  # 18 uids: the current table
    ({"subscribeVideoUids": ["#allstream#"]}, 0),
    ({"unsubscribeVideoUids": ["1", "2", "3"]}, 0),
])
def test_subscribe_uid_group_is_derived_from_the_union(lists: dict[str, Any], group: int) -> None:
    session = parse_session({"cname": "c", "uid": 900001, "recordingConfig": lists})
    assert session.recordingConfig.subscribeUidGroup == group


def test_explicit_subscribe_uid_group_is_kept() -> None:
    session = parse_session({"cname": "c", "uid": 900001, "recordingConfig": {"subscribeUidGroup": 5}})
    assert session.recordingConfig.subscribeUidGroup == 5


def test_union_over_49_uids_has_no_group() -> None:
    problems = session_problems({"cname": "c", "uid": 900001, "recordingConfig": {
        "subscribeVideoUids": [str(u) for u in range(1, 33)],
        "subscribeAudioUids": [str(u) for u in range(100, 120)]}})
    assert rule_ids(problems) == ["subscribe_uid_group"]


def test_model_validate_runs_the_same_checks() -> None:
    with pytest.raises(SpecError) as caught:
        StorageSpec.model_validate({"vendor": "aws", "region": "mars-1", "bucket": "snaps",
                                    "accessKey": "A", "secretKey": "S"})
    assert rule_ids(caught.value.problems) == ["storage_region"]
    assert SessionSpec.model_validate({"cname": "c", "uid": 7}).uid == "7"


# --------------------------------------------------------------------------------------------------
# Errors: all at once, with path and rule


def test_every_problem_is_reported_at_once() -> None:
    doc = stack(
        a={"cname": "x/y", "uid": "0", "storage": "main", "mode": "mix",
           "snapshotConfig": {"captureInterval": 1, "fileType": ["png"]},
           "recordingConfig": {"streamTypes": 0, "maxIdleTime": 1}},
    )
    doc["storage"]["main"]["region"] = 17
    problems = stack_problems(doc)
    assert sorted(rule_ids(problems)) == sorted([
        "storage_region", "channel_name", "recorder_uid", "mode", "capture_interval",
        "file_type", "stream_types", "max_idle_time"])


def test_spec_error_lists_one_problem_per_line() -> None:
    with pytest.raises(SpecError) as caught:
        parse_stack(stack(a={"cname": "c", "uid": "12a", "storage": "main",
                             "snapshotConfig": {"captureInterval": 4}}))
    lines = str(caught.value).splitlines()
    assert lines == [
        "sessions.a.uid: is '12a'; " + rules.RECORDER_UID.text + " (rule recorder_uid; S2, S19)",
        "sessions.a.snapshotConfig.captureInterval: is 4; " + rules.CAPTURE_INTERVAL.text
        + " (rule capture_interval; S2, S3, S17, G1, S8, S14)",
    ]


def test_recording_file_config_is_rejected_with_its_own_rule() -> None:
    problems = session_problems({"cname": "c", "uid": 1, "recordingFileConfig": {}})
    assert rule_ids(problems) == ["recording_file_config_forbidden"]
    assert problems[0].message == rules.RECORDING_FILE_CONFIG_FORBIDDEN.text


@pytest.mark.parametrize("media", ["Video", "Audio"])
def test_either_blacklist_spelling_is_accepted_under_one_canonical_key(media: str) -> None:
    recording = {"streamTypes": 2, "subscribeVideoUids": ["1"],
                 f"unSubscribe{media}Uids": ["7"]}
    if media == "Video":
        recording = {"unSubscribeVideoUids": ["7"]}
    parsed = parse_session({"cname": "c", "uid": "900001", "recordingConfig": recording})
    assert getattr(parsed.recordingConfig, f"unsubscribe{media}Uids") == ["7"]
    assert f"unsubscribe{media}Uids" in parsed.resource_inputs()["recordingConfig"]
    assert f"unSubscribe{media}Uids" not in parsed.resource_inputs()["recordingConfig"]


def test_both_spellings_of_one_blacklist_are_named_as_such() -> None:
    problems = session_problems({"cname": "c", "uid": 900001, "recordingConfig": {
        "subscribeVideoUids": ["1"], "streamTypes": 2,
        "unSubscribeAudioUids": ["1"], "unsubscribeAudioUids": ["2"]}})
    assert rule_ids(problems) == ["blacklist_spelling"]
    assert problems[0].dotted_path == "recordingConfig.unSubscribeAudioUids"


@pytest.mark.parametrize(("key", "hint"), [("captureintervall", "captureInterval"),
                                           ("CaptureInterval", "captureInterval")])
def test_unknown_key_suggests_the_close_known_key(key: str, hint: str) -> None:
    problems = session_problems({"cname": "c", "uid": 1, "snapshotConfig": {key: 5}})
    assert problems[0].path == ("snapshotConfig", key)
    assert problems[0].message.endswith(f"did you mean {hint!r}?")


def test_unknown_key_far_from_any_gets_no_suggestion() -> None:
    problems = session_problems({"cname": "c", "uid": 1, "zzz": 5})
    assert "did you mean" not in problems[0].message


def test_vendor_and_region_typos_get_suggestions() -> None:
    spec_problems = stack_problems({"storage": {"m": {"vendor": "amazom", "bucket": "snaps",
                                                      "region": 0, "accessKey": "A",
                                                      "secretKey": "S"}}})
    assert "did you mean 'amazon'?" in spec_problems[0].message
    region_problems = stack_problems({"storage": {"m": {"vendor": "aws", "region": "us-east1",
                                                        "bucket": "snaps", "accessKey": "A",
                                                        "secretKey": "S"}}})
    assert "did you mean 'us-east-1'?" in region_problems[0].message


@pytest.mark.parametrize("value", [True, 1.5, "1", None])
def test_integers_must_be_integers(value: object) -> None:
    problems = session_problems({"cname": "c", "uid": 900001, "recordingConfig": {"channelType": value}})
    assert rule_ids(problems) == ["channel_type"]


def test_null_is_not_the_same_as_absent() -> None:
    assert rule_ids(session_problems({"cname": "c", "uid": 1, "token": None})) == ["rtc_token"]


def test_session_entry_must_be_a_mapping() -> None:
    problems = stack_problems({"sessions": {"a": ["cname", "lobby"]}})
    assert [(p.path, p.rule_id) for p in problems] == [(("sessions", "a"), "mapping")]


# --------------------------------------------------------------------------------------------------
# Storage rules


def test_provision_needs_no_keys_and_refuses_them() -> None:
    assert parse_storage({"vendor": "aws", "region": 0, "bucket": "snaps",
                          "provision": True}).retentionDays == rules.RETENTION_DAYS.default
    problems = stack_problems({"storage": {"m": {"vendor": "aws", "region": 0, "bucket": "snaps",
                                                 "provision": True, "accessKey": "A"}}})
    assert [(p.path, p.rule_id) for p in problems] == [
        (("storage", "m", "accessKey"), "storage_credentials")]


def test_provision_unsupported_vendor_says_to_give_keys() -> None:
    problems = stack_problems({"storage": {"m": {"vendor": "baidu", "region": "gz",
                                                 "bucket": "bosbucket", "provision": True}}})
    assert rule_ids(problems) == ["provision"]
    assert "give accessKey and secretKey" in problems[0].message


def test_retention_days_without_provision_is_rejected() -> None:
    problems = stack_problems({"storage": {"m": {"vendor": "aws", "region": 0, "bucket": "snaps",
                                                 "accessKey": "A", "secretKey": "S",
                                                 "retentionDays": 7}}})
    assert [(p.path, p.rule_id) for p in problems] == [
        (("storage", "m", "retentionDays"), "retention_days")]


def test_sts_only_for_vendors_one_to_three() -> None:
    entry = {"vendor": "azure", "bucket": "snaps", "accessKey": "A", "secretKey": "S",
             "stsToken": "T", "stsExpiration": 1_900_000_000}
    problems = stack_problems({"storage": {"m": entry}})
    assert {p.path[-1] for p in problems} == {"stsToken", "stsExpiration"}
    assert set(rule_ids(problems)) == {"sts_fields"}


def test_wire_storage_target_needs_codes_and_keys() -> None:
    problems = storage_target_problems({"vendor": "aws", "region": "us-east-1", "bucket": "snaps"})
    assert sorted((p.path[-1], p.rule_id) for p in problems) == [
        ("accessKey", "storage_credentials"), ("region", "storage_region"),
        ("secretKey", "storage_credentials"), ("vendor", "storage_vendor")]


def test_wire_storage_target_rejects_tool_only_keys() -> None:
    problems = storage_target_problems({"vendor": 1, "region": 0, "bucket": "snaps",
                                        "accessKey": "A", "secretKey": "S", "provision": True})
    assert [(p.path, p.rule_id) for p in problems] == [(("provision",), "unknown_key")]


# --------------------------------------------------------------------------------------------------
# Stack rules


def test_same_channel_and_uid_under_different_app_ids_is_fine() -> None:
    doc = stack(a={"cname": "c", "uid": 1, "storage": "main", "appId": "app1"},
                b={"cname": "c", "uid": 1, "storage": "main", "appId": "app2"})
    assert stack_problems(doc) == []


def test_default_app_id_groups_sessions_without_one() -> None:
    doc = stack(a={"cname": "c", "uid": 1, "storage": "main"},
                b={"cname": "c", "uid": "1", "storage": "main", "appId": "app1"})
    assert stack_problems(doc) == []
    problems = stack_problems(doc, default_app_id="app1")
    assert [(p.path, p.rule_id) for p in problems] == [(("sessions", "b", "uid"), "unique_task")]


def test_combined_prefix_over_128_is_reported_on_the_session() -> None:
    doc = stack(a={"cname": "c", "uid": 1, "storage": "main", "fileNamePrefix": ["x" * 118]})
    problems = stack_problems(doc)  # "snapshots/" + 118 = 128: fine
    assert problems == []
    doc["sessions"]["a"]["fileNamePrefix"] = ["x" * 119]
    problems = stack_problems(doc)
    assert [(p.path, p.rule_id) for p in problems] == [
        (("sessions", "a", "fileNamePrefix"), "file_name_prefix")]


def test_opaque_storage_map_skips_the_reference_check() -> None:
    doc = stack()
    doc["storage"] = {"secure": "AAAB"}
    assert stack_problems(doc, is_unknown=is_secure_marker) == []


# --------------------------------------------------------------------------------------------------
# Partial validation (the provider's check() during preview)

UNKNOWN = object()


def _unknown(value: object) -> bool:
    return value is UNKNOWN


def test_unknown_values_count_as_present_and_skip_dependent_rules() -> None:
    data = {"cname": UNKNOWN, "uid": UNKNOWN, "recordingConfig": {
        "decryptionMode": UNKNOWN, "subscribeVideoUids": ["1", UNKNOWN],
        "subscribeAudioUids": ["2"], "streamTypes": UNKNOWN}}
    assert session_problems(data, is_unknown=_unknown) == []


def test_known_values_are_still_checked_next_to_unknown_ones() -> None:
    data = {"cname": UNKNOWN, "uid": "0", "snapshotConfig": UNKNOWN,
            "recordingConfig": {"decryptionMode": 1}}
    problems = session_problems(data, path=("props",), is_unknown=_unknown)
    assert sorted((p.path, p.rule_id) for p in problems) == [
        (("props", "recordingConfig", "secret"), "decryption_secret"),
        (("props", "uid"), "recorder_uid")]


def test_without_a_predicate_nothing_is_unknown() -> None:
    problems = session_problems({"cname": "c", "uid": {"secure": "x"}})
    assert rule_ids(problems) == ["recorder_uid"]


# --------------------------------------------------------------------------------------------------
# Secrets never appear in messages

SECRETS = {
    "accessKey": "AKIA-SECRET-ak-51f0", "secretKey": "SECRET-sk-8842", "stsToken": "SECRET-sts-77",
    "token": "SECRET-token-0c1", "secret": "SECRET-dec-93a", "salt": "SECRET-salt-4b2",
}


def test_no_problem_message_contains_a_secret_value() -> None:
    doc = {
        "storage": {
            # provision with keys given, STS on a vendor without it: every key is rejected.
            "m": {"vendor": "gcp", "bucket": "snaps", "provision": True,
                  "accessKey": SECRETS["accessKey"], "secretKey": [SECRETS["secretKey"]],
                  "stsToken": SECRETS["stsToken"]},
        },
        "sessions": {"a": {"cname": "c", "uid": 1, "storage": "m", "token": [SECRETS["token"]],
                           "recordingConfig": {"secret": SECRETS["secret"],
                                               "salt": SECRETS["salt"]}}},
    }
    problems = stack_problems(doc)
    assert {p.path[-1] for p in problems} >= set(SECRETS)
    text = "\n".join(str(p) for p in problems)
    for value in SECRETS.values():
        assert value not in text


def test_model_repr_hides_secrets() -> None:
    storage = parse_storage({"vendor": 1, "region": 0, "bucket": "snaps",
                             "accessKey": SECRETS["accessKey"], "secretKey": SECRETS["secretKey"]})
    session = parse_session({"cname": "c", "uid": 1, "token": SECRETS["token"],
                             "recordingConfig": {"decryptionMode": 1, "secret": SECRETS["secret"]}})
    text = repr(storage) + repr(session) + str(storage) + str(session)
    for value in SECRETS.values():
        assert value not in text


# --------------------------------------------------------------------------------------------------
# storage_target


def test_storage_target_is_the_wire_shape_with_the_prefixes_joined() -> None:
    spec = parse_stack(stack(a={"cname": "c", "uid": 900001, "storage": "main",
                                "fileNamePrefix": ["lobby"]}))
    target = storage_target(spec.storage["main"], spec.sessions["a"].fileNamePrefix)
    assert target == {"vendor": 1, "region": 0, "bucket": "my-snapshots",
                      "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE",
                      "fileNamePrefix": ["snapshots", "lobby"]}
    assert storage_target_problems(dict(target)) == []


def test_storage_target_carries_extension_params_and_sts() -> None:
    spec = parse_storage({"vendor": "aws", "region": 0, "bucket": "snaps", "accessKey": "A",
                          "secretKey": "S", "stsToken": "T", "stsExpiration": 1_900_000_000,
                          "extensionParams": {"sse": "kms"}})
    target = storage_target(spec)
    assert target["extensionParams"] == {"sse": "kms"}
    assert (target["stsToken"], target["stsExpiration"]) == ("T", 1_900_000_000)
    assert "fileNamePrefix" not in target


def test_storage_target_of_a_provisioned_target_takes_the_created_keys() -> None:
    spec = parse_storage({"vendor": "aws", "region": 0, "bucket": "snaps", "provision": True})
    with pytest.raises(ValueError, match="no accessKey"):
        storage_target(spec)
    target = storage_target(spec, access_key="AK", secret_key="SK")
    assert (target["accessKey"], target["secretKey"]) == ("AK", "SK")


def test_storage_target_refuses_a_joined_prefix_over_128() -> None:
    spec = parse_storage({"vendor": "aws", "region": 0, "bucket": "snaps", "accessKey": "A",
                          "secretKey": "S", "fileNamePrefix": ["x" * 100]})
    with pytest.raises(SpecError) as caught:
        storage_target(spec, ["y" * 28])
    assert rule_ids(caught.value.problems) == ["file_name_prefix"]


def test_parse_does_not_modify_its_input() -> None:
    doc = stack(a={"cname": "c", "uid": 900001, "storage": "main",
                   "recordingConfig": {"subscribeVideoUids": [1]}})
    before = copy.deepcopy(doc)
    parse_stack(doc)
    assert doc == before


def test_resource_inputs_round_trip_through_the_provider_check() -> None:
    spec = parse_session({"cname": "c", "uid": 5, "token": "t", "region": "EU",
                          "recordingConfig": {"subscribeVideoUids": [1, 2, 3]},
                          "fileNamePrefix": ["lobby"]})
    inputs = spec.resource_inputs()
    assert set(inputs) == {"cname", "uid", "region", "resourceExpiredHour", "recordingConfig",
                           "snapshotConfig", "token"}
    assert inputs["recordingConfig"]["subscribeUidGroup"] == 1
    assert session_problems(inputs) == []
    assert parse_session(inputs) == spec.model_copy(update={"fileNamePrefix": None})


def test_storage_target_that_is_not_a_mapping_names_its_rule() -> None:
    problems = storage_target_problems("main", path=("storage",))
    assert [(p.path, p.rule_id) for p in problems] == [(("storage",), "storage_target")]


def test_an_integral_float_is_the_integer_as_json_schema_says() -> None:
    # JSON Schema counts 5.0 as an integer, and Pulumi's wire sends every number as a double.
    spec = parse_session({"cname": "c", "uid": 527841.0,
                          "snapshotConfig": {"captureInterval": 5.0}})
    assert spec.snapshotConfig.captureInterval == 5
    assert type(spec.snapshotConfig.captureInterval) is int
    assert spec.uid == "527841"


@pytest.mark.parametrize("vendor", sorted(c for c, v in rules.VENDORS.items() if not v.any_region))
def test_an_unknown_region_with_nothing_close_lists_the_vendors_regions(vendor: int) -> None:
    storage = {"vendor": vendor, "region": "zzzz-nowhere-9", "bucket": "bucket-name-ok",
               "accessKey": "a", "secretKey": "b"}
    problems = stack_problems({"storage": {"m": storage}, "sessions": {}})
    [problem] = [p for p in problems if p.rule_id == "storage_region"]
    names = list(rules.VENDORS[vendor].region_names())
    assert "its regions: " + ", ".join(names[:3]) in problem.message
    assert all(name in problem.message for name in names[:30])


def test_an_unknown_region_close_to_one_suggests_it() -> None:
    storage = {"vendor": "aws", "region": "us-east-9", "bucket": "bucket-name-ok",
               "accessKey": "a", "secretKey": "b"}
    [problem] = stack_problems({"storage": {"m": storage}, "sessions": {}})
    assert "did you mean 'us-east-2'?" in problem.message
    assert "its regions" not in problem.message


def test_the_project_name_is_the_one_pulumi_yaml_declares() -> None:
    root = Path(__file__).resolve().parents[1]
    assert yaml.safe_load((root / "Pulumi.yaml").read_text())["name"] == spec.PROJECT
