"""The SnapshotSession resource as a program registers it (issue 4, item 1): its type, its inputs
and declared outputs, its secret outputs and delete-before-replace, and a provider that pickles."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from support.sessions import APP_ID, CAPTURE_INTERVAL

from snapshot_resources.session import SnapshotSession, SnapshotSessionArgs
from snapshot_resources.target import StorageTarget
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

STORAGE: StorageTarget = {"vendor": 2, "region": 3, "bucket": "snaps", "accessKey": "ak",
                          "secretKey": "sk"}


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


def session(**overrides: Any) -> SnapshotSession:
    args = SnapshotSessionArgs(cname="lobby", uid="527841", storage=STORAGE, app_id=APP_ID,
                               snapshot_config={"captureInterval": CAPTURE_INTERVAL}, **overrides)
    return SnapshotSession("lobby", args)


def test_type_inputs_and_declared_outputs(mocks: PulumiMocks) -> None:
    mocks.run(lambda: session(token="tok").sid)
    recorded = mocks.one("pulumi-python:dynamic/agora:SnapshotSession")
    assert recorded.inputs["cname"] == "lobby"
    assert recorded.inputs["appId"] == APP_ID
    assert recorded.inputs["snapshotConfig"] == {"captureInterval": CAPTURE_INTERVAL}
    assert "token" in recorded.secret_paths  # a given token always travels as a secret
    # The provider was pickled by Resource.__init__ (by reference): it reached the engine.
    assert recorded.custom


def test_secret_outputs_and_delete_before_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[pulumi.ResourceOptions] = []
    original = pulumi.CustomResource.__init__

    def spy(self: Any, t: str, name: str, props: Any, opts: Any = None, *a: Any, **k: Any) -> None:
        seen.append(opts)
        original(self, t, name, props, opts, *a, **k)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", spy)
    session(token="tok")
    opts = seen[0]
    assert opts.additional_secret_outputs is not None
    assert {"storage", "token"} <= set(opts.additional_secret_outputs)
    # Same channel and recorder uid: the old task must stop first (Agora code 53, S7).
    assert opts.delete_before_replace is True


def test_app_id_comes_from_config_or_fails_clearly() -> None:
    args = SnapshotSessionArgs(cname="lobby", uid="527841", storage=STORAGE)
    with pytest.raises(ValueError, match="agora:appId"):
        SnapshotSession("lobby", args)
    pulumi.runtime.set_config("agora:appId", APP_ID)
    try:
        assert SnapshotSession("lobby2", args) is not None
    finally:
        pulumi.runtime.set_all_config({})
