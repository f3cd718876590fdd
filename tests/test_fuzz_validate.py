"""Bad input to ``snapshot-resources validate`` (issue #7 item 3): malformed YAML of every kind.

The command runs in-process (``cli.main(["validate", path])``, output captured).  For any file:
exit status 1 with one ``FILE:LINE:COL: ...`` line per problem and a count on stderr, never a
traceback; exit status 0, with one ``FILE: N sessions, M storage targets: ok`` line, only for a
document the checker accepts.  Alias bombs and deep nesting are refused before the document is
built (commands/validate.py: MAX_VALUES, MAX_DEPTH).

Messages: a test asserts this tool's wording only where this tool's own check decides (empty, not
a mapping, not UTF-8, flow nesting counted on the raw text before any parser sees it, aliases).
Where PyYAML refuses the text, the line carries PyYAML's words, which change between versions
(6.0.4 began stopping deep flow nesting itself): those tests assert the behaviour only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzzing import PathT, json_values_for_schema, mutated, valid_stack

from snapshot_resources import cli, config_keys, pulumi_yaml, rules
from snapshot_resources.commands import validate
from snapshot_resources.commands.validate import MAX_DEPTH, MAX_VALUES
from snapshot_resources.pulumi_yaml import PulumiLoader
from snapshot_resources.spec import STACK_KEYS, is_secure_marker, stack_problems

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

VALID_YAML = yaml.safe_dump(valid_stack(), sort_keys=False)
PULUMI_YAML = """\
config:
  agora:appId: 0123456789abcdef0123456789abcdef
  agora-snapshots:storage:
    main:
      vendor: aws
      region: us-east-1
      bucket: my-snapshots
      accessKey:
        secure: AAABAKm5AAAAAAAAAAAAAAAA
      secretKey:
        secure: AAABAJx1AAAAAAAAAAAAAAAA
  agora-snapshots:sessions:
    lobby:
      cname: lobby
      uid: 527841
      storage: main
"""


class Run:
    """One validate run: exit status, stdout lines, stderr."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err
        self.lines = [line for line in out.splitlines() if line]


def run_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | str,
                 *extra: str, name: str = "stack.yaml") -> Run:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    capsys.readouterr()
    status = cli.main(["validate", *extra, str(path)])
    out, err = capsys.readouterr()
    return Run(status, out, err)


def assert_clean_outcome(run: Run, path: Path) -> None:
    """Exit 0 with the summary line (after any warnings), or exit 1 with one located line per
    problem (warnings among them) and the count of problems."""
    assert "Traceback" not in run.out + run.err
    assert run.status in (0, 1)
    line_re = re.compile(re.escape(str(path)) + r":\d+:\d+: \S.*")
    warning_re = re.compile(re.escape(str(path)) + r":\d+:\d+: warning: \S.*")
    if run.status == 0:
        assert run.lines, "exit status 0 without the summary"
        assert OK_LINE.fullmatch(run.lines[-1].removeprefix(str(path))), run.lines
        assert all(warning_re.fullmatch(line) for line in run.lines[:-1]), run.lines
        assert run.err == ""
        return
    assert run.lines, "exit status 1 without a problem"
    for line in run.lines:
        assert line_re.fullmatch(line), line
    count = sum(not warning_re.fullmatch(line) for line in run.lines)
    assert count, "exit status 1 without a problem"
    assert run.err == f"{count} problem{'s' if count != 1 else ''} in 1 file(s)\n"


OK_LINE = re.compile(r": \d+ sessions?, \d+ storage targets?: (ok|nothing to deploy)"
                     r"( \(\d+ warnings?\))?")


def assert_one_located_line(run: Run, path: Path) -> None:
    """The behaviour for a file that cannot be used, whatever words say why."""
    assert_clean_outcome(run, path)
    assert run.status == 1
    assert len(run.lines) == 1, run.lines
    assert re.match(re.escape(str(path)) + r":\d+:\d+: \S", run.lines[0]), run.lines


