"""The storage target a session uploads to: exactly Agora's ``storageConfig`` object.

Storage components (``snapshot_resources.storage``) produce it; sessions consume it. Keeping it the
wire shape (camelCase keys, numeric vendor and region codes) means nothing translates it twice.
``accessKey``, ``secretKey`` and ``stsToken`` are secrets wherever they travel as Pulumi values.
"""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict

from snapshot_resources import rules


class ExtensionParams(TypedDict, total=False):
    sse: str  # "kms" | "aes256", vendor 1 only (rules.EXTENSION_SSE)
    tag: str  # vendors 1 and 2 only (rules.EXTENSION_TAG)
    endpoint: str  # vendor 11: host of the S3-compatible store (rules.EXTENSION_ENDPOINT)


class StorageTarget(TypedDict):
    vendor: int
    region: int
    bucket: str
    accessKey: str
    secretKey: str
    fileNamePrefix: NotRequired[list[str]]
    extensionParams: NotRequired[ExtensionParams]
    stsToken: NotRequired[str]
    stsExpiration: NotRequired[int]


SECRET_KEYS: Final = frozenset(path[1] for path in rules.SECRET_PATHS if path[0] == "storage")
"""Keys of a StorageTarget that are always Pulumi secrets and never logged.

``accessKey`` counts as a secret too: it names the credential, and for Azure it is the storage
account name paired with the account key (reference/storage.md 2.4).
"""
