"""Stack files read as the Pulumi CLI reads them (issue 25): the project's name, YAML 1.2
scalars, numbers where text belongs, plaintext secrets, the App ID, expired STS keys and
placeholders Pulumi cannot decrypt.  ``tests/engine/test_engine_stack_files.py`` runs the same
kinds of files through ``pulumi preview`` and compares the verdicts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from snapshot_resources import cli, config_keys, pulumi_yaml, rules
from snapshot_resources.commands.validate import StackFile, load_file
from snapshot_resources.spec import SpecError
from snapshot_resources.stack import read_stack_config
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

APP_ID = "0123456789abcdef0123456789abcdef"
CIPHERTEXT = "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAA"  # the passphrase provider's form


def body(namespace: str = "", *, cname: str = "lobby", prefix: str = "lobby",
         interval: str = "10", storage_extra: str = "", session_extra: str = "",
         app_id: str = f"agora:appId: {APP_ID}") -> str:
    return (
        "config:\n"
        + (f"  {app_id}\n" if app_id else "")
        + f"  {namespace}storage:\n"
        "    main:\n      vendor: aws\n      region: us-east-1\n      bucket: acme-snaps\n"
        f"      accessKey:\n        secure: {CIPHERTEXT}\n"
        f"      secretKey:\n        secure: {CIPHERTEXT}\n"
        + storage_extra
        + f"  {namespace}sessions:\n"
        f"    lobby:\n      cname: {cname}\n      uid: \"900001\"\n      storage: main\n"
        f"      fileNamePrefix: [{prefix}]\n      snapshotConfig: {{captureInterval: {interval}}}\n"
        + session_extra
        + "encryptionsalt: v1:AAAAAAAAAAA=:v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")


def project(tmp_path: Path, name: str, text: str, *, stack: str = "dev",
            pulumi_yaml_text: str | None = None) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(pulumi_yaml_text or f"name: {name}\nruntime: python\n")
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text)
    return path


def lines(file: StackFile) -> list[str]:
    return [str(p) for p in [*file.problems, *file.warnings]]


def rule_ids(file: StackFile) -> set[str | None]:
    return {p.rule_id for p in file.problems}


# --------------------------------------------------------------------------------------------------
# The project


@pytest.mark.parametrize("name", ["media-infra", "agora-snapshots", "camera-fleet"])
def test_the_project_is_read_from_pulumi_yaml_beside_the_stack_file(
    tmp_path: Path, name: str
) -> None:
    for namespace in (f"{name}:", ""):
        file = load_file(project(tmp_path, name, body(namespace, interval="1")))
        assert file.project is not None
        assert file.project.name == name
        assert [(p.path, p.rule_id) for p in file.problems] == [
            (f"{namespace}sessions.lobby.snapshotConfig.captureInterval", "capture_interval")]


def test_the_issue_reproducer_sessions_of_another_project_are_never_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Project media-infra, keys of agora-snapshots: a non-digit uid, a missing storage target
    # and captureInterval 1 used to give "0 sessions, 0 storage targets: ok".
    text = body("agora-snapshots:", interval="1").replace('uid: "900001"', "uid: recorder")
    path = project(tmp_path, "media-infra", text.replace("storage: main", "storage: missing"))
    code = cli.main(["validate", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert ": ok" not in out
    assert "agora-snapshots:sessions: is not read: this project is named 'media-infra'" in out
    assert "rename the key to media-infra:sessions" in out
    assert rule_ids(load_file(path)) == {"project_keys"}


@pytest.mark.parametrize("key", ["media-infar:sessions", "media-infra:sesions", "other:storage",
                                 "media-infra:Sessions"])
def test_keys_that_look_like_ours_but_are_not_read_are_problems(tmp_path: Path, key: str) -> None:
    text = body("media-infra:")
    text = text.replace("config:\n", f"config:\n  {key}: {{}}\n", 1)
    file = load_file(project(tmp_path, "media-infra", text))
    assert [p.path for p in file.problems] == [key], lines(file)
    assert file.problems[0].rule_id == "project_keys"


def test_project_option_and_stack_config_dir(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, "media-infra", body("camera-fleet:"))
    assert rule_ids(load_file(path)) == {"project_keys"}
    assert cli.main(["validate", "--project", "camera-fleet", str(path)]) == 0
    assert capsys.readouterr().out.endswith("1 session, 1 storage target: ok\n")
    # Stack files in the directory Pulumi.yaml's stackConfigDir names belong to that project.
    (tmp_path / "stacks").mkdir()
    moved = tmp_path / "stacks" / "Pulumi.prod.yaml"
    moved.write_text(body("fleet:"))
    (tmp_path / "Pulumi.yaml").write_text("name: fleet\nruntime: python\nstackConfigDir: stacks\n")
    file = load_file(moved)
    assert file.project is not None
    assert file.project.name == "fleet"
    assert file.problems == []
    # A Pulumi.yaml above that keeps its stacks elsewhere is not this file's project: the
    # namespace of the storage and sessions keys is.
    (tmp_path / "Pulumi.yaml").write_text("name: other\nruntime: python\n")
    file = load_file(moved)
    assert file.project is not None
    assert file.project.name == "fleet"


def test_storage_and_sessions_of_several_projects_without_pulumi_yaml(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  a:sessions: {}\n  b:storage: {}\n")
    file = load_file(path)
    assert [p.message for p in file.problems] == [
        "holds storage or sessions under several projects (a, b); the program reads only its "
        "own project's: give --project NAME, or keep the file beside its Pulumi.yaml"]


def test_a_stack_without_sessions_is_not_called_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project(tmp_path, "media-infra", f"config:\n  agora:appId: {APP_ID}\n")
    assert cli.main(["validate", str(path)]) == 0  # pulumi preview passes it too: nothing to do
    out = capsys.readouterr().out
    assert "ok" not in out.replace("holds no", "")
    assert out.splitlines()[-1].endswith("0 sessions, 0 storage targets: nothing to deploy "
                                         "(1 warning)")
    assert "holds no storage and no sessions under media-infra: (Pulumi.yaml)" in out


def test_the_example_works_in_any_project(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parent.parent / "Pulumi.example.yaml").read_text()
    for name in ("media-infra", "agora-snapshots"):
        file = load_file(project(tmp_path, name, example, stack="prod"))
        assert (file.problems, file.warnings, file.counts) == ([], [], (2, 1))


# --------------------------------------------------------------------------------------------------
# YAML as Pulumi reads it


# What the program gets, inside a config object, for each plain scalar: measured with the
# Pulumi CLI 3.274.1 built here (a program printing pulumi.Config().get_object()).
MEASURED = {
    "yes": "yes", "on": "on", "Yes": "Yes", "NO": "NO", "1:30": "1:30", "010": 8, "08": 8,
    "1e3": 1000, "5.0": 5, "0x1F": 31, "2024-01-01": "2024-01-01 00:00:00 +0000 UTC",
    "1_000": 1000, "~": None, "True": True, ".5": 0.5, "0o17": 15,
    "12345678901234567890": 12345678901234567000,
    "2001-12-14t21:59:43.10-05:00": "2001-12-14 21:59:43.1 -0500 -0500", "+5": 5, "0b101": 5,
    "1.5": 1.5, "00": 0, "-0": 0, "1e21": 1e21, "99999999999999999999999": 1e23,
    "9007199254740993": 9007199254740993, "2024-1-2": "2024-01-02 00:00:00 +0000 UTC",
    "1e400": "1e400",
}


@pytest.mark.parametrize(("text", "value"), MEASURED.items(), ids=list(MEASURED))
def test_plain_scalars_read_as_the_pulumi_cli_hands_them_over(text: str, value: object) -> None:
    got = pulumi_yaml.plain_value(text)
    assert (got, type(got)) == (value, type(value))


@pytest.mark.parametrize("text", [".inf", "-.Inf", ".NaN"])
def test_numbers_pulumi_cannot_pass_are_refused(tmp_path: Path, text: str) -> None:
    file = load_file(project(tmp_path, "media-infra", body(interval=text)))
    assert [p.message for p in file.problems] == [
        f"holds {text} unquoted, which Pulumi reads but cannot pass to a program (JSON has no "
        "such number): quote it"]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "OFF"])
def test_yaml_1_1_booleans_are_strings_as_pulumi_reads_them(tmp_path: Path, word: str) -> None:
    # provision: yes passed validate (PyYAML: True) and failed preview (the string 'yes').
    file = load_file(project(tmp_path, "p", body(storage_extra=f"      provision: {word}\n")))
    assert [p.rule_id for p in file.problems] == ["provision"]
    assert f"is {word!r}, not true or false" in file.problems[0].message
    assert f"YAML 1.1 reads {word} as a boolean, Pulumi (YAML 1.2) as the string" in (
        file.problems[0].message)
    # cname: on failed validate (PyYAML: True) and passed preview (the channel 'on').
    file = load_file(project(tmp_path, "p", body(cname=word)))
    assert file.problems == []
    assert [w.path for w in file.warnings] == ["sessions.lobby.cname"]
    assert "quote it" in file.warnings[0].message


@pytest.mark.parametrize(("text", "note"), [
    ("1:30", "YAML 1.1 reads 1:30 as a base-60 number, Pulumi as the string '1:30'"),
    ("010", "Pulumi reads 010 as the number 8"),
    ("0x10", "Pulumi reads 0x10 as the number 16"),
    ("2024-01-01", "Pulumi reads the date 2024-01-01 as the text "
                   "'2024-01-01 00:00:00 +0000 UTC'"),
])
def test_surprising_scalars_are_warned_about_with_quote_it(
    tmp_path: Path, text: str, note: str
) -> None:
    file = load_file(project(tmp_path, "p", body(session_extra=f"      region: {text}\n"
                                                 ).replace("      region: us-east-1\n", "")))
    assert note in "\n".join(lines(file))


def test_a_quoted_scalar_is_read_as_written(tmp_path: Path) -> None:
    file = load_file(project(tmp_path, "p", body(cname="'on'", prefix="'2024'")))
    assert (file.problems, file.warnings) == ([], [])


# --------------------------------------------------------------------------------------------------
# Numbers where text belongs (pulumi config set --path writes them unquoted)


@pytest.mark.parametrize(("edit", "path"), [
    ({"cname": "12345"}, "sessions.lobby.cname"),
    ({"prefix": "2024"}, "sessions.lobby.fileNamePrefix[0]"),
    ({"storage_extra": "      extensionParams: {tag: 7}\n"}, "storage.main.extensionParams.tag"),
])
def test_a_number_where_text_belongs_says_how_to_keep_it_text(
    tmp_path: Path, edit: dict[str, Any], path: str
) -> None:
    file = load_file(project(tmp_path, "p", body(**edit)))
    assert [p.path for p in file.problems] == [path]
    assert ("(a number: quote it in the stack file, or set it with `pulumi config set --path "
            "--type string`)") in file.problems[0].message


def test_a_numeric_bucket_name_says_so(tmp_path: Path) -> None:
    file = load_file(project(tmp_path, "p", body().replace("bucket: acme-snaps",
                                                          "bucket: 12345678")))
    assert [p.path for p in file.problems] == ["storage.main.bucket"]
    assert "--type string" in file.problems[0].message


# --------------------------------------------------------------------------------------------------
# Secrets, the App ID, STS keys


def test_plaintext_secrets_are_warnings_with_the_exact_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = body("media-infra:", session_extra=(
        "      token: 006Zq7token\n"
        "      recordingConfig: {decryptionMode: 1, secret: Zq7media}\n"))
    text = text.replace(f"      accessKey:\n        secure: {CIPHERTEXT}\n",
                        "      accessKey: Zq7access\n")
    text = text.replace("config:\n", "config:\n  agora:customerSecret: Zq7customer\n"
                                     "  agora:appCertificate: 12345\n", 1)
    path = project(tmp_path, "media-infra", text, stack="prod")
    assert cli.main(["validate", str(path)]) == 0  # a warning, as pulumi preview passes it
    out = capsys.readouterr().out
    for command in [
        "pulumi config set --secret agora:customerSecret --stack prod",
        "pulumi config set --secret agora:appCertificate --stack prod",
        "pulumi config set --path --secret media-infra:storage.main.accessKey --stack prod",
        "pulumi config set --path --secret media-infra:sessions.lobby.token --stack prod",
        "pulumi config set --path --secret "
        "media-infra:sessions.lobby.recordingConfig.secret --stack prod",
    ]:
        assert f"encrypt it: `{command}`" in out, out
    assert out.count(": warning: ") == 5
    assert "Zq7" not in out  # the values themselves are not shown


@pytest.mark.parametrize(("url", "warned"), [
    ("redis://cache.internal:6379/0", False),
    ("rediss://:Zq7store@cache.internal:6380/0", True),
    ("redis://cache.internal:6379/0?password=Zq7store", True),
])
def test_every_provider_setting_is_a_known_key_and_a_store_password_is_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, warned: bool
) -> None:
    settings = "".join(f"  agora:{key}: {value}\n" for key, value in [
        ("taskJournal", "/var/lib/agora/journal.sqlite3"), ("sharedStore", url),
        ("exitTimeout", "30")])
    path = project(tmp_path, "p", body().replace("config:\n", "config:\n" + settings, 1))
    assert cli.main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("pulumi config set --secret agora:sharedStore" in out) is warned, out
    assert "Zq7" not in out


def test_the_provider_reads_exactly_the_declared_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulumi.dynamic.config import Config

    from snapshot_resources.provider import ProviderSettings

    class Recording(Config):
        def __init__(self) -> None:
            super().__init__({}, "p")
            self.keys: list[str] = []

        def get(self, key: str) -> Any:
            self.keys.append(key)
            return None

    for setting in config_keys.PROVIDER_SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    config = Recording()
    ProviderSettings.from_config(config)
    declared = {s.name for s in config_keys.PROVIDER_SETTINGS}
    # agora:appId is the program's (sessions without their own appId), not the provider's.
    assert set(config.keys) == declared - {config_keys.APP_ID_KEY}


def test_a_secret_path_with_odd_names_is_quoted_for_the_shell() -> None:
    key = config_keys.config_path("p", ["sessions", "hall.1", "token"])
    assert key == 'p:sessions["hall.1"].token'
    assert config_keys.set_secret_command(key, path=True) == (
        "pulumi config set --path --secret 'p:sessions[\"hall.1\"].token'")


@pytest.mark.parametrize("app_id", ["", "agora:appid: 0123456789abcdef0123456789abcdef",
                                    "agora:AppId: 0123456789abcdef0123456789abcdef"])
def test_a_missing_app_id_is_an_error(tmp_path: Path, app_id: str) -> None:
    file = load_file(project(tmp_path, "p", body(app_id=app_id)))
    messages = [(p.path, p.rule_id) for p in file.problems]
    assert ("agora:appId", "app_id") in messages
    assert "pulumi config set agora:appId <App ID>" in "\n".join(lines(file))
    if app_id:
        assert (app_id.split(":")[0] + ":" + app_id.split(":")[1], "unknown_key") in messages
        assert "did you mean agora:appId?" in "\n".join(lines(file))


def test_a_session_with_its_own_app_id_needs_no_stack_app_id(tmp_path: Path) -> None:
    text = body(app_id="", session_extra=f"      appId: {APP_ID}\n")
    assert load_file(project(tmp_path, "p", text)).problems == []


@pytest.mark.parametrize(("seconds_ahead", "expected"), [
    (-10**9, "expired at 19"), (-60, "expired at "), (300, "expires at "), (3600, None)])
def test_sts_expiration_needs_ten_minutes_of_life(
    tmp_path: Path, seconds_ahead: int, expected: str | None
) -> None:
    expiry = int(time.time()) + seconds_ahead
    file = load_file(project(tmp_path, "p", body(
        storage_extra=f"      stsToken: {{secure: {CIPHERTEXT}}}\n      stsExpiration: {expiry}\n")))
    if expected is None:
        assert file.problems == []
        return
    assert [(p.path, p.rule_id) for p in file.problems] == [
        ("storage.main.stsExpiration", "sts_lifetime")]
    assert file.problems[0].message.startswith(expected)
    assert f"at least {rules.MIN_STS_REMAINING_SECONDS // 60} minutes ahead" in (
        file.problems[0].message)


def test_an_expired_sts_key_fails_the_providers_check_too() -> None:
    from snapshot_resources.provider import input_problems

    target = {"vendor": 2, "region": 3, "bucket": "snaps", "accessKey": "A", "secretKey": "S",
              "stsToken": "T", "stsExpiration": 1_577_836_800}
    inputs = {"appId": APP_ID, "cname": "lobby", "uid": "900001", "storage": target}
    assert [(p.path, p.rule_id) for p in input_problems(inputs)] == [
        (("storage", "stsExpiration"), "sts_lifetime")]


@pytest.mark.parametrize(("value", "extra", "reason"), [
    ("v1:PLACEHOLDER:set-with-pulumi-config-set--secret", "", "its v1: parts are not base64"),
    ("v1:...", "", "a passphrase ciphertext is v1:<nonce>:<data>"),
    ("v1:AAAA:AAAAAAAAAAAAAAAAAAAAAAAA", "", "its v1: parts are too short for AES-256-GCM"),
    ("PLACEHOLDER", "", "a passphrase ciphertext is v1:<nonce>:<data>"),
    ("not base64!", "secretsprovider: awskms://alias/x\n", "not base64 of a ciphertext"),
])
def test_placeholders_pulumi_cannot_decrypt_are_problems(
    tmp_path: Path, value: str, extra: str, reason: str
) -> None:
    text = body().replace("config:\n", f"config:\n  agora:customerId:\n    secure: '{value}'\n", 1)
    file = load_file(project(tmp_path, "p", text + extra))
    assert [(p.path, p.rule_id) for p in file.problems] == [("agora:customerId", None)]
    assert file.problems[0].message == (
        f"is not a value Pulumi can decrypt ({reason}; a placeholder?): set it with "
        "`pulumi config set --secret agora:customerId --stack dev`")


def test_ciphertexts_of_every_provider_form_pass(tmp_path: Path) -> None:
    text = body().replace("config:\n", "config:\n  agora:customerId:\n    secure: "
                          "AAABAJzsomethingAAAAAAAAAAAA\n", 1)
    assert load_file(project(tmp_path, "p", text.replace(
        "encryptionsalt", "secretsprovider: awskms://alias/x\n#"))).problems == []


def test_json_output_carries_warnings_and_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project(tmp_path, "media-infra", body(cname="on"))
    assert cli.main(["validate", "--format", "json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warningCount"] == 1
    assert report["files"][0]["project"] == "media-infra"
    assert report["files"][0]["warnings"][0]["path"] == "sessions.lobby.cname"


# --------------------------------------------------------------------------------------------------
# The program applies the same key rules (so that preview and validate agree)


@pytest.fixture
def mocks() -> Any:
    yield PulumiMocks.install(project="media-infra", stack="dev")
    pulumi.runtime.set_all_config({}, secret_keys=[])


def _program_problems(mocks: PulumiMocks, config: dict[str, Any]) -> list[tuple[str, str]]:
    pulumi.runtime.set_all_config(
        {k: json.dumps(v) if isinstance(v, dict) else v for k, v in config.items()},
        secret_keys=[])
    found: list[tuple[str, str]] = []

    def program() -> pulumi.Output[bool]:
        try:
            read_stack_config()
        except SpecError as err:
            found.extend((p.dotted_path, p.rule_id) for p in err.problems)
        return pulumi.Output.from_input(True)

    mocks.run(program)
    return found


def _sessions() -> dict[str, Any]:
    sessions: dict[str, Any] = yaml.safe_load(
        body().split("sessions:\n", 1)[1].split("encryptionsalt")[0])
    return sessions


@pytest.mark.usefixtures("mocks")
def test_the_program_refuses_keys_it_would_not_read(mocks: PulumiMocks) -> None:
    assert _program_problems(mocks, {"agora:appId": APP_ID,
                                     "agora-snapshots:sessions": _sessions()}) == [
        ("agora-snapshots:sessions", "project_keys")]
    assert _program_problems(mocks, {"agora:appid": APP_ID}) == [
        ("agora:appid", "unknown_key")]


@pytest.mark.usefixtures("mocks")
def test_the_program_refuses_sessions_without_an_app_id(mocks: PulumiMocks) -> None:
    storage = {"main": {"vendor": "aws", "region": "us-east-1", "bucket": "acme-snaps",
                        "accessKey": "A", "secretKey": "S"}}
    assert _program_problems(mocks, {"media-infra:sessions": _sessions(),
                                     "media-infra:storage": storage}) == [
        ("agora:appId", "app_id")]


def test_plan_reads_the_project_as_validate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = project(tmp_path, "media-infra", body("media-infra:"), stack="old")
    new = tmp_path / "Pulumi.new.yaml"
    new.write_text(body("media-infra:", interval="20"))
    assert cli.main(["plan", str(old), str(new)]) == 0
    assert "+- session lobby: replace" in capsys.readouterr().out
    # The same files under another project's name: both refused, no plan.
    assert cli.main(["plan", "--project", "camera-fleet", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "media-infra:sessions: is not read: this project is named 'camera-fleet' (--project)" \
        in out


def test_the_reconciler_reads_sessions_written_without_a_namespace(tmp_path: Path) -> None:
    from snapshot_resources.reconcile.inventory import declared_sessions

    project(tmp_path, "media-infra", (Path(__file__).resolve().parent.parent
                                      / "Pulumi.example.yaml").read_text(), stack="prod")
    assert declared_sessions(tmp_path, "prod") == {"lobby", "stage"}
