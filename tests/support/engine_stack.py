"""The real Pulumi engine on this repository's own ``Pulumi.yaml`` and ``__main__.py``: the example
stack the engine tests deploy, and what they read back (``tests/engine/conftest.py`` holds the
fixtures that start the servers and the CLI).

The example's stack file is made from ``Pulumi.example.yaml``; secrets are set as a user sets them
(``pulumi config set --path --secret``), with distinctive values that the secrets test searches for.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pulumi import automation as auto

from snapshot_resources.agora import token as rtc_token
from snapshot_resources.spec import PROJECT as PROJECT  # re-exported for the engine tests
from snapshot_resources.storage.policies import aws_upload_policy
from snapshot_resources.testing.emulator import EmulatorHandle, S3Server
from snapshot_resources.testing.offline import OfflinePulumi
from support.sessions import SESSION_TYPE as SESSION_TYPE  # re-exported for the engine tests

REPO: Final = Path(__file__).resolve().parents[2]
"""This repository: the project the engine tests deploy."""
# Emulated seconds per real second: a 5 s capture interval takes 0.25 s.
TIME_SCALE: Final = 20.0
BUCKET: Final = "engine-snapshots"

# Distinctive values: the secrets test searches the whole backend for each of them as text.
CUSTOMER_ID: Final = "engine-customer-id-5d02b7"
CUSTOMER_SECRET: Final = "engine-customer-secret-9f27c1e4"
APP_CERTIFICATE: Final = "c0ffee00d15ea5e5ba5eba11deadbeef"
DECRYPTION_SECRET: Final = "engine-decryption-secret-51aa"
DECRYPTION_SALT: Final = base64.b64encode(b"engine-decryption-salt-0123456789"[:32]).decode()
RECORDER_TOKEN_LIFETIME: Final = 24 * 3600
NCS_SECRET: Final = "engine-ncs-secret-7c1d"  # signs the emulator's notifications

# Users who publish video in the example's channels.
STAGE_USERS: Final = ("1001", "1002")
LOBBY_USER: Final = "2001"


@dataclass
class Run:
    """One CLI run as the user sees it: what it printed, and whether it succeeded."""

    ok: bool
    stdout: str
    stderr: str
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)
    """(op, resource name) of each step the engine started, in order (engine events)."""

    @property
    def terminal(self) -> str:
        return self.stdout + self.stderr


def recorder_token(app_id: str, cname: str, uid: str) -> str:
    """An AccessToken2 for the recorder, as a user would paste one into the stack file."""
    return rtc_token.build_rtc_token(
        app_id=app_id, app_certificate=APP_CERTIFICATE, channel_name=cname, uid=int(uid),
        token_expire=RECORDER_TOKEN_LIFETIME,
    )


class ExampleStack:
    """A stack of this repository's project whose stack file is made from ``Pulumi.example.yaml``.

    The example's ``main`` storage becomes a bring-your-own bucket on moto (upload-only key), and
    its two sessions (``lobby``, ``stage``) run against the emulator. ``sessions`` may be edited
    before :meth:`apply`.
    """

    def __init__(
        self, offline: OfflinePulumi, agora: EmulatorHandle, s3: S3Server, name: str = "test"
    ) -> None:
        self.offline = offline
        self.agora = agora
        self.s3 = s3
        self.upload_key = s3.create_user("agora-uploader", aws_upload_policy(BUCKET, "snapshots/"))
        self.project_dir = offline.project(REPO)
        self.stack = offline.stack(self.project_dir, name)
        example = yaml.safe_load((REPO / "Pulumi.example.yaml").read_text())["config"]
        self.example: Final = example
        # The example writes storage and sessions without a namespace: the project's own keys.
        self.storage: dict[str, Any] = copy.deepcopy(example["storage"])
        self.sessions: dict[str, Any] = copy.deepcopy(example["sessions"])
        main = self.storage["main"]
        for key in ("provision", "retentionDays"):  # the aws plugin cannot be had offline
            main.pop(key, None)
        main["bucket"] = BUCKET
        self.provider_settings: dict[str, str] = {
            "agora:pollInterval": "0.1",
            "agora:startTimeout": "15",
            "agora:failoverGrace": "3",
            "agora:retryDelayScale": "0.05",
            "agora:exitTimeout": "5",
        }
        self.secrets: dict[str, str] = {
            "agora:customerId": CUSTOMER_ID,
            "agora:customerSecret": CUSTOMER_SECRET,
            f"{PROJECT}:storage.main.accessKey": self.upload_key.access_key_id,
            f"{PROJECT}:storage.main.secretKey": self.upload_key.secret_access_key,
        }

    # -- the stack file -----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "agora:appId": self.agora.app_id,
            "agora:endpoint": self.agora.url,
            **self.provider_settings,
            f"{PROJECT}:storage": self.storage,
            f"{PROJECT}:sessions": self.sessions,
        }

    def provider_config(self) -> dict[str, str]:
        """The ``agora:*`` settings of the stack file, secrets decrypted: what the engine hands
        the provider's Configure."""
        settings = {k: v for k, v in self.config().items() if k.startswith("agora:")}
        settings.update({k: v for k, v in self.secrets.items() if k.startswith("agora:")})
        return settings

    def stack_values(self) -> dict[str, Any]:
        """``storage`` and ``sessions`` as the program reads them (secret leaves decrypted), the
        input ``snapshot-resources validate`` sees in the same stack file."""
        values = {"storage": copy.deepcopy(self.storage), "sessions": copy.deepcopy(self.sessions)}
        for key, value in self.secrets.items():
            namespace, dotted = key.split(":", 1)
            if namespace != PROJECT:
                continue
            *parents, leaf = dotted.split(".")
            node: dict[str, Any] = values
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return values

    def apply(self) -> Path:
        """Write the stack file (plain config, then each secret with ``--path --secret``)."""
        return self.offline.write_config(self.stack, self.config(), self.secrets)

    def with_every_secret(self, *, token_for: str = "stage", decrypting: str = "lobby") -> None:  # noqa: S107
        """Add the secrets a stack can hold beyond keys and credentials: a given recorder token
        (session ``token_for``) and a decryption secret and salt (``decrypting``, mode 7)."""
        given = self.sessions[token_for]
        self.secrets[f"{PROJECT}:sessions.{token_for}.token"] = recorder_token(
            self.agora.app_id, given["cname"], given["uid"]
        )
        self.sessions[decrypting]["recordingConfig"]["decryptionMode"] = 7
        self.secrets[f"{PROJECT}:sessions.{decrypting}.recordingConfig.secret"] = DECRYPTION_SECRET
        self.secrets[f"{PROJECT}:sessions.{decrypting}.recordingConfig.salt"] = DECRYPTION_SALT

    def publish(self) -> None:
        """The example's channels get users publishing video."""
        if "stage" in self.sessions:
            for uid in STAGE_USERS:
                self.agora.admin.join(self.sessions["stage"]["cname"], uid, video=True)
        if "lobby" in self.sessions:
            self.agora.admin.join(self.sessions["lobby"]["cname"], LOBBY_USER, video=True)

    # -- the CLI ------------------------------------------------------------------------------

    def _run(self, operation: str, **kwargs: Any) -> Run:
        out: list[str] = []
        err: list[str] = []
        steps: list[tuple[str, str]] = []

        def on_event(event: auto.EngineEvent) -> None:
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                steps.append((str(meta.op.value), meta.urn.rsplit("::", 1)[1]))

        method = getattr(self.stack, operation)
        try:
            result = method(
                color="never", on_output=out.append, on_error=err.append, on_event=on_event,
                **kwargs,
            )
        except auto.errors.CommandError:
            return Run(False, "\n".join(out), "\n".join(err), steps=steps)
        outputs = getattr(result, "outputs", None) or {}
        values = {k: v.value for k, v in outputs.items()}
        return Run(True, "\n".join(out), "\n".join(err), values, steps)

    def preview(self, **kwargs: Any) -> Run:
        return self._run("preview", **kwargs)

    def up(self, **kwargs: Any) -> Run:
        return self._run("up", **kwargs)

    def refresh(self, **kwargs: Any) -> Run:
        return self._run("refresh", **kwargs)

    def destroy(self, **kwargs: Any) -> Run:
        return self._run("destroy", **kwargs)

    # -- what the state says ------------------------------------------------------------------

    def sessions_in_state(self) -> dict[str, dict[str, Any]]:
        """Resource name -> outputs of every SnapshotSession in the state."""
        found = self.offline.resources(self.stack, SESSION_TYPE)
        return {r["urn"].rsplit("::", 1)[1]: r.get("outputs", {}) for r in found}

    def sids_in_state(self) -> dict[str, str]:
        return {name: outs["sid"] for name, outs in self.sessions_in_state().items()}


def running_tasks(agora: EmulatorHandle) -> list[Mapping[str, Any]]:
    """Tasks the emulator still runs and bills (not stopped, exiting or gone)."""
    return [t for t in agora.admin.tasks() if t.get("state") in ("running", "failover")]
