"""Bad input to the provider's check() (issue #7 item 3), called directly and through the engine's
gRPC path (``ProviderHost``).

check() receives what the engine sends: numbers as floats (protobuf doubles), values not known
during preview as ``pulumi.output.Unknown``, anything at all where a user mistyped.  For every
input it returns (never raises), and every failure either names the top-level property, or, for
an input that holds secrets (``storage``, ``token``, ``recordingConfig``: the engine prints the
named property's value), names no property and starts its reason with the dotted path.  Each
reason cites a rule of ``rules.RULES_BY_ID`` and no secret value appears in any of them.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.dynamic import CheckResult
from pulumi.output import Unknown
from pulumi.runtime import rpc
from support.fuzzing import FUZZ, PathT, json_values, paths, replace
from support.sessions import APP_ID, session_inputs

from snapshot_resources import changes, rules
from snapshot_resources.changes import INPUT_KEYS
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.provider_host import ProviderHost, secret

SECRET_BEARING = ("storage", "token", "recordingConfig")
SALT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
# Every reason ends with the rule it cites: "... (rule <id>; <sources>)".
RULE_CITED = re.compile(r".* \(rule (?P<rule>[a-z0-9_]+); [^()]*\)", re.DOTALL)


def full_inputs() -> dict[str, Any]:
    """Valid inputs touching every input key (decryption, a token, STS, extension params)."""
    news = session_inputs(
        APP_ID,
        region="NA",
        resourceExpiredHour=24,
        token="006eJxTYBBZ-token",
        recordingConfig={"channelType": 1, "streamTypes": 2, "maxIdleTime": 300,
                         "decryptionMode": 7, "secret": "dec-secret", "salt": SALT,
                         "subscribeVideoUids": ["1", "2"], "subscribeAudioUids": ["1"],
                         "subscribeUidGroup": 0},
    )
    news["storage"] = {"vendor": 1, "region": 0, "bucket": "my-snapshots",
                       "accessKey": "AKIAEXAMPLE", "secretKey": "SECRETEXAMPLE",
                       "fileNamePrefix": ["a", "b"], "extensionParams": {"sse": "kms"},
                       "stsToken": "sts-token", "stsExpiration": 1_900_000_000}
    return news


def check(news: dict[str, Any]) -> CheckResult:
    return SnapshotSessionProvider().check({}, news)


def assert_failures_well_formed(result: CheckResult, news: dict[str, Any]) -> None:
    for failure in result.failures:
        prop, reason = failure.property, failure.reason
        assert isinstance(reason, str)
        assert reason.strip()
        match = RULE_CITED.fullmatch(reason)
        assert match, reason
        assert match["rule"] in rules.RULES_BY_ID, reason
        if prop:
            assert prop in INPUT_KEYS, (prop, reason)
            assert prop not in SECRET_BEARING, (prop, reason)
            # Nested problems repeat the path from the property down; top-level ones need not.
            assert reason.startswith((f"{prop}.", f"{prop}[")) or not reason.startswith(
                tuple(f"{k}." for k in INPUT_KEYS if k != prop)), reason
        else:
            # An input that holds secrets, or a key that is no input at all: no property (the
            # engine would print its value), the dotted path first.
            unexpected = tuple(f"{k}:" for k in news if k not in INPUT_KEYS)
            assert reason.startswith(
                (*(f"{k}{c}" for k in SECRET_BEARING for c in ".[:"), *unexpected)
            ), reason
    # check() hands the inputs back as they came, but for the one blacklist spelling it keeps.
    assert result.inputs == changes.canonical_inputs(news)


def floats_for_ints(value: Any) -> Any:
    """What the engine sends: every number a double (``5`` arrives as ``5.0``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) <= 2**53 else value  # no double holds it exactly
    if isinstance(value, dict):
        return {k: floats_for_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats_for_ints(v) for v in value]
    return value


def input_paths(news: dict[str, Any]) -> list[PathT]:
    return [p for p in paths(news) if p]


def test_full_inputs_are_valid() -> None:
    assert check(full_inputs()).failures == []


# --------------------------------------------------------------------------------------------------
# Direct calls


@st.composite
def changed_inputs(draw: st.DrawFn) -> tuple[dict[str, Any], PathT]:
    news = full_inputs()
    path = draw(st.sampled_from([*input_paths(news), *((k,) for k in INPUT_KEYS)]))
    if draw(st.integers(0, 4)) == 0 and path[:-1] and isinstance(path[-1], str):
        return _delete(news, path), path
    return replace(news, path, draw(json_values)), path


def _delete(news: dict[str, Any], path: PathT) -> dict[str, Any]:
    news = copy.deepcopy(news)
    node: Any = news
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return news


