"""RTC tokens (issue 4, item 3): a given token is used as is; otherwise, with agora:appCertificate
configured, the provider builds an AccessToken2 for the recorder uid at create time, valid as long
as Agora allows (24 h), and reports its expiry as ``tokenExpiresAt``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from support.provider_settings import provider_config
from support.sessions import session_inputs

from snapshot_resources.agora import token as rtc_token
from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.emulator import EmulatorHandle
from snapshot_resources.testing.provider_host import ProviderHost, secret

CERTIFICATE = "5cfd2fd1755d40ecb72977518be15d3b"  # an AccessToken2-shaped certificate


def sent_token(emulator: EmulatorHandle, sid: str) -> Any:
    """The token the start request carried, read from the emulator's backend (moto-style)."""
    task = emulator.backend._tasks[sid]
    return task.request.client_request.get("token")


@pytest.fixture
def cert_host(emulator: EmulatorHandle) -> Iterator[ProviderHost]:
    with ProviderHost() as host:
        host.configure(
            provider_config(emulator, **{"agora:appCertificate": CERTIFICATE}),
            secret_keys=("agora:customerSecret", "agora:appCertificate"),
        )
        yield host


def test_with_the_app_certificate_the_provider_builds_the_recorder_token(
    emulator: EmulatorHandle, cert_host: ProviderHost
) -> None:
    session = cert_host.resource(SnapshotSessionProvider(), name="tok")
    session.check(session_inputs(emulator.app_id))
    before = int(time.time())
    created = session.create()

    token = sent_token(emulator, created.id)
    assert isinstance(token, str)
    assert rtc_token.verify_token(token, CERTIFICATE)
    parsed = rtc_token.parse_token(token)
    assert parsed.app_id == emulator.app_id
    assert parsed.rtc is not None
    assert (parsed.rtc.channel_name, parsed.rtc.uid) == ("lobby", "527841")
    expires = datetime.fromisoformat(created.outs["tokenExpiresAt"]).timestamp()
    assert before + rtc_token.MAX_TOKEN_LIFETIME_SECONDS <= expires + 1
    assert expires <= time.time() + rtc_token.MAX_TOKEN_LIFETIME_SECONDS + 1
    # The built token is not an output: nothing to keep secret in state.
    assert "token" not in created.outs or created.outs["token"] is None
    assert CERTIFICATE not in cert_host.stderr_text() + cert_host.stdout_text()


def test_a_given_token_is_used_as_is_and_kept_secret(
    emulator: EmulatorHandle, cert_host: ProviderHost
) -> None:
    given = rtc_token.build_rtc_token(
        app_id=emulator.app_id, app_certificate=CERTIFICATE, channel_name="lobby",
        uid=527841, token_expire=7200,
    )
    session = cert_host.resource(SnapshotSessionProvider(), name="given")
    # SnapshotSessionArgs always sends the token as a secret; so does the engine here.
    session.check(session_inputs(emulator.app_id, token=secret(given)))
    created = session.create()

    assert sent_token(emulator, created.id) == given
    assert ("token",) in created.secret_paths
    expected = rtc_token.token_expires_at(given)
    assert expected is not None
    assert datetime.fromisoformat(created.outs["tokenExpiresAt"]).timestamp() == expected


def test_without_certificate_or_token_no_token_is_sent(
    emulator: EmulatorHandle, session: Any
) -> None:
    session.check(session_inputs(emulator.app_id))
    created = session.create()
    assert sent_token(emulator, created.id) is None
    assert created.outs.get("tokenExpiresAt") is None
