"""``snapshot-resources validate`` and ``snapshot-resources schema``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snapshot_resources import cli, schema_gen

STACK_FILE = """\
# yaml-language-server: $schema=schemas/snapshot-stack.schema.json
config:
  agora:appId: 0123456789abcdef0123456789abcdef
  agora:customerSecret:
    secure: AAABAJzsomethingAAAAAAAA
  agora-snapshots:storage:
    main:
      vendor: aws
      region: us-east-1
      bucket: my-snapshots
      accessKey:
        secure: AAABAAccessAAAAAAAAAAAAA
      secretKey:
        secure: AAABASecretAAAAAAAAAAAAA
  agora-snapshots:sessions:
    lobby:
      cname: lobby
      uid: 527841
      storage: main
      token:
        secure: AAABATokenAAAAAAAAAAAAAA
      snapshotConfig:
        captureInterval: 5
"""


def write(tmp_path: Path, text: str, name: str = "Pulumi.dev.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_valid_stack_file_with_secure_values_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, STACK_FILE)
    code, out, _err = run(capsys, "validate", str(path))
    assert (code, out) == (0, f"{path}: 1 session, 1 storage target: ok\n")


def test_a_valid_file_says_what_was_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STACK_FILE.replace(
        "  agora-snapshots:sessions:\n",
        "    backup: {vendor: aws, region: us-east-1, bucket: backup-snaps, provision: true}\n"
        "  agora-snapshots:sessions:\n"
        "    hall: {cname: hall, uid: 2, storage: backup}\n")
    path = write(tmp_path, text, "Pulumi.prod.yaml")
    code, out, err = run(capsys, "validate", str(path))
    assert (code, out, err) == (0, f"{path}: 2 sessions, 2 storage targets: ok\n", "")


def test_problem_points_at_the_offending_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, STACK_FILE.replace("captureInterval: 5", "captureIntervall: 5"))
    code, out, _err = run(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:23:9: agora-snapshots:sessions.lobby.snapshotConfig.captureIntervall: "
        "'captureIntervall' is not a known key (Agora's fields are case-sensitive); did you mean "
        "'captureInterval'? (rule unknown_key; S10, S18)"]


def test_every_problem_is_printed_in_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (STACK_FILE.replace("region: us-east-1", "region: 17")
            .replace("uid: 527841", "uid: 0").replace("captureInterval: 5", "captureInterval: 1"))
    code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert code == 1
    located = [line.split(": ")[0].split(":")[-2:] for line in out.splitlines()]
    assert located == [["9", "7"], ["18", "7"], ["23", "9"]]
    assert [line.split("(rule ")[1].split(";")[0] for line in out.splitlines()] == [
        "storage_region", "recorder_uid", "capture_interval"]


def test_missing_key_points_at_its_parent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STACK_FILE.replace("      cname: lobby\n", "")
    _code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert out.startswith(f"{tmp_path / 'Pulumi.dev.yaml'}:16:5: "
                          "agora-snapshots:sessions.lobby.cname: is required;")


def test_repeated_session_name_is_flagged_where_it_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STACK_FILE + "    lobby:\n      cname: other\n      uid: 1\n      storage: main\n"
    code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'Pulumi.dev.yaml'}:24:5: agora-snapshots:sessions.lobby: repeats the key "
        "'lobby' of line 16 (YAML keeps only the last); must be a mapping of the documented keys "
        "(a JSON object) (rule mapping; S3)"]


def test_valid_file_in_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "validate", "--format", "json", str(write(tmp_path, STACK_FILE)))
    assert code == 0
    assert json.loads(out) == {
        "files": [{"file": str(tmp_path / "Pulumi.dev.yaml"), "problems": [], "warnings": [],
                   "project": "agora-snapshots", "sessions": 1, "storageTargets": 1}],
        "problemCount": 0, "warningCount": 0}


def test_json_format_for_bots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, STACK_FILE.replace("storage: main", "storage: archive"))
    code, out, _err = run(capsys, "validate", "--format", "json", str(path))
    assert code == 1
    report = json.loads(out)
    assert report["problemCount"] == 1
    assert report["files"][0]["problems"] == [{
        "file": str(path), "line": 19, "column": 7,
        "path": "agora-snapshots:sessions.lobby.storage",
        "message": "names 'archive', which is not declared; must name a storage target declared "
                   "under storage",
        "rule": "storage_reference", "sources": [],
    }]


def test_plain_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"storage": {"m": {"vendor": 11, "region": 0, "bucket": "snaps", "accessKey": "A",
                             "secretKey": "S"}},
           "sessions": {}}
    path = write(tmp_path, json.dumps(doc, indent=2), "stack.json")
    code, out, _err = run(capsys, "validate", str(path))
    assert code == 1
    assert out.startswith(f"{path}:3:5: storage.m.extensionParams.endpoint: is required for "
                          "vendor 11;")


# The message is asserted only where this tool's own check decides; where the YAML parser refuses
# the text (None), its wording is the parser's, so only the behaviour is: one located line.
@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    ("config: [1,\n", None),
    ("- a\n- b\n", "is not a mapping"),
    ("config: 5\n", "config: is not a mapping"),
    ("a: 1\n---\nb: 2\n", None),
])
def test_unusable_file_gets_one_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str | None
) -> None:
    path = write(tmp_path, text)
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert len(out.splitlines()) == 1
    assert re.match(re.escape(str(path)) + r":\d+:\d+: \S", out), out
    if message is not None:
        assert message in out
    assert "Traceback" not in out + err


def test_pulumi_file_with_empty_config_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "validate", str(write(tmp_path, "config:\nencryptionsalt: v1:x\n")))[0] == 0


def test_binary_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, out, _err = run(capsys, "validate", str(binary), str(tmp_path / "missing.yaml"))
    assert code == 1
    lines = [line.split(": ", 1) for line in out.splitlines()]
    assert [where for where, _ in lines] == [f"{binary}:1:1", f"{tmp_path / 'missing.yaml'}:1:1"]
    assert lines[0][1] == "is not UTF-8 text (YAML or JSON expected)"
    # After "cannot read the file:", the operating system's own words (not asserted).
    assert lines[1][1].startswith("cannot read the file: ")


def test_several_files_exit_one_if_any_has_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, STACK_FILE, "Pulumi.a.yaml")
    bad = write(tmp_path, STACK_FILE.replace("uid: 527841", 'uid: "12a"'), "Pulumi.b.yaml")
    code, out, err = run(capsys, "validate", str(good), str(bad))
    assert code == 1
    assert out.splitlines()[0] == f"{good}: 1 session, 1 storage target: ok"
    assert [line.split(":")[0] for line in out.splitlines()[1:]] == [str(bad)]
    assert "1 problem in 1 file(s)" in err


def test_misspelt_project_key_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STACK_FILE.replace("agora-snapshots:sessions:", "agora-snapshots:sesions:")
    _code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert "did you mean agora-snapshots:sessions?" in out
    assert ":15:3: " in out


def test_invalid_app_id_in_stack_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STACK_FILE.replace("agora:appId: 0123456789abcdef0123456789abcdef", "agora:appId: a b")
    _code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert ":3:3: agora:appId: is not an App ID;" in out


def test_secret_values_are_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = STACK_FILE.replace("accessKey:\n        secure: AAABAAccessAAAAAAAAAAAAA",
                              "accessKey: [AKIA-DISTINCT-5521]").replace(
        "bucket: my-snapshots", "bucket: my-snapshots\n      provision: true")
    code, out, _err = run(capsys, "validate", str(write(tmp_path, text)))
    assert code == 1
    assert "accessKey" in out
    assert "AKIA-DISTINCT-5521" not in out


def test_console_entry_point_runs(tmp_path: Path) -> None:
    path = write(tmp_path, STACK_FILE.replace("uid: 527841", "uid: 0"))
    result = subprocess.run([sys.executable, "-m", "snapshot_resources.cli", "validate", str(path)],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert "(rule recorder_uid;" in result.stdout


# --------------------------------------------------------------------------------------------------
# schema


def test_schema_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "schema", "--write", "--dir", str(tmp_path))
    assert code == 0
    assert out.count("wrote ") == len(schema_gen.SCHEMAS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(schema_gen.SCHEMAS)
    assert run(capsys, "schema", "--check", "--dir", str(tmp_path))[0] == 0


def test_schema_check_fails_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "schema", "--write", "--dir", str(tmp_path))
    stale = tmp_path / schema_gen.START_SCHEMA_FILE
    stale.write_text(stale.read_text().replace('"maximum": 3600', '"maximum": 3601'))
    code, _out, err = run(capsys, "schema", "--check", "--dir", str(tmp_path))
    assert code == 1
    assert schema_gen.START_SCHEMA_FILE in err


@pytest.mark.parametrize(("name", "file"), [("stack", schema_gen.STACK_SCHEMA_FILE),
                                            ("start", schema_gen.START_SCHEMA_FILE)])
def test_schema_prints_the_named_schema(
    capsys: pytest.CaptureFixture[str], name: str, file: str
) -> None:
    code, out, _err = run(capsys, "schema", name)
    assert code == 0
    assert json.loads(out) == schema_gen.SCHEMAS[file]()


# --------------------------------------------------------------------------------------------------
# Large files


def large_stack(sessions: int) -> str:
    """A Pulumi stack file written out in full (no YAML anchors), ~25 values per session."""
    lines = ["config:", "  agora:appId: 0123456789abcdef0123456789abcdef",
             "  agora-snapshots:storage:",
             "    main: {vendor: aws, region: us-east-1, bucket: my-snapshots, provision: true}",
             "  agora-snapshots:sessions:"]
    for i in range(sessions):
        lines += [f"    room-{i}:", f"      cname: room-{i}", f"      uid: {100000 + i}",
                  "      storage: main", f"      fileNamePrefix: [room, '{i}']",
                  "      token: {secure: AAABTOKENAAAAAAAAAAAAAAA}",
                  "      recordingConfig:", "        channelType: 1",
                  "        subscribeVideoUids: ['1001', '1002', '1003']",
                  "      snapshotConfig: {captureInterval: 5, fileType: [jpg]}"]
    return "\n".join(lines) + "\n"


def test_a_plain_file_of_5000_sessions_is_not_an_alias_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ~125,000 values written out: more than MAX_VALUES, which bounds only what aliases add.
    text = large_stack(5000)
    assert "*" not in text
    assert "&" not in text
    path = write(tmp_path, text, "Pulumi.prod.yaml")
    code, out, err = run(capsys, "validate", str(path))
    assert (code, out, err) == (0, f"{path}: 5000 sessions, 1 storage target: ok\n", "")


def test_every_problem_of_a_large_file_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One problem per session: each at its own line (the lookup by key, not by scanning).
    text = large_stack(2000).replace("captureInterval: 5", "captureInterval: 1")
    path = write(tmp_path, text, "Pulumi.prod.yaml")
    code, out, _err = run(capsys, "validate", str(path))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2000
    assert [int(line.split(":")[1]) for line in lines] == [15 + 10 * i for i in range(2000)]
    assert all(f"sessions.room-{i}.snapshotConfig.captureInterval" in line
               for i, line in enumerate(lines))