@FUZZ
@given(changed_inputs(), st.booleans())
def test_any_value_anywhere_never_raises(case: tuple[dict[str, Any], PathT],
                                         engine_numbers: bool) -> None:
    news, _ = case
    if engine_numbers:
        news = floats_for_ints(news)
    result = check(news)
    assert_failures_well_formed(result, news)


@FUZZ
@given(st.dictionaries(st.sampled_from([*INPUT_KEYS, "recordingFileConfig", "x"]), json_values,
                       max_size=6))
def test_any_property_bag_never_raises(news: dict[str, Any]) -> None:
    result = check(news)
    assert_failures_well_formed(result, news)
    # What is missing is named: appId by its property, storage by its path (secret-bearing).
    if "appId" not in news:
        assert any(f.property == "appId" for f in result.failures)
    if "storage" not in news:
        assert any(f.reason.startswith("storage: is required") for f in result.failures)


@FUZZ
@given(st.data())
def test_unknown_values_anywhere_in_valid_inputs_pass(data: st.DataObject) -> None:
    news = full_inputs()
    drawn = data.draw(st.lists(st.sampled_from(input_paths(news)), min_size=1, max_size=4))
    chosen = outermost(drawn)
    for path in chosen:
        news = replace(news, path, Unknown())  # type: ignore[no-untyped-call]
    if data.draw(st.booleans()):
        news = floats_for_ints(news)
    assert check(news).failures == [], chosen


@FUZZ
@given(st.data())
def test_unknown_values_do_not_hide_other_problems(data: st.DataObject) -> None:
    # A broken captureInterval stays reported whatever else is unknown, outside snapshotConfig.
    news = replace(full_inputs(), ("snapshotConfig", "captureInterval"), 4)
    candidates = [p for p in input_paths(news) if p[0] != "snapshotConfig"]
    for path in outermost(data.draw(st.lists(st.sampled_from(candidates), min_size=1,
                                              max_size=3))):
        news = replace(news, path, Unknown())  # type: ignore[no-untyped-call]
    failures = check(news).failures
    assert [(f.property, f.reason.split(":")[0]) for f in failures] == [
        ("snapshotConfig", "snapshotConfig.captureInterval")]


def outermost(chosen: list[PathT]) -> list[PathT]:
    """The paths not inside another chosen one (an unknown value has no inside)."""
    return [p for p in set(chosen) if not any(q != p and p[: len(q)] == q for q in chosen)]


def test_engine_numbers_are_the_same_inputs() -> None:
    assert check(floats_for_ints(full_inputs())).failures == []
    # 5.5 is not an integer, however it travels.
    news = floats_for_ints(replace(full_inputs(), ("snapshotConfig", "captureInterval"), 5.5))
    assert [f.property for f in check(news).failures] == ["snapshotConfig"]


_SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=16).map(
    lambda s: "Zq7" + s)
_SECRET_PATHS: list[PathT] = [
    ("storage", "accessKey"), ("storage", "secretKey"), ("storage", "stsToken"), ("token",),
    ("recordingConfig", "secret"), ("recordingConfig", "salt"),
]


def _all_texts(result: CheckResult) -> Iterator[str]:
    for failure in result.failures:
        yield failure.property
        yield failure.reason


@FUZZ
@given(st.sampled_from(_SECRET_PATHS), _SECRET, changed_inputs(),
       st.sampled_from(["as is", "in a list", "in a mapping", "as a float-like string"]))
def test_no_secret_in_any_failure(path: PathT, value: str, case: tuple[dict[str, Any], PathT],
                                  shape: str) -> None:
    news, _ = case
    placed: object = {"as is": value, "in a list": [value], "in a mapping": {"k": value},
                      "as a float-like string": value + ".0"}[shape]
    try:
        news = replace(news, path, placed)
    except (KeyError, IndexError, TypeError):
        return  # the change replaced the parent of the secret: nothing to place it in
    result = check(news)
    assert_failures_well_formed(result, news)
    assert [t for t in _all_texts(result) if value in t] == []


def test_every_failure_of_a_thoroughly_broken_bag_is_well_formed() -> None:
    unknown = Unknown()  # type: ignore[no-untyped-call]
    news = {
        "appId": 5.0, "cname": ["x"], "uid": -1.0, "region": unknown,
        "resourceExpiredHour": 1e300,
        "recordingConfig": {"decryptionMode": 1.0, "secret": "Zq7-dec", "x": unknown},
        "snapshotConfig": "jpg", "storage": {"vendor": "aws", "accessKey": ["Zq7-ak"]},
        "token": 7,
    }
    result = check(news)
    assert_failures_well_formed(result, news)
    props = {f.property for f in result.failures}
    assert {"appId", "cname", "uid", "resourceExpiredHour", "snapshotConfig"} <= props
    secret_reasons = [f.reason for f in result.failures if not f.property]
    assert any(r.startswith("storage.vendor: ") for r in secret_reasons)
    assert any(r.startswith("token: ") for r in secret_reasons)
    assert any(r.startswith("recordingConfig.x: ") for r in secret_reasons)
    assert not any("Zq7" in t for t in _all_texts(result))


