"""No secret reaches the state: `pulumi stack export` and every file under the backend are searched
as text for each distinctive secret value the stack holds."""

from __future__ import annotations

import re
from typing import Any

from support.engine_stack import (
    APP_CERTIFICATE,
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    DECRYPTION_SALT,
    DECRYPTION_SECRET,
    PROJECT,
    ExampleStack,
)

from snapshot_resources import rules
from snapshot_resources.testing.offline import OfflinePulumi


def _secret_values(example: ExampleStack) -> dict[str, str]:
    """Each secret the stack holds, by name: the provider's credentials, and one value for every
    declared secret path of a session (rules.SECRET_PATHS; stsToken is not used by vendor 1)."""
    by_path = {
        ("storage", "accessKey"): example.upload_key.access_key_id,
        ("storage", "secretKey"): example.upload_key.secret_access_key,
        ("token",): example.secrets[f"{PROJECT}:sessions.stage.token"],
        ("recordingConfig", "secret"): DECRYPTION_SECRET,
        ("recordingConfig", "salt"): DECRYPTION_SALT,
    }
    # A secret path declared later must get a value here, or this test fails.
    assert set(by_path) | {("storage", "stsToken")} == set(rules.SECRET_PATHS)
    return {
        "customer id": CUSTOMER_ID,
        "customer secret": CUSTOMER_SECRET,
        "app certificate": APP_CERTIFICATE,
        **{".".join(path): value for path, value in by_path.items()},
    }


def _leaks(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value in text]


def test_no_secret_in_the_state_the_backend_or_the_terminal(
    example: ExampleStack, offline: OfflinePulumi
) -> None:
    example.with_every_secret()
    # With the App Certificate set, the provider builds the lobby recorder's token itself.
    example.secrets["agora:appCertificate"] = APP_CERTIFICATE
    example.publish()
    example.apply()
    values = _secret_values(example)

    runs = [example.preview(diff=True), example.up()]
    example.sessions["stage"]["recordingConfig"]["subscribeVideoUids"] = ["1001"]
    example.apply()
    runs += [example.preview(diff=True), example.up(), example.refresh()]

    assert all(run.ok for run in runs), [run.terminal for run in runs if not run.ok]
    assert _leaks(offline.state_text(example.stack), values) == []
    # Nor in the stack file (ciphertext only) or anything the CLI wrote under PULUMI_HOME.
    written = [p for p in (*offline.home.rglob("*"), *example.project_dir.rglob("*"))
               if p.is_file()]
    assert any(p.name == "Pulumi.test.yaml" for p in written)
    for path in written:
        assert _leaks(path.read_text(errors="replace"), values) == [], path
    for run in runs:
        assert _leaks(run.terminal, values) == [], run.terminal
    # The secrets are in the state, encrypted: each secret input is marked secret there.
    sessions = {r["urn"].rsplit("::", 1)[1]: r for r in offline.resources(example.stack)
                if r["urn"].endswith(("::lobby", "::stage")) and r.get("custom")}
    for resource in sessions.values():
        for bag in ("inputs", "outputs"):
            assert _is_secret(resource[bag]["storage"])
    assert _is_secret(sessions["stage"]["inputs"]["token"])
    assert _is_secret(sessions["stage"]["outputs"]["token"])
    for bag in ("inputs", "outputs"):
        # Only the decryption secret and salt: the rest of recordingConfig stays reviewable.
        recording = sessions["lobby"][bag]["recordingConfig"]
        assert not _is_secret(recording)
        assert _is_secret(recording["secret"])
        assert _is_secret(recording["salt"])
        assert recording["subscribeVideoUids"] == ["#allstream#"]
    # A reviewer still sees the subscription-list edit itself.
    assert re.search(r'-\s+\[1\]: "1002"', runs[2].stdout), runs[2].stdout

    assert example.destroy().ok
    assert _leaks(offline.state_text(example.stack), values) == []


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == (
        "1b47061264138c4ac30d75fd1eb44270"
    )
