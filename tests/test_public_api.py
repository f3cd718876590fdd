"""The package's public surface: every name in ``__all__`` resolves, and importing the package
stays light (no vendor SDK, no emulator, no gRPC host)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import snapshot_resources


@pytest.mark.parametrize("name", snapshot_resources.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(snapshot_resources, name) is not None


def test_all_lists_exactly_the_exports() -> None:
    assert snapshot_resources.__all__ == sorted(snapshot_resources._EXPORTS)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = snapshot_resources.Nope


def test_importing_the_package_and_a_session_loads_no_vendor_sdk() -> None:
    code = (
        "import sys, snapshot_resources as s; s.SnapshotSession; s.parse_stack; s.provision_storage;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi_aws','pulumi_alicloud','pulumi_gcp','pulumi_azure_native','PIL','boto3','moto')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_testing_kit_names_resolve() -> None:
    import snapshot_resources.testing as kit

    for name in kit.__all__:
        assert getattr(kit, name) is not None