# --------------------------------------------------------------------------------------------------
# Through the engine's gRPC path


@pytest.fixture(scope="module")
def offline_host() -> Iterator[ProviderHost]:
    with ProviderHost() as host:  # no Configure: check runs without credentials (PR previews)
        yield host


def hosted_failures(host: ProviderHost, news: dict[str, Any]) -> list[tuple[str, str]]:
    return host.resource(SnapshotSessionProvider(), name="fuzz").check(news).failures


HOSTED_CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    # name: (inputs, the leading path of each expected failure)
    "valid with every number a double": (floats_for_ints(full_inputs()), set()),
    "unknown storage and token (preview)": (
        {**full_inputs(), "storage": rpc.UNKNOWN, "token": rpc.UNKNOWN}, set()),
    "unknown nested uid list": (
        replace(full_inputs(), ("recordingConfig", "subscribeVideoUids"), rpc.UNKNOWN), set()),
    "wrong types everywhere": (
        {**full_inputs(), "uid": [1], "cname": {"a": 1}, "snapshotConfig": [],
         "resourceExpiredHour": "24"},
        {"uid", "cname", "snapshotConfig", "resourceExpiredHour"}),
    "broken storage with a secret key": (
        replace(replace(full_inputs(), ("storage", "vendor"), 99),
                ("storage", "secretKey"), ["Zq7-hosted-secret"]),
        {"storage.vendor", "storage.secretKey"}),
    "recordingConfig as a string": ({**full_inputs(), "recordingConfig": "Zq7-oops"},
                                    {"recordingConfig"}),
}


@pytest.mark.parametrize("case", sorted(HOSTED_CASES))
def test_check_through_the_provider_host(case: str, offline_host: ProviderHost) -> None:
    news, expected = HOSTED_CASES[case]
    found = hosted_failures(offline_host, news)
    leading = {(prop or reason.split(":")[0]) if prop else reason.split(":")[0]
               for prop, reason in found}
    assert leading == expected, found
    for prop, reason in found:
        assert RULE_CITED.fullmatch(reason), reason
        assert prop == "" or prop not in SECRET_BEARING
        assert "Zq7" not in prop + reason


def test_secret_wrapped_inputs_are_checked_like_plain_ones(offline_host: ProviderHost) -> None:
    news = full_inputs()
    news["storage"] = secret({**news["storage"], "region": 99, "secretKey": "Zq7-wrapped"})
    news["token"] = secret("Zq7-token")
    found = hosted_failures(offline_host, news)
    assert [reason.split(":")[0] for _, reason in found] == ["storage.region"]
    assert all(prop == "" and "Zq7" not in reason for prop, reason in found)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=changed_inputs())
def test_fuzzed_inputs_through_the_provider_host(case: tuple[dict[str, Any], PathT],
                                                 offline_host: ProviderHost) -> None:
    news, _ = case
    try:
        rpc_ready = _serializable(news)
    except (TypeError, ValueError, OverflowError):
        return  # not every Python value has a protobuf spelling (bytes, ints past 2**63)
    found = hosted_failures(offline_host, rpc_ready)
    direct = check(floats_for_ints(rpc_ready)).failures
    # The gRPC path answers what a direct call answers for the values as the engine sends them
    # (numbers as doubles, None-valued keys dropped; a Struct does not keep key order, so a
    # mapping shown in a message may list its keys in another order).
    assert sorted(map(_gist, found)) == sorted(_gist((f.property, f.reason)) for f in direct)


def _gist(failure: tuple[str, str]) -> tuple[str, str, str]:
    prop, reason = failure
    match = RULE_CITED.fullmatch(reason)
    assert match, reason
    return prop, match["rule"], reason.split(" ", 1)[0]


def _serializable(value: Any) -> Any:
    """``value`` as it survives the engine: None-valued keys dropped, only JSON-like scalars."""
    if isinstance(value, dict):
        return {str(k): _serializable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_serializable(v) for v in value]
    if isinstance(value, bytes):
        raise TypeError("bytes")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise OverflowError("beyond a double's integers")
    if isinstance(value, float) and value != value:
        raise ValueError("NaN")  # NaN != NaN: the comparison below would be meaningless
    return value
