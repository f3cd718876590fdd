"""The storage target a session uploads to: exactly Agora's ``storageConfig`` object.

Storage components (``snapshot_resources.storage``) produce it; sessions consume it. Keeping it the
wire shape (camelCase keys, numeric vendor and region codes) means nothing translates it twice.
``accessKey``, ``secretKey`` and ``stsToken`` are secrets wherever they travel as Pulumi values.

``build_target`` is the one builder of a target (a stack file's storage entry and the storage
components both use it); ``joined_prefix`` and ``with_session_prefix`` are the one join of a
storage prefix with a session's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NotRequired, TypedDict, cast

from snapshot_resources import rules


class ExtensionParams(TypedDict, total=False):
    """``storageConfig.extensionParams``: per-vendor extras, each key optional (S3, S17).

    ``sse`` (str): server-side encryption, ``"kms"`` or ``"aes256"``, Amazon S3 (vendor 1) only
    (rule extension_sse).  ``tag`` (str): an object tag, vendors 1 and 2 only (rule
    extension_tag).  ``endpoint`` (str): the host name of an S3-compatible store, without scheme,
    optionally ``:port``; required for vendor 11 and only for it (rule extension_endpoint; S9,
    S14).
    """

    sse: str  # "kms" | "aes256", vendor 1 only (rules.EXTENSION_SSE)
    tag: str  # vendors 1 and 2 only (rules.EXTENSION_TAG)
    endpoint: str  # vendor 11: host of the S3-compatible store (rules.EXTENSION_ENDPOINT)


class StorageTarget(TypedDict):
    """Agora's ``storageConfig`` (S3), as a session's ``storage`` input takes it.

    Required keys: ``vendor`` (int): Agora's vendor code, e.g. 1 Amazon S3, 2 Alibaba, 5 Azure,
    6 Google, 11 S3-compatible (rule storage_vendor; ``rules.VENDORS``, S9).  ``region`` (int):
    Agora's region code in that vendor's table, 0 for Azure, Google and S3-compatible (rule
    storage_region; S9).  ``bucket`` (str): the bucket (the container for Azure), by the vendor's
    naming rules (rule bucket_name).  ``accessKey`` and ``secretKey`` (str): the key that uploads
    (for Azure the storage account name and key); secrets.
    Optional keys: ``fileNamePrefix`` (list of str): path segments of letters and digits, at most
    128 characters joined with ``/`` (rule file_name_prefix; S3).  ``extensionParams``
    (``ExtensionParams``).  ``stsToken`` (str, secret) and ``stsExpiration`` (int, Unix seconds):
    temporary credentials, together, vendors 1, 2 and 3 only (rule sts_fields; S5, S14).

    Checked by ``spec.storage_target_problems`` and by the provider in ``pulumi preview``.
    """

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
account name paired with the account key (docs/storage.md 2.4).
"""


def build_target(values: Mapping[str, object]) -> StorageTarget:
    """The one builder of a ``StorageTarget``: Agora's ``storageConfig`` keys of ``values``, in
    the order of ``rules.STORAGE``.

    ``values``: the keys of a StorageTarget by name (``vendor`` and ``region`` as Agora's codes).
    An optional key that is None or empty is left out rather than sent empty (Agora's reference
    marks them optional, S3); this tool's own keys (``provision``, ``retentionDays``) never
    appear.  Returns the target; checks nothing (``spec.storage_target_problems`` does).
    """
    target = {
        item.name: values[item.name]
        for item in rules.STORAGE.fields
        if item.input and (item.required or item.sent or values.get(item.name) not in (None, [], {}))
    }
    return cast(StorageTarget, target)


def joined_prefix(*parts: Sequence[str] | None) -> list[str]:
    """The prefix segments of ``parts`` in order, each part a ``fileNamePrefix`` or None: the
    storage target's first, then a session's own, so that an upload key scoped to the storage
    prefix covers every session under it (S3: the prefix is a path)."""
    return [segment for part in parts for segment in (part or ())]


def with_session_prefix(target: StorageTarget, session_prefix: Sequence[str]) -> StorageTarget:
    """``target`` with the session's prefix segments appended to its own (``joined_prefix``);
    ``target`` itself when the session has none."""
    if not session_prefix:
        return target
    combined: StorageTarget = {**target}
    combined["fileNamePrefix"] = joined_prefix(target.get("fileNamePrefix"), session_prefix)
    return combined