def accepted_by_checker(text: str) -> bool:
    """What exit status 0 must mean: a mapping, read as the Pulumi CLI reads it, that the checker
    accepts (Pulumi form or plain); in the Pulumi form, no config key left unread, an App ID for
    every session and no secret Pulumi could not decrypt."""
    try:
        data = yaml.load(text, Loader=PulumiLoader)  # noqa: S506 - the safe loader validate uses
    except ValueError:
        return False
    if not isinstance(data, Mapping):
        return False
    if "config" in data and "storage" not in data and "sessions" not in data:
        config = data["config"]
        if config is None:
            return True
        if not isinstance(config, Mapping):
            return False
        keys = [str(k) for k in config]
        projects = {k.partition(":")[0] for k in keys if k.partition(":")[2] in STACK_KEYS}
        if len(projects) > 1:
            return False
        project = projects.pop() if projects else None
        full = {config_keys.full_key(k, project) if project else k: v
                for k, v in zip(keys, config.values(), strict=True)}
        document = {k: full[f"{project}:{k}" if project else k] for k in STACK_KEYS
                    if (f"{project}:{k}" if project else k) in full}
        app_id = full.get("agora:appId")
        app_id = app_id if isinstance(app_id, Mapping) else pulumi_yaml.top_level_text(app_id)
        if app_id is not None and not is_secure_marker(app_id) and (
                not isinstance(app_id, str) or not rules.APP_ID.matches(app_id)):
            return False
        problems = config_keys.app_id_problems(document.get("sessions"), app_id)
        if project is not None:
            problems += config_keys.key_problems(full, project)
        checked = "(secret)" if is_secure_marker(app_id) else app_id
        return not problems and not _undecryptable(full) and not stack_problems(
            document, default_app_id=checked if isinstance(checked, str) else None,
            is_unknown=is_secure_marker)
    return not stack_problems(data, is_unknown=is_secure_marker)


def _undecryptable(value: object) -> bool:
    if is_secure_marker(value):
        assert isinstance(value, Mapping)
        return validate._undecryptable(value["secure"], None, False) is not None
    if isinstance(value, Mapping):
        return any(_undecryptable(v) for v in value.values())
    if isinstance(value, list):
        return any(_undecryptable(v) for v in value)
    return False


def test_the_valid_documents_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stack.yaml"
    expected = [f"{path}: 3 sessions, 3 storage targets: ok", f"{path}: 1 session, 1 storage "
                "target: ok", f"{path}: 3 sessions, 3 storage targets: ok"]
    for content, line in zip((VALID_YAML, PULUMI_YAML, json.dumps(valid_stack())), expected,
                             strict=True):
        run = run_validate(tmp_path, capsys, content)
        assert (run.status, run.lines, run.err) == (0, [line], "")


# --------------------------------------------------------------------------------------------------
# Hand-picked malformed files


BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
) + "\n"

