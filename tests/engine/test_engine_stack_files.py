"""``snapshot-resources validate`` judges a stack file as ``pulumi preview`` does (issue 25).

For each stack file below (valid and invalid, three project names, written by hand as a user
writes them: unquoted scalars, keys with and without a namespace, plaintext and encrypted
secrets), the project's ``Pulumi.yaml`` names the project and this repository's ``__main__.py``
is the program.  ``validate`` reads the file as it sits beside that ``Pulumi.yaml``; the real
engine previews the same stack.  The verdicts must agree, and where the program refuses the file
the preview shows each rule ``validate`` named.  Storage is bring-your-own (no vendor plugin is
needed offline) and a preview never calls Agora, so no emulator is started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from pulumi import automation as auto
from support.engine_stack import REPO

from snapshot_resources.commands.validate import load_file
from snapshot_resources.testing.offline import OfflinePulumi

APP_ID: Final = "0123456789abcdef0123456789abcdef"
STORAGE: Final = """\
    main:
      vendor: aws
      region: us-east-1
      bucket: acme-snaps
      fileNamePrefix: [snapshots]
      {keys}
"""
SESSIONS: Final = """\
    lobby:
      cname: {cname}
      uid: "900001"
      storage: main
      fileNamePrefix: [{prefix}]
      recordingConfig: {{channelType: 1, subscribeVideoUids: ["#allstream#"]}}
      snapshotConfig: {{captureInterval: {interval}}}
"""
PLAIN_KEYS: Final = "accessKey: AKIAEXAMPLE\n      secretKey: plain-secret-key"


@dataclass(frozen=True)
class Case:
    """One stack file: its project's name, its ``config:`` body and the secrets set with
    ``pulumi config set --path --secret`` after it is written; ``valid`` is what both must say."""

    project: str
    config: str
    valid: bool
    secrets: dict[str, str] = field(default_factory=dict)


def stack(*, namespace: str = "", app_id: str = f"agora:appId: {APP_ID}", cname: str = "lobby",
          prefix: str = "lobby", interval: str = "10", keys: str = PLAIN_KEYS,
          storage_extra: str = "", extra: str = "") -> str:
    """A ``config:`` body: one bring-your-own storage target and one session."""
    return (f"  {app_id}\n" if app_id else "") + (
        f"  {namespace}storage:\n" + STORAGE.format(keys=keys) + storage_extra
        + f"  {namespace}sessions:\n"
        + SESSIONS.format(cname=cname, prefix=prefix, interval=interval) + extra)


SECRET_KEYS: Final = {"storage.main.accessKey": "AKIAENCRYPTED", "storage.main.secretKey": "sk"}
CASES: Final = {
    "valid, keys without a namespace, keys encrypted": Case(
        "media-infra", stack(keys="{}").replace("      {}\n", ""), True,
        {f"media-infra:{k}": v for k, v in SECRET_KEYS.items()}),
    "valid, namespaced keys of another project name, plaintext keys (a warning)": Case(
        "camera-fleet", stack(namespace="camera-fleet:"), True),
    "the issue's reproducer: agora-snapshots keys in project media-infra": Case(
        "media-infra", stack(namespace="agora-snapshots:", interval="1").replace(
            'uid: "900001"', "uid: recorder").replace("storage: main", "storage: missing"),
        False),
    "a typo in the project's namespace": Case(
        "media-infra", stack(namespace="media-infar:"), False),
    "provision: yes (a string in YAML 1.2)": Case(
        "agora-snapshots", stack(storage_extra="      provision: yes\n"), False),
    "cname: on (the string 'on' in YAML 1.2, a valid channel)": Case(
        "agora-snapshots", stack(cname="on"), True),
    "a prefix segment 1:30 (text, not 90)": Case(
        "agora-snapshots", stack(prefix="1:30"), False),
    "cname 12345 as pulumi config set --path writes it": Case(
        "camera-fleet", stack(cname="12345"), False),
    "captureInterval 010 (octal 8)": Case("media-infra", stack(interval="010"), True),
    "captureInterval 0x3 (3, below the minimum)": Case(
        "media-infra", stack(interval="0x3"), False),
    "cname 2024-01-01 (Go's time text, a valid channel)": Case(
        "media-infra", stack(cname="2024-01-01"), True),
    "agora:appid mis-cased and no App ID": Case(
        "media-infra", stack(app_id=f"agora:appid: {APP_ID}"), False),
    "an unknown agora: setting": Case(
        "media-infra", stack(extra="  agora:pollIntervall: 1\n"), False),
    "an expired stsExpiration": Case(
        "media-infra", stack(storage_extra="      stsToken: sts\n      stsExpiration: 1577836800\n"),
        False),
    "the old example's placeholder that Pulumi cannot decrypt": Case(
        "media-infra", stack(extra="  agora:customerId:\n    secure: "
                                   "v1:PLACEHOLDER:set-with-pulumi-config-set--secret\n"), False),
    "nothing under the project (nothing to deploy)": Case(
        "media-infra", f"  agora:appId: {APP_ID}\n", True),
}


def write_stack(offline: OfflinePulumi, case: Case) -> tuple[Path, auto.Stack]:
    """The case's project (its own ``Pulumi.yaml``, this repository's program) and stack file,
    with the stack's encryption salt kept and the secrets set as a user sets them."""
    project_dir = offline.project(REPO, case.project)
    (project_dir / "Pulumi.yaml").write_text(f"name: {case.project}\nruntime: python\n")
    selected = offline.stack(project_dir, "dev")
    path = project_dir / "Pulumi.dev.yaml"
    salt = [line for line in path.read_text().splitlines() if line.startswith("encryptionsalt:")]
    path.write_text("config:\n" + case.config + "\n".join(salt) + "\n")
    for key, value in case.secrets.items():
        offline.run("config", "set", "--path", "--secret", key, "--stack", "dev",
                    cwd=project_dir, stdin=value)
    return path, selected


@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_and_pulumi_preview_give_the_same_verdict(
    name: str, offline: OfflinePulumi
) -> None:
    case = CASES[name]
    path, selected = write_stack(offline, case)

    checked = load_file(path)
    out: list[str] = []
    try:
        selected.preview(color="never", on_output=out.append)
        previewed = True
    except auto.errors.CommandError as error:
        out.append(str(error))
        previewed = False

    shown = "\n".join(str(p) for p in [*checked.problems, *checked.warnings])
    terminal = "\n".join(out)
    assert (not checked.problems, previewed) == (case.valid, case.valid), (
        f"validate:\n{shown}\n\npreview:\n{terminal[-3000:]}")
    # Where the program refuses the file, it names the rules validate named.
    for rule in {p.rule_id for p in checked.problems if p.rule_id is not None}:
        assert f"(rule {rule};" in terminal, (rule, terminal[-3000:])
