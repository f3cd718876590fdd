"""The Python API under the real engine (issue 25): resource options named in Python, snake_case
outputs over camelCase state, and ``tokenExpiresAt`` absent without a token.

A program of a user's own (written here, not this repository's ``__main__.py``) declares one
session with ``ResourceOptions(ignore_changes=["snapshot_config"],
replace_on_changes=["recording_config.subscribe_video_uids"])``.  Before the translation,
``ignore_changes`` with the argument's own name was silently ignored and an interval change
replaced the session (a gap in the snapshots).
"""

from __future__ import annotations

import textwrap
from typing import Any

from pulumi import automation as auto
from support.engine_stack import BUCKET, CUSTOMER_ID, CUSTOMER_SECRET, SESSION_TYPE

from snapshot_resources.storage.policies import aws_upload_policy
from snapshot_resources.testing.emulator import EmulatorHandle, S3Server
from snapshot_resources.testing.offline import OfflinePulumi

PROGRAM = textwrap.dedent("""\
    import pulumi
    from snapshot_resources import SnapshotSession, SnapshotSessionArgs

    config = pulumi.Config()
    storage = {"vendor": 1, "region": 0, "bucket": config.require("bucket"),
               "accessKey": config.require_secret("accessKey"),
               "secretKey": config.require_secret("secretKey"),
               "fileNamePrefix": ["snapshots"]}
    session = SnapshotSession(
        "lobby",
        SnapshotSessionArgs(
            cname="lobby", uid="900001", storage=storage,
            recording_config={"channelType": 1,
                              "subscribeVideoUids": config.require_object("uids")},
            snapshot_config={"captureInterval": config.require_int("interval")}),
        pulumi.ResourceOptions(ignore_changes=["snapshot_config"],
                               replace_on_changes=["recording_config.subscribe_video_uids"]))
    pulumi.export("resource_id", session.resource_id)
    pulumi.export("storage_location", session.storage_location)
    pulumi.export("token_expires_at_is_none", session.token_expires_at.apply(lambda v: v is None))
""")


def _steps(stack: auto.Stack, **config: str) -> list[tuple[str, str]]:
    for key, value in config.items():
        stack.set_config(key, auto.ConfigValue(value))
    steps: list[tuple[str, str]] = []

    def on_event(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            steps.append((str(meta.op.value), meta.urn.rsplit("::", 1)[1]))

    stack.preview(color="never", on_event=on_event)
    return [step for step in steps if step[1] == "lobby"]


def test_python_names_in_resource_options_and_snake_case_outputs(
    offline: OfflinePulumi, agora: EmulatorHandle, s3: S3Server
) -> None:
    key = s3.create_user("api-uploader", aws_upload_policy(BUCKET, "snapshots/"))
    project_dir = offline.projects_dir / "media-infra"
    project_dir.mkdir()
    (project_dir / "Pulumi.yaml").write_text("name: media-infra\nruntime: python\n")
    (project_dir / "__main__.py").write_text(PROGRAM)
    stack = offline.stack(project_dir, "dev")
    offline.write_config(stack, {
        "agora:appId": agora.app_id, "agora:endpoint": agora.url, "agora:pollInterval": "0.1",
        "agora:startTimeout": "15", "agora:retryDelayScale": "0.05",
        "media-infra:bucket": BUCKET, "media-infra:interval": 10,
        "media-infra:uids": ["1001"],
    }, {"agora:customerId": CUSTOMER_ID, "agora:customerSecret": CUSTOMER_SECRET,
        "media-infra:accessKey": key.access_key_id, "media-infra:secretKey": key.secret_access_key})
    agora.admin.join("lobby", "1001", video=True)
    try:
        result = stack.up(color="never")
        state: dict[str, Any] = next(
            r for r in offline.resources(stack, SESSION_TYPE))["outputs"]
        # Snake_case attributes read the camelCase state.
        assert result.outputs["resource_id"].value == state["resourceId"]
        assert result.outputs["storage_location"].value == {
            "vendor": 1, "bucket": BUCKET, "prefix": "snapshots"}
        # No App Certificate, no token: no tokenExpiresAt in the state, None in the program.
        assert "tokenExpiresAt" not in state
        assert result.outputs["token_expires_at_is_none"].value is True

        # The offline environment lets previews of a refresh and a destroy run (it does not set
        # PULUMI_SKIP_CONFIRMATIONS, which the CLI takes as --yes: "--yes and --preview-only
        # cannot be used together").
        stack.preview_refresh(color="never")
        stack.preview_destroy(color="never")
        assert offline.resources(stack, SESSION_TYPE)  # previews: nothing was destroyed

        # ignore_changes=["snapshot_config"]: an interval change is no change at all.
        assert _steps(stack, **{"media-infra:interval": "20"}) == [("same", "lobby")]
        # replace_on_changes=["recording_config.subscribe_video_uids"]: a list edit, an update
        # in place otherwise, replaces the session.
        ops = [op for op, _name in _steps(stack, **{"media-infra:uids": '["1002"]'})]
        assert ops == ["delete-replaced", "replace", "create-replacement"]
    finally:
        stack.destroy(color="never")
