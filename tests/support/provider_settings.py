"""The provider's settings for tests against the emulator on its fast clock."""

from __future__ import annotations

from typing import Final

from snapshot_resources.testing.emulator import EmulatorHandle

TIME_SCALE: Final = 50.0
"""Emulated seconds per real second: a 5 s capture interval takes 0.1 s."""


def provider_config(emulator: EmulatorHandle, **extra: str) -> dict[str, str]:
    """Stack config as the engine would send it to Configure, pointed at the emulator."""
    return {
        "agora:customerId": emulator.customer_id,
        "agora:customerSecret": emulator.customer_secret,
        "agora:endpoint": emulator.url,
        # Poll fast: the emulator runs 50x faster than Agora.
        "agora:pollInterval": "0.02",
        "agora:startTimeout": "5",
        "agora:failoverGrace": "3",
        "agora:retryDelayScale": "0.01",
        **extra,
    }