MALFORMED: dict[str, tuple[bytes | str, str | None]] = {
    # name: (file content, a phrase the single message must contain: this tool's own words, or
    # None where the YAML parser refuses the text and the words are the parser's)
    "empty file": ("", "is empty"),
    "only whitespace and comments": ("  \n# nothing\n\n", "is empty"),
    "explicit null": ("null\n", "is empty"),
    "a list at the root": ("- storage\n- sessions\n", "is not a mapping"),
    "a scalar at the root": ("just text\n", "is not a mapping"),
    "a number at the root": ("42\n", "is not a mapping"),
    "tab indentation": ("storage:\n\tmain:\n\t\tvendor: aws\n", None),
    "unclosed double quote": ('sessions:\n  s:\n    cname: "lobby\n', None),
    "unclosed single quote": ("sessions: {s: {cname: 'lobby}}\n", None),
    "unclosed flow mapping": ("sessions: {s: {cname: lobby}\n", None),
    "undefined alias": ("sessions: *nowhere\n", None),
    "python object tag": ("sessions: !!python/object/apply:os.system ['true']\n", None),
    "unhashable key": ("? [a, b]\n: 1\n", None),
    "two documents": ("storage: {}\n---\nsessions: {}\n", None),
    "non-UTF-8 bytes": (b"storage:\n  main:\n    bucket: caf\xe9\n", "not UTF-8"),
    "random binary": (bytes(range(256)), "not UTF-8"),
    "a NUL character": ("storage:\x00\n", None),
    # Python's int() refuses it inside PyYAML's constructor: a dependency decides.
    "an integer of 5000 digits": ("sessions:\n  s:\n    uid: " + "9" * 5000 + "\n", None),
    "billion laughs": (BOMB, "aliases that expand"),
    "recursive alias": ("sessions: &s {lobby: *s}\n", "recursive"),
    "recursive alias in a list": ("storage: &l [*l]\n", "recursive"),
    # Flow nesting is counted on the raw text before PyYAML sees it (which, since 6.0.4, would
    # stop at 1000 levels with its own words): this tool's message.
    "lists nested 1000 deep": ("storage: " + "[" * 1000 + "]" * 1000 + "\n", "nested more"),
    "mappings nested 1000 deep": ("storage: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
                                  "nested more"),
    # Block nesting is found from the parser's events: the parser sees the text first.
    "block mappings nested 150 deep": ("".join(" " * i + "a:\n" for i in range(150)), None),
    "block sequences nested 1500 deep": ("- " * 1500 + "x\n", None),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_gets_one_clear_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, phrase = MALFORMED[case]
    started = time.monotonic()
    run = run_validate(tmp_path, capsys, content)
    elapsed = time.monotonic() - started
    assert_one_located_line(run, tmp_path / "stack.yaml")
    if phrase is not None:
        assert phrase in run.lines[0], run.lines[0]
    assert elapsed < 5, f"{case} took {elapsed:.1f} s"


def test_alias_bomb_is_refused_quickly_without_being_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    run = run_validate(tmp_path, capsys, BOMB)
    assert time.monotonic() - started < 2  # 9**9 values expanded would take minutes
    assert run.status == 1
    assert len(run.lines) == 1
    assert re.fullmatch(re.escape(str(tmp_path / "stack.yaml")) + r":\d+:\d+: uses YAML aliases "
                        f"that expand to more than {MAX_VALUES} values \\(refused unexpanded\\)",
                        run.lines[0]), run.lines


def test_aliases_within_the_bound_are_ordinary_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = """\
storage:
  main: {vendor: aws, region: us-east-1, bucket: my-snapshots, accessKey: A, secretKey: S}
sessions:
  a: &session
    cname: lobby
    uid: 1
    storage: main
    recordingConfig: &rc {subscribeVideoUids: ["#allstream#"]}
  b:
    <<: *session
    uid: 2
    recordingConfig: *rc
"""
    run = run_validate(tmp_path, capsys, shared)
    assert (run.status, run.lines) == (0, [f"{tmp_path / 'stack.yaml'}: 2 sessions, 1 storage "
                                           "target: ok"])


def _aliased(copies: int, size: int) -> str:
    """A document whose aliases add exactly ``copies * size`` values: one anchored list of
    ``size - 1`` items (``size`` values with the list) and ``copies`` aliases of it."""
    items = ", ".join(["x"] * (size - 1))
    return f"a: &a [{items}]\n" + "".join(f"b{i}: *a\n" for i in range(copies))


@pytest.mark.parametrize(("copies", "refused"), [(100, False), (101, True)])
def test_only_what_aliases_add_counts_towards_the_bound(copies: int, refused: bool) -> None:
    # 100 aliases of 1,000 values add MAX_VALUES exactly (allowed); 101 add 1,000 more.
    size = MAX_VALUES // 100
    problems = validate.validate_text(_aliased(copies, size), "stack.yaml")
    assert any("aliases that expand" in p.message for p in problems) is refused, problems


def test_a_large_plain_document_is_not_an_alias_bomb() -> None:
    # More values written out than MAX_VALUES, no alias: nothing is expanded, nothing refused.
    doc = {"storage": {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "snaps",
                                "provision": True}},
           "sessions": {f"s{i}": {"cname": f"room-{i}", "uid": 100 + i, "storage": "main",
                                  "recordingConfig": {"subscribeVideoUids": ["1", "2", "3"]}}
                        for i in range(MAX_VALUES // 10)}}
    text = yaml.safe_dump(doc)
    assert "*" not in text
    assert validate.load_text(text, "stack.yaml").problems == []


def test_an_aliased_problem_is_still_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID_YAML + "  copy: &c {cname: 'a b!', uid: 0, storage: main}\n  again: *c\n"
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    assert any("sessions.copy.uid" in line for line in run.lines)
    assert any("sessions.again.uid" in line for line in run.lines)


def test_nesting_at_the_bound_is_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MAX_DEPTH levels (the root mapping counts as one) are parsed and checked as usual.
    inner = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    run = run_validate(tmp_path, capsys, f"storage: {inner}\n")
    assert run.status == 1
    assert "nested more" not in run.out
    assert "storage: is []" in run.out or "storage:" in run.out


@pytest.mark.parametrize("depth", [100_000])
def test_very_deep_nesting_does_not_crash_the_process(tmp_path: Path, depth: int) -> None:
    # In a fresh process: libyaml's composer recursing this deep overflowed the C stack
    # (SIGSEGV) before validate scanned the depth first.
    path = tmp_path / "deep.yaml"
    path.write_text("storage: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "snapshot_resources.cli", "validate",
                             str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "nested more" in result.stdout
    assert "Traceback" not in result.stderr


def test_duplicate_keys_are_each_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID_YAML + "  lobby:\n    cname: other\n    uid: 5\n    storage: main\n"
    text += "storage:\n  x: {}\n"
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    assert sum("repeats the key 'lobby'" in line for line in run.lines) == 1
    assert sum("repeats the key 'storage'" in line for line in run.lines) == 1


@pytest.mark.parametrize("number", ["1e999", "-.inf", ".nan", "0x" + "f" * 40, "1" * 30,
                                    "527841.5", "0o7777777777777"])
def test_odd_numbers_are_problems_not_crashes(
    number: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID_YAML.replace("uid: 7", f"uid: {number}")
    assert text != VALID_YAML
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    assert run.status == 1
    # .inf and .nan: Pulumi reads them but cannot pass them to a program (one located line).
    assert any(("sessions.hall.uid" in line and "(rule recorder_uid;" in line)
               or f"holds {number} unquoted" in line for line in run.lines), run.lines


def test_json_format_of_a_malformed_file_is_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_validate(tmp_path, capsys, BOMB, "--format", "json")
    assert run.status == 1
    report = json.loads(run.out)
    assert report["problemCount"] == 1
    assert report["files"][0]["problems"][0]["rule"] is None


# --------------------------------------------------------------------------------------------------
# Generated files


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_validate(tmp_path, capsys, data)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    if run.status == 0:
        assert accepted_by_checker(data.decode("utf-8-sig"))


_YAMLISH = st.lists(st.sampled_from([*"{}[]:,-?&*!|>'\"#%@`\n\t .0aB1~<=",
                                      "storage", "sessions", "main", "uid", "cname", "vendor",
                                      "config", "\n  ", "&a ", "*a", "!!str ", "<<: ",
                                      "secure: "]),
                    max_size=40).map("".join)


@FUZZ
@given(text=_YAMLISH)
def test_random_yaml_punctuation(text: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    if run.status == 0:
        assert accepted_by_checker(text)


@st.composite
def edited_text(draw: st.DrawFn, base: str) -> str:
    """``base`` with a few characters deleted, inserted or replaced."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.sampled_from(["\t", "'", '"', ":", "-", "{", "]", "&x ", "*x", "\n",
                                      " ", "#", "\x00", "\u2028", "é", "!!binary "]))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


@FUZZ
@given(text=st.one_of(edited_text(VALID_YAML), edited_text(PULUMI_YAML)))
def test_a_valid_file_with_a_few_characters_changed(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    if run.status == 0:
        assert accepted_by_checker(text)


def _dump(value: object) -> str:
    try:
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return "{}\n"  # not every Python value has a YAML spelling


@FUZZ
@given(case=mutated(valid_stack, json_values_for_schema))
def test_a_valid_document_with_one_value_changed(
    case: tuple[Any, PathT], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, changed = case
    text = _dump(doc)
    run = run_validate(tmp_path, capsys, text)
    assert_clean_outcome(run, tmp_path / "stack.yaml")
    assert (run.status == 0) == accepted_by_checker(text), (changed, run.lines)


@FUZZ
@given(case=mutated(valid_stack, json_values_for_schema))
def test_the_same_change_inside_a_pulumi_stack_file(
    case: tuple[Any, PathT], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = case
    config: dict[str, object] = {"agora:appId": "0123456789abcdef0123456789abcdef"}
    if isinstance(doc, dict):
        config.update({f"agora-snapshots:{k}": v for k, v in doc.items()})
    else:
        config["agora-snapshots:sessions"] = doc
    text = _dump({"config": config})
    run = run_validate(tmp_path, capsys, text, name="Pulumi.dev.yaml")
    assert_clean_outcome(run, tmp_path / "Pulumi.dev.yaml")
    assert (run.status == 0) == accepted_by_checker(text), run.lines


# --------------------------------------------------------------------------------------------------
# The fast paths of validate give the results of the straightforward ones


def _reference_too_deep_flow(text: str, max_depth: int) -> tuple[int, int] | None:
    """The original character loop of ``_too_deep_flow``: (line, column) of the first bracket
    past ``max_depth``, or None."""
    depth, quote, line, col, previous, index = 0, "", 1, 0, "\n", 0
    while index < len(text):
        char = text[index]
        col += 1
        if char == "\n":
            line, col = line + 1, 0
            if quote == "#":
                quote = ""
        elif quote == "#":
            pass
        elif quote == '"':
            if char == "\\":
                index, col = index + 1, col + 1
                if index < len(text) and text[index] == "\n":
                    line, col = line + 1, 0  # the original missed this line (a fixed slip)
            elif char == '"':
                quote = ""
        elif quote == "'":
            if char == "'":
                quote = ""
        elif char in "\"'" and previous in " \t\n[{,:-?":
            quote = char
        elif char == "#" and previous in " \t\n":
            quote = "#"
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return line, col
        elif char in "]}":
            depth = max(depth - 1, 0)
        previous = char
        index += 1
    return None


_FLOW_TEXT = st.lists(st.sampled_from([*"[]{}\"'#\\\n\t ,:-?ab", "''", "[[", "]]"]),
                      max_size=60).map("".join)


@FUZZ
@given(text=_FLOW_TEXT, max_depth=st.integers(0, 4))
def test_the_flow_depth_scan_matches_a_character_loop(
    text: str, max_depth: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "MAX_DEPTH", max_depth)
    found = validate._too_deep_flow(text, "f")
    expected = _reference_too_deep_flow(text, max_depth)
    assert (None if found is None else (found.line, found.column)) == expected


def _event_depth(text: str) -> int | None:
    """The deepest nesting PyYAML's parser reports, or None when it refuses the text."""
    depth = deepest = 0
    try:
        for event in yaml.parse(text, Loader=validate._Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                deepest = max(deepest, depth)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    return deepest


_NESTING_TEXT = st.lists(st.sampled_from(["- ", "? ", ": ", "a: ", "a:", " ", "  ", "\n", "\r",
                                          "\r\n", "\u2028", "\t", "\ufeff", "[", "]", "{",
                                          "}", ", ", "x", "&a ", "!!seq ", "\"q\" ", "|\n"]),
                         max_size=40).map("".join)


@FUZZ
@given(text=_NESTING_TEXT, max_depth=st.integers(2, 8))
def test_a_text_judged_shallow_never_nests_deeper(text: str, max_depth: int) -> None:
    # The skipped parse must never have found anything: the bound is an upper bound.
    if validate._shallow(text, max_depth):
        depth = _event_depth(text)
        assert depth is None or depth <= max_depth, depth


@pytest.mark.parametrize("text", [
    "- " * 6 + "x\n",
    "".join(" " * i + "a:\n" for i in range(6)) + "      b\n",
    "a:\n- b:\n  - c:\n    - d\n",
    "a:\r  - - - - x\r",
])
def test_deep_block_nesting_is_never_judged_shallow(text: str) -> None:
    depth = _event_depth(text)
    assert depth is not None
    assert depth > 4
    assert not validate._shallow(text, 4)


def _loaded(text: str) -> str:
    """What PyYAML's loader makes of ``text``: the value's repr, or the error's type and text."""
    try:
        return repr(yaml.load(text, Loader=PulumiLoader))  # noqa: S506 - the safe loader
    except Exception as error:  # any error is an outcome to compare
        return f"{type(error).__name__}: {error}"


def _constructed(text: str) -> str:
    loader = PulumiLoader(text)
    try:
        node = loader.get_single_node()
        notes: dict[int, Any] = {}
        return repr(validate._construct(loader, node, notes, tree="*" not in text)
                    if node else None)
    except Exception as error:  # as in _loaded
        return f"{type(error).__name__}: {error}"
    finally:
        loader.dispose()


_SCALARS = st.sampled_from(["a", "1", "0x1f", "1_000", "-.inf", ".nan", "1e3", "~", "null", "yes",
                            "true", "2019-06-11", "2019-06-11T07:32:46Z", "'7'", "!!str 5",
                            "!!int x", "!!float 2", "!!binary aGk=", "!!set {a}", "<<", "=",
                            "!!python/name:os.system", "9" * 5000])


@st.composite
def _plain_documents(draw: st.DrawFn, depth: int = 0) -> str:
    """Flow documents of scalars, lists and mappings, merge keys included."""
    kind = draw(st.sampled_from(["scalar", "list", "map"] if depth < 3 else ["scalar"]))
    if kind == "scalar":
        return draw(_SCALARS)
    items = draw(st.lists(_plain_documents(depth + 1), max_size=3))
    if kind == "list":
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(_SCALARS, min_size=len(items), max_size=len(items)))
    return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"


@FUZZ
@given(text=_plain_documents())
def test_the_direct_construction_matches_the_loader(text: str) -> None:
    assert _constructed(text) == _loaded(text)
