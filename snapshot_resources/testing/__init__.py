"""Test kit for this project and for users' own programs.

* ``ProviderHost`` hosts a dynamic provider exactly as the Pulumi engine does
  (``python -m pulumi.dynamic`` driven over gRPC) and ``HostedResource`` keeps a resource's state
  between the engine's steps;
* ``run_emulator`` runs the local Agora emulator (pytest fixture ``agora_emulator``), and
  ``run_s3_server`` a moto S3+IAM server (fixture ``s3_server``);
* ``run_redis`` runs a real ``redis-server`` on a free loopback port (fixture ``redis_server``),
  for programs that use the shared store (``agora:sharedStore``);
* ``PulumiMocks`` records what a program registers under ``pulumi.runtime.set_mocks``.

The fixtures are registered by the pytest plugin ``snapshot_resources.testing.plugin``.  Names here
load on first use, so the plugin costs nothing until a test asks for something.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ProviderHost": "snapshot_resources.testing.provider_host",
    "HostedResource": "snapshot_resources.testing.provider_host",
    "ProviderError": "snapshot_resources.testing.provider_host",
    "provider_property": "snapshot_resources.testing.provider_host",
    "run_emulator": "snapshot_resources.testing.emulator",
    "EmulatorHandle": "snapshot_resources.testing.emulator",
    "EmulatorAdmin": "snapshot_resources.testing.emulator",
    "run_s3_server": "snapshot_resources.testing.emulator",
    "PulumiMocks": "snapshot_resources.testing.pulumi_mocks",
    "run_redis": "snapshot_resources.testing.redis",
    "RedisServer": "snapshot_resources.testing.redis",
    "NoopProvider": "snapshot_resources.testing.noop_provider",
}

__all__ = sorted(_EXPORTS)  # the table above is the one list of public names

if TYPE_CHECKING:  # for type checkers: the table above as imports (a test compares them)
    from snapshot_resources.testing.emulator import EmulatorAdmin as EmulatorAdmin
    from snapshot_resources.testing.emulator import EmulatorHandle as EmulatorHandle
    from snapshot_resources.testing.emulator import run_emulator as run_emulator
    from snapshot_resources.testing.emulator import run_s3_server as run_s3_server
    from snapshot_resources.testing.noop_provider import NoopProvider as NoopProvider
    from snapshot_resources.testing.provider_host import HostedResource as HostedResource
    from snapshot_resources.testing.provider_host import ProviderError as ProviderError
    from snapshot_resources.testing.provider_host import ProviderHost as ProviderHost
    from snapshot_resources.testing.provider_host import provider_property as provider_property
    from snapshot_resources.testing.pulumi_mocks import PulumiMocks as PulumiMocks
    from snapshot_resources.testing.redis import RedisServer as RedisServer
    from snapshot_resources.testing.redis import run_redis as run_redis


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'snapshot_resources.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
