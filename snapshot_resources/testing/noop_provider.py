"""A dynamic provider that does nothing: the floor for benchmarks and the smallest working example.

``NoopProvider`` follows the patterns of docs/pulumi-dynamic.md section 1 ("Recommended
patterns"): it lives in an importable, side-effect-free module and keeps no instance state, so
dill pickles it *by reference* (module path + class name, a few dozen bytes, nothing secret) and
any process that can ``import snapshot_resources`` can load it, whatever its working directory.

Timing a call to it through :class:`~snapshot_resources.testing.provider_host.ProviderHost`
measures only Pulumi's own path: protobuf serialization, gRPC, the servicer's deserialization and
provider cache lookup.  ``benchmarks/provider_ops.py`` compares the real provider against it.
"""

from __future__ import annotations

import uuid
from typing import Any

from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

__all__ = ["NoopProvider"]


class NoopProvider(ResourceProvider):
    """Accepts any inputs, reports no changes, and echoes inputs as outputs.

    Outputs echo every input because the engine hands ``diff``, ``update`` and ``delete`` the old
    *outputs*, not the inputs (docs/pulumi-dynamic.md section 3, Diff and Update).
    """

    # A stateless by-reference pickle captures nothing, so encrypting it in state buys nothing
    # (docs/pulumi-dynamic.md section 1, recommended pattern 5).  A class attribute is not
    # part of the pickle, which holds only the (empty) instance __dict__.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        # The engine rejects an empty id from Create (docs/pulumi-dynamic.md section 3, Read: a blank id means
        # "gone"), so even a provider that does nothing must invent one.
        return CreateResult(f"noop-{uuid.uuid4().hex}", dict(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, dict(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Returning the full outputs matters: the default UpdateResult() wipes them
        # (docs/pulumi-dynamic.md section 3, Update / Delete).
        return UpdateResult(dict(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
