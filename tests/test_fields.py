"""The tables of fields in rules.py (rules.SESSION, RECORDING, SNAPSHOT, STORAGE, EXTENSION) and
what derives from them: the models, the key lists, the request bodies, the secrets, the change
rule, and rule texts that state their own data (CONTRIBUTING.md, "Add a field")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from snapshot_resources import changes, rules, spec
from snapshot_resources.agora import wire
from snapshot_resources.rules import Kind
from snapshot_resources.target import ExtensionParams, StorageTarget, build_target

NESTED: list[tuple[type[BaseModel], rules.Shape]] = [
    (spec.RecordingConfig, rules.RECORDING),
    (spec.SnapshotConfig, rules.SNAPSHOT),
    (spec.ExtensionParamsSpec, rules.EXTENSION),
]


def _model_keys(shape: rules.Shape, *, stack: bool) -> list[str]:
    return [f.name for f in shape.fields
            if f.kind is not Kind.FORBIDDEN and (stack or f.kind is not Kind.STORAGE)]


def test_the_session_models_have_the_tables_fields_in_order() -> None:
    assert list(spec.SessionSpec.model_fields) == _model_keys(rules.SESSION, stack=False)
    assert set(spec.StackSessionSpec.model_fields) == set(_model_keys(rules.SESSION, stack=True))
    assert list(spec.StorageSpec.model_fields) == _model_keys(rules.STORAGE, stack=True)


@pytest.mark.parametrize(("model", "shape"), NESTED, ids=lambda v: getattr(v, "name", ""))
def test_a_nested_model_is_made_from_its_table(model: type[BaseModel], shape: rules.Shape) -> None:
    assert list(model.model_fields) == list(shape.keys())
    made = model()
    for item in shape.fields:
        default = getattr(made, item.name)
        expected: Any = item.default if not item.derived else getattr(item.rule, "default", None)
        assert default == (list(expected) if isinstance(expected, tuple) else expected), item.name
        # A secret never shows in a repr (CONTRIBUTING.md, secrets).
        assert model.model_fields[item.name].repr is not item.secret, item.name


@pytest.mark.parametrize(("typed", "shape"), [(StorageTarget, rules.STORAGE),
                                               (ExtensionParams, rules.EXTENSION)])
def test_the_typed_dicts_name_the_tables_keys(typed: Any, shape: rules.Shape) -> None:
    assert set(typed.__annotations__) == set(shape.inputs())


def test_the_key_lists_derive_from_the_tables() -> None:
    assert spec.SESSION_KEYS == (
        "cname", "uid", "appId", "region", "resourceExpiredHour", "mode", "recordingConfig",
        "snapshotConfig", "fileNamePrefix", "token")
    assert set(spec.STACK_SESSION_KEYS) == {*spec.SESSION_KEYS, "storage"}
    own = {"provision", "retentionDays"}  # this tool's keys, not Agora's
    assert [k for k in spec.STORAGE_KEYS if k not in own] == list(spec.WIRE_STORAGE_KEYS)
    assert set(changes.INPUT_KEYS) == {*spec.RESOURCE_INPUT_KEYS, "storage"}
    assert not {"mode", "fileNamePrefix"} & set(changes.INPUT_KEYS)
    assert dict(spec.SESSION_FORBIDDEN) == {
        "recordingFileConfig": rules.RECORDING_FILE_CONFIG_FORBIDDEN}


def test_the_secrets_are_the_tables_secret_fields() -> None:
    assert set(rules.SECRET_PATHS) == {
        ("storage", "accessKey"), ("storage", "secretKey"), ("storage", "stsToken"),
        ("recordingConfig", "secret"), ("recordingConfig", "salt"), ("token",)}
    assert rules.SECRET_WHOLE_INPUTS == ("storage", "token")
    assert rules.SECRET_NESTED_PATHS == (("recordingConfig", "secret"), ("recordingConfig", "salt"))


def test_update_changes_in_place_only_the_fields_marked_so() -> None:
    assert set(rules.SUBSCRIBE_LIST_KEYS) == changes.UPDATABLE_RECORDING_KEYS
    assert {"accessKey", "secretKey", "stsToken", "stsExpiration"} == changes.ROTATABLE_STORAGE_KEYS
    assert {k for k in changes.INPUT_KEYS if (s := rules.SESSION[k].shape) and s.updatable()} == {
        "recordingConfig", "storage"}


def test_the_blacklists_are_sent_as_the_table_says() -> None:
    assert dict(rules.BLACKLIST_WIRE_NAMES) == {
        f.name: f.sent_as for f in rules.RECORDING.fields if f.sent_as}
    assert set(rules.RECORDING.accepted_keys()) - set(rules.RECORDING.keys()) == {
        "unSubscribeVideoUids", "unSubscribeAudioUids"}


def test_a_request_object_holds_each_field_under_its_wire_name() -> None:
    session = spec.parse_session({"cname": "lobby", "uid": "7", "recordingConfig": {
        "unsubscribeVideoUids": ["5"], "decryptionMode": 1, "secret": "k"}})
    body = wire.recording_config(session)
    assert list(body) == ["channelType", "streamTypes", "maxIdleTime", "videoStreamType",
                          "decryptionMode", "secret", "unSubscribeVideoUids", "subscribeUidGroup"]
    assert wire.object_body(rules.SNAPSHOT, session.snapshotConfig) == {
        "captureInterval": rules.CAPTURE_INTERVAL.default, "fileType": ["jpg"]}


def test_the_target_builder_leaves_out_empty_optional_keys_and_this_tools_own() -> None:
    target = build_target({"vendor": 1, "region": 0, "bucket": "b", "accessKey": "A",
                           "secretKey": "S", "fileNamePrefix": [], "extensionParams": {},
                           "stsToken": None, "stsExpiration": None, "provision": True})
    assert target == {"vendor": 1, "region": 0, "bucket": "b", "accessKey": "A", "secretKey": "S"}


@pytest.mark.parametrize("rule", rules.ALL_RULES, ids=lambda r: r.id)
def test_a_rule_text_has_no_placeholder_left(rule: rules.Rule) -> None:
    # "{ }" in the channel-name charset is text; "{minimum}" left over would be a misspelt
    # placeholder (rules.Rule).
    assert re.search(r"\{[a-z_]+\}", rule.text) is None


@pytest.mark.parametrize("rule", [r for r in rules.ALL_RULES if isinstance(r, rules.IntRange)],
                         ids=lambda r: r.id)
def test_a_range_rule_states_its_own_bounds(rule: rules.IntRange) -> None:
    assert str(rule.minimum) in rule.text
    if rule.maximum < 2**31 - 1:  # retention_days states only its minimum
        assert str(rule.maximum) in rule.text


def test_a_bound_is_stated_where_the_rule_keeps_it() -> None:
    wider = rules.IntRange(id="x", path="x", text="from {minimum} to {maximum}", sources=(),
                           minimum=1, maximum=99)
    assert wider.text == "from 1 to 99"
    labelled = rules.Choice(id="y", path="y", text="{choices}; {quoted}; {json}", sources=(),
                            values=(0, 1), labels=("off", "on"))
    assert labelled.text == "0 (off) or 1 (on); 0 or 1; [0, 1]"


def test_every_table_rule_is_registered() -> None:
    for shape in rules.SHAPES:
        for item in shape.fields:
            assert rules.RULES_BY_ID[item.rule.id].id == item.rule.id
