"""Agora's documented rules for video snapshot sessions, as data.

This module is the single source of truth: the checker and models in ``spec.py``, the JSON Schemas
in ``snapshot_resources/schemas/``, the request builders in ``agora/wire.py``, the change rule in ``changes.py`` and
the storage components all read their fields, bounds, enums, charsets and region tables from here.
When Agora changes a bound, one line changes here (the lesson of Terraform's hard-coded IVS
interval, docs/peers.md section 2.2); a rule's ``text`` states its bounds through placeholders
filled from its own data, so no message restates a bound by hand.

Every rule names its sources (``SOURCES`` tags, as in docs/agora-api.md) and, where the sources
disagree, the decision taken and why (``decision``).  Vendor bucket-naming rules come from the vendors'
own documentation, cited by page.

Contents: ``Rule`` (``id``, ``path``, ``text``, ``sources``, ``decision``; ``cite()``) and its
kinds ``IntRange`` (``minimum``, ``maximum``, ``default``), ``Choice`` (``values``, ``default``,
``labels``) and ``Pattern`` (``regex``, ``max_length``; ``matches(value)``); one constant per rule
(e.g. ``CAPTURE_INTERVAL``: id ``capture_interval``, an ``IntRange``), all of them in
``ALL_RULES`` and by id in ``RULES_BY_ID``; ``SOURCES`` (tag -> ``Source``: document and date);
``VENDORS`` (Agora's vendor code -> ``Vendor``: names, region table, bucket rule, and how this
tool provisions it, ``Provisioning``: the one vendor registry) with ``vendor_by_name(name)``.

The objects Agora takes are tables of ``Field`` (botocore's shapes and members): ``SESSION`` (the
session: acquire and start), ``RECORDING`` (recordingConfig), ``SNAPSHOT`` (snapshotConfig),
``STORAGE`` (storageConfig, with this tool's ``provision`` and ``retentionDays``) and
``EXTENSION`` (extensionParams), each a ``Shape``.  A field is declared once, with its ``Kind``,
rule, default, whether it is secret, whether ``update`` changes it in place, and the key it is
sent as; the key lists (``INPUT_KEYS``, ``SUBSCRIBE_LIST_KEYS``, ``BLACKLIST_WIRE_NAMES`` ...),
the secrets (``SECRET_PATHS``, ``SECRET_WHOLE_INPUTS`` ...) and ``PROVISION_VENDORS`` derive
from the tables and the registry.  Last, the service limits the client, provider and emulator
share (``QPS_PER_APP_ID``, ``MAX_CONCURRENT_TASKS``, ``FAILOVER_SECONDS``,
``START_CONFIRM_SECONDS``, ``QUERY_STATUSES``, ``EXITED_STATUSES`` ...).  Nothing here performs
I/O or raises at import; ``spec.py`` applies the rules and reports each broken one as a ``Problem`` naming its rule id.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

# --------------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """A document a rule comes from: its tag (``S3``), a title, where to read it (``address``, a
    URL), the version read (``version``: a commit or the document's own date) and the date it was
    read (``read``). ``docs/sources.md`` is generated from this table (``make docs``); ``snapshot-
    resources validate --explain RULE`` prints a rule's sources from it."""

    tag: str
    title: str
    address: str
    version: str
    read: str


# Agora's documentation is read from its source repository, pinned to one commit; each page is
# also published at https://docs.agora.io/en/<path without extension>.
_DS_COMMIT = "8c1f0c5c51be"
_READ = "2026-11-23"


def _docs(tag: str, title: str, path: str, *, commit: str = _DS_COMMIT,
          published: bool = True) -> Source:
    address = f"https://github.com/AgoraIO/Docs-Source/blob/{commit}/{path}"
    if published:
        address = "https://docs.agora.io/en/" + path.rsplit(".", 1)[0] + f" ({address})"
    return Source(tag, title, address, f"AgoraIO/Docs-Source@{commit}", _READ)


SOURCES: Final = MappingProxyType(
    {
        s.tag: s
        for s in (
            _docs("S1", "Cloud Recording RESTful API overview", "cloud-recording/rest-api/overview.mdx"),
            _docs("S2", "REST API: acquire", "cloud-recording/rest-api/acquire.mdx"),
            _docs("S3", "REST API: start", "cloud-recording/rest-api/start.mdx"),
            _docs("S4", "REST API: query", "cloud-recording/rest-api/query.mdx"),
            _docs("S5", "REST API: update", "cloud-recording/rest-api/update.mdx"),
            _docs("S6", "REST API: stop", "cloud-recording/rest-api/stop.mdx"),
            _docs("S7", "REST API: response status codes (with the FAQ on 404)",
                  "cloud-recording/rest-api/status-codes.mdx"),
            _docs("S8", "Cloud-based screenshot upload", "cloud-recording/develop/screen-capture.md"),
            _docs("S9", "Third-party cloud storage regions (region-vendor table)",
                  "cloud-recording/reference/region-vendor.mdx"),
            _docs("S10", "Integration best practices",
                  "cloud-recording/best-practices/integration-best-practices.md"),
            _docs("S11", "Switch domain names (primary and regional domains, failover)",
                  "shared/common/_switch-domain-name.mdx", published=False),
            _docs("S12", "Notifications: Cloud Recording event types",
                  "shared/notification-center-service/event-types/cloud-recording.mdx",
                  published=False),
            _docs("S13", "Notifications: request headers, body and signature verification",
                  "shared/notification-center-service/signature-verification.mdx",
                  published=False),
            _docs("S14", "Cloud Recording RESTful API release notes (2019-2025)",
                  "shared/cloud-recording/release-notes/rest.mdx", published=False),
            _docs("S15", "Set subscription lists", "cloud-recording/develop/subscription.md"),
            _docs("S16", "Manage recorded files", "cloud-recording/develop/manage-files.md"),
            _docs("S17", "RESTful API reference (the previous all-in-one page, last update "
                  "2026-06-10)", "cloud-recording/reference/restful-api.mdx",
                  commit="b1cf5a97f~1", published=False),
            _docs("S18", "Common errors (content dated 2023-01-29, removed 2026-06-17)",
                  "cloud-recording/reference/common-errors.md", commit="29289bcb8",
                  published=False),
            _docs("S19", "REST API reference pages of 2022 (start, query, stop, acquire, update)",
                  "cloud-recording/reference/rest-api/start.md", commit="0923b0a71",
                  published=False),
            _docs("S20", "RESTful API overview of 2026-06 (callback service, NCS vs query)",
                  "cloud-recording/reference/rest-api-overview.md", commit="b1cf5a97f~1",
                  published=False),
            _docs("S21", "Pricing", "cloud-recording/overview/pricing.md"),
            _docs("S22", "RESTful authentication", "shared/common/_restful-authentication.mdx",
                  published=False),
            _docs("S23", "Get started with Cloud Recording", "cloud-recording/get-started/getstarted.md"),
            _docs("S24", "Notifications: RTC channel event types",
                  "shared/notification-center-service/event-types/rtc.mdx", published=False),
            Source("G1", "Agora's community Go REST client (services/cloudrecording/api, "
                   "agora/domain, agora/client)",
                   "https://github.com/AgoraIO-Community/agora-rest-client-go/tree/2afc9fb",
                   "2afc9fb", _READ),
            Source("GH19", "Go client issue 19: UnsubscribeAudioUIDs should be "
                   "UnSubscribeAudioUIDs (2024-08-20; the maintainers agreed and changed it)",
                   "https://github.com/AgoraIO-Community/agora-rest-client-go/issues/19",
                   "closed 2024-08-20", "2026-11-30"),
            Source("J1", "Java REST client (cloudrecording/api/req/StartResourceReq.java, "
                   "UpdateResourceReq.java)",
                   "https://github.com/seymourtang/agora-rest-client-java/tree/7f87751",
                   "7f87751", _READ),
            Source("N1", "Agora's community Node.js REST client (src/services/cloudrecording)",
                   "https://github.com/AgoraIO-Community/agora-rest-client-nodejs",
                   "2025-04-23", _READ),
            Source("P1", "Agora's community Python REST client "
                   "(agora_rest_client/services/cloud_recording/v1)",
                   "https://github.com/AgoraIO-Community/agora-rest-client-python",
                   "2024-04-15", _READ),
            Source("W1", "Cloud recording screen capture (the older live English page)",
                   "https://docs.agora.io/en/cloud-recording/cloud_recording_screen_capture",
                   "stored copy", _READ),
            Source("W2", "Cloud recording screen capture (Chinese guide)",
                   "https://docs.agora.io/cn/cloud-recording/cloud_recording_screen_capture",
                   "stored copy", _READ),
            Source("W3", "Integration best practices (beta site: 429 = QPS, 406 = PCW)",
                   "https://docs-beta.agora.io/en/cloud-recording/develop/integration-best-practices",
                   "stored copy", _READ),
            Source("VENDOR", "The storage vendors' bucket naming rules (AWS, Alibaba, Tencent, "
                   "Azure, Google, Huawei, Baidu; collected in docs/storage.md)",
                   "docs/storage.md", "2026-11", _READ),
        )
    }
)
"""Every source tag the code and the rules cite; ``docs/sources.md`` lists them."""


def either(items: Iterable[object], word: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``: how a rule's text lists its values (``word`` may be
    ``"and"``)."""
    shown = [str(item) for item in items]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} {word} {shown[-1]}"


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Rule:
    """One documented constraint.

    ``id`` is stable (tests and error messages use it); ``path`` is the user-facing dotted path in
    a session or storage entry; ``text`` is the rule as a reader should see it in an error.  A
    text states the rule's own data through placeholders (``{minimum}``, ``{maximum}``,
    ``{values}``, ``{choices}``, ``{first}``, ``{last}``, ``{max_length}``, ``{json}``; see each
    kind), filled when the rule is made: a bound is written once, where the rule keeps it.
    """

    id: str
    path: str
    text: str
    sources: tuple[str, ...]
    decision: str | None = None

    def __post_init__(self) -> None:
        data = self._placeholders()
        filled = _PLACEHOLDER.sub(lambda m: data.get(m[1], m[0]), self.text)
        object.__setattr__(self, "text", filled)

    def _placeholders(self) -> dict[str, str]:
        return {}

    def cite(self) -> str:
        """A short citation for error messages and comments, e.g. ``S3, S8``."""
        return ", ".join(self.sources)


@dataclass(frozen=True)
class IntRange(Rule):
    """An integer from ``minimum`` to ``maximum`` (text: ``{minimum}``, ``{maximum}``)."""

    minimum: int = 0
    maximum: int = 0
    default: int | None = None

    def _placeholders(self) -> dict[str, str]:
        return {"minimum": str(self.minimum), "maximum": str(self.maximum)}


@dataclass(frozen=True)
class Choice(Rule):
    """One of ``values``; ``labels`` say what each means.  Text: ``{values}`` (``CN, AP``),
    ``{choices}`` (``0 (communication) or 1 (live broadcasting)``, with ``labels``), ``{quoted}``
    (``'kms' or 'aes256'``), ``{first}`` and ``{last}`` (a range), ``{json}`` (``["jpg"]``)."""

    values: tuple[int | str, ...] = ()
    default: int | str | None = None
    labels: tuple[str, ...] = ()

    def _placeholders(self) -> dict[str, str]:
        if not self.values:
            return {}
        data = {
            "values": ", ".join(str(v) for v in self.values),
            "quoted": either(repr(v) for v in self.values),
            "first": str(self.values[0]),
            "last": str(self.values[-1]),
            "json": json.dumps(list(self.values)),
        }
        if self.labels:
            pairs = zip(self.values, self.labels, strict=True)
            data["choices"] = either(f"{value} ({label})" for value, label in pairs)
        return data


@dataclass(frozen=True)
class Pattern(Rule):
    """A string matching ``regex``, at most ``max_length`` bytes (text: ``{max_length}``)."""

    regex: str = ""
    max_length: int | None = None

    def _placeholders(self) -> dict[str, str]:
        return {} if self.max_length is None else {"max_length": str(self.max_length)}

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.regex, value) is not None and (
            self.max_length is None or len(value.encode()) <= self.max_length
        )


# --------------------------------------------------------------------------------------------------
# Fields: each object Agora takes, as a table of its keys (the tables are at the end of this module)


class Kind(enum.Enum):
    """How a field's value is read (spec.py), typed (the models) and described (schema_gen.py)."""

    INTEGER = "integer"  # an integer (5.0 counts as 5) in the rule's IntRange or Choice
    STRING = "string"  # a non-empty string; it must match the rule when that is a Pattern or Choice
    BOOLEAN = "boolean"  # true or false
    UID = "uid"  # the recorder uid: an integer or a string of digits, kept as the string
    UID_LIST = "uid_list"  # a subscription list: distinct uids, or '#allstream#' alone
    PREFIX = "prefix"  # fileNamePrefix: path segments
    CONST = "const"  # the one list value the rule allows (fileType)
    OBJECT = "object"  # a nested object with fields of its own (``Field.shape``)
    VENDOR = "vendor"  # a storage vendor: Agora's code, or in a stack file a name
    REGION = "region"  # a region of that vendor: Agora's code, or in a stack file a name
    BUCKET = "bucket"  # a bucket named by that vendor's rule
    # A session's storage: in a stack file the name of an entry under storage; as the
    # SnapshotSession input, the target itself (Agora's storageConfig, ``Field.shape``).
    STORAGE = "storage"
    FORBIDDEN = "forbidden"  # a key refused with its own rule


EMPTY: Final[Mapping[str, object]] = MappingProxyType({})
"""The default of an object that is checked even when absent (its fields have defaults)."""


@dataclass(frozen=True, eq=False)
class Field:
    """One key of an object Agora takes (or of this tool's stack file), declared once.

    From the tables of fields come the checker's walk and the models (spec.py), the JSON Schemas
    (schema_gen.py), the request bodies (agora/wire.py), the key lists, the secret paths and the
    change classification (changes.py).

    ``name``: the key.  ``kind`` (``Kind``): how its value is read.  ``rule``: the rule a bad
    value breaks, holding its bounds, choices or pattern.  ``default``: the value when the key is
    absent; the rule's own ``default`` unless given, or unless ``derived`` (worked out from other
    fields, ``subscribeUidGroup``).  ``required``: the user must give it.  ``sent``: the request
    body must carry it (Agora requires it, or a decision says so), so the start schema requires
    it; every field with a default is sent anyway.  ``secret``: a Pulumi
    secret whose value is never shown.  ``update``: Agora's update changes it in place (S5); any
    other change replaces the task.  ``input``: part of the SnapshotSession resource's inputs
    (False: this tool's own key, or one folded into another input).  ``sent_as``: the key sent to
    Agora when it differs; that spelling is accepted too (rules.BLACKLIST_SPELLING).
    ``vendors``: the storage vendors that take the key (None: every vendor).  ``shape``: an
    object's own fields.  ``invalid``: what a value that does not match the rule is called when
    the value cannot be shown (a secret's).
    """

    name: str
    kind: Kind
    rule: Rule
    default: object = None
    derived: bool = False
    required: bool = False
    sent: bool = False
    secret: bool = False
    update: bool = False
    input: bool = True
    sent_as: str | None = None
    vendors: frozenset[int] | None = None
    shape: Shape | None = None
    invalid: str | None = None

    def __post_init__(self) -> None:
        if self.default is None and not self.derived:
            values = getattr(self.rule, "values", ())
            own = tuple(values) if self.kind is Kind.CONST else getattr(self.rule, "default", None)
            object.__setattr__(self, "default", own)
        if self.kind is Kind.FORBIDDEN:
            object.__setattr__(self, "input", False)

    @property
    def wire_name(self) -> str:
        """The key Agora is sent."""
        return self.sent_as or self.name


@dataclass(frozen=True, eq=False)
class Shape:
    """An object's fields, in the order they are checked, described and sent.

    ``name`` is Agora's name for the object (``snapshotConfig``), or this tool's (``session``).
    ``fields`` (tuple of ``Field``): its keys; ``shape[name]`` is one of them.
    """

    name: str
    fields: tuple[Field, ...]

    def __getitem__(self, name: str) -> Field:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    def keys(self) -> tuple[str, ...]:
        """The keys a value may have (forbidden ones are refused with their own rule)."""
        return tuple(f.name for f in self.fields if f.kind is not Kind.FORBIDDEN)

    def accepted_keys(self) -> tuple[str, ...]:
        """``keys()`` and the other spelling of each key sent under another name."""
        return (*self.keys(), *(f.sent_as for f in self.fields if f.sent_as))

    def forbidden(self) -> Mapping[str, Rule]:
        """Keys refused with their own rule, rather than as unknown."""
        return MappingProxyType({f.name: f.rule for f in self.fields if f.kind is Kind.FORBIDDEN})

    def inputs(self) -> tuple[str, ...]:
        """The keys that are part of the SnapshotSession resource's inputs."""
        return tuple(f.name for f in self.fields if f.input)

    def updatable(self) -> frozenset[str]:
        """The keys Agora's update changes in place (S5)."""
        return frozenset(f.name for f in self.fields if f.update)

    def secret_paths(self) -> Iterator[tuple[str, ...]]:
        """The paths of the secret values among the inputs, through nested objects."""
        for item in self.fields:
            if not item.input:
                continue
            if item.shape is not None:
                yield from ((item.name, *path) for path in item.shape.secret_paths())
            elif item.secret:
                yield (item.name,)


# --------------------------------------------------------------------------------------------------
# acquire (docs/agora-api.md section 2)

UID_MAX: Final = 2**32 - 1

CHANNEL_NAME = Pattern(
    id="channel_name",
    path="cname",
    text=(
        "a channel name: 1 to {max_length} bytes of a-z A-Z 0-9, space and "
        "! # $ % & ( ) + - : ; < = . > ? @ [ ] ^ _ { } | ~ ,"
    ),
    sources=("S18", "S7"),
    # Code 1013 says "shorter than 64 bytes"; acquire answers 400 code 401 invalid_channel_name.
    regex=r"[a-zA-Z0-9 !#$%&()+\-:;<=.>?@\[\]^_{}|~,]+",
    max_length=63,
)

RECORDER_UID = Pattern(
    id="recorder_uid",
    path="uid",
    text=f"the recorder uid: a string of digits holding an integer from 1 to {UID_MAX}",
    sources=("S2", "S19"),
    regex=r"[1-9][0-9]{0,9}",
)

RECORDER_UID_SUBSCRIBED = Rule(
    id="recorder_uid_subscribed",
    path="recordingConfig.subscribeVideoUids",
    text=(
        "the recorder uid must not be a user's uid in the channel (S2), so it cannot appear in a "
        "subscription list of its own session or of another session on the same channel"
    ),
    sources=("S2", "S19"),
    decision=(
        "Reported symptom of a clash at Agora: the task stays at status 4, captures nothing, and "
        "stop answers 435; it is refused before anything is sent."
    ),
)

RESOURCE_EXPIRED_HOUR = IntRange(
    id="resource_expired_hour",
    path="resourceExpiredHour",
    text="hours that query/update/stop stay callable: an integer from {minimum} to {maximum}",
    sources=("S2", "S17", "S7"),
    minimum=1,
    maximum=720,
    default=720,
    decision=(
        "Agora's default is 72 h, after which stop can no longer be called although the task keeps "
        "running (S19). A declared session must stay deletable for as long as possible, so this "
        "tool sends 720 (the maximum) unless told otherwise."
    ),
)

RESOURCE_ID_RENEW_MAX_SECONDS: Final = 24 * 3600
RESOURCE_ID_RENEW_FRACTION: Final = 0.25


def resource_id_renew_before(expired_hour: int) -> float:
    """Seconds before a session's resource ID expires from which `pulumi up` replaces the
    session (a new task, a new resource ID) while stop can still be called: a quarter of its
    lifetime, at most a day. Decision: after expiry query and stop answer 433 forever (S2, S18),
    so the old task could no longer be stopped; renewing ahead keeps every session controllable
    when `up` runs at least that often."""
    return min(RESOURCE_ID_RENEW_MAX_SECONDS, expired_hour * 3600 * RESOURCE_ID_RENEW_FRACTION)

ACQUIRE_SCENE: Final = 0  # 0 real-time recording (snapshots), 1 web-page recording (S2)

ACQUIRE_REGION = Choice(
    id="acquire_region",
    path="region",
    text="the service area: one of {values}",
    sources=("S2", "S17", "S19"),
    values=("CN", "AP", "EU", "NA"),
)

# --------------------------------------------------------------------------------------------------
# start: mode and recordingConfig (docs/agora-api.md sections 3.2 and 3.4)

APP_ID = Pattern(
    id="app_id",
    path="appId",
    text="an Agora App ID: letters, digits, '_' and '-' only (it is part of every request URL)",
    sources=("S2",),
    regex=r"[A-Za-z0-9_-]+",
    max_length=64,
    decision=(
        "Agora documents no format; Console App IDs are 32 hexadecimal characters. The value is a "
        "URL path segment (S2: {appid} must be the channel's App ID), so only URL-safe characters "
        "are accepted and the length is capped."
    ),
)

RTC_TOKEN = Rule(
    id="rtc_token",
    path="token",
    text=(
        "an RTC token for the recorder uid: a non-empty string, valid for the whole session "
        "(Cloud Recording cannot renew tokens)"
    ),
    sources=("S3", "S18"),
)

RTC_TOKEN_IDENTITY = Rule(
    id="rtc_token_identity",
    path="token",
    text=(
        "a given RTC token must be built for this session's App ID, channel (cname) and recorder "
        "uid (or uid 0, any uid); Agora refuses any other with 110 invalid token"
    ),
    sources=("S3", "S18"),
    decision=(
        "AccessToken2 ('007...') tokens are read without the certificate (their App ID, channel, "
        "uid and expiry are not encrypted); a token of another format (the older AccessToken "
        "'006...', or one Agora adds later) is passed through unread. A common mistake this "
        "catches: reusing a publisher's token for the recorder."
    ),
)

MIN_TOKEN_REMAINING_SECONDS: Final = 3600
"""A given token must still be valid this long when checked (preview) and when started (up)."""

RTC_TOKEN_LIFETIME = Rule(
    id="rtc_token_lifetime",
    path="token",
    text=(
        f"a given RTC token must be valid for at least {MIN_TOKEN_REMAINING_SECONDS // 3600} hour "
        "more: Cloud Recording cannot renew tokens, so the task leaves the channel when it "
        "expires (Agora: 109 token expired)"
    ),
    sources=("S3", "S18"),
    decision=(
        f"The minimum remaining lifetime is {MIN_TOKEN_REMAINING_SECONDS} s: shorter would start a "
        "session that ends within the hour, with a replacement needing a new token first. Agora "
        "tokens live at most 24 h. Checked in preview and again at create, because time passes in "
        "between."
    ),
)

MODE = Choice(
    id="mode",
    path="mode",
    text="snapshots need mode {values}",
    sources=("S3", "S8", "S19"),
    values=("individual",),
    default="individual",
)

RECORDING_FILE_CONFIG_FORBIDDEN = Rule(
    id="recording_file_config_forbidden",
    path="recordingFileConfig",
    text="must not be set for a snapshot-only session (it turns the task into recording + snapshots)",
    sources=("S3", "S8", "S17"),
    decision=(
        "This tool manages snapshot-only tasks. Recording + snapshots in one task (supported since "
        "2021-09-06, S14) needs recordingFileConfig and is billed as recording; it is out of scope."
    ),
)

CHANNEL_TYPE = Choice(
    id="channel_type",
    path="recordingConfig.channelType",
    text="{choices}, matching the RTC SDK's channel profile",
    sources=("S3",),
    values=(0, 1),
    labels=("communication", "live broadcasting"),
    default=0,
)

STREAM_TYPES = Choice(
    id="stream_types",
    path="recordingConfig.streamTypes",
    text="snapshots need video: {choices}",
    sources=("S3", "S8", "S17"),
    values=(1, 2),
    labels=("video", "audio and video"),
    default=2,
    decision=(
        "Always sent explicitly: the Go client's StreamTypes has no omitempty and sends 0 (audio "
        "only), which breaks snapshots (G1 start.go)."
    ),
)

MAX_IDLE_TIME = IntRange(
    id="max_idle_time",
    path="recordingConfig.maxIdleTime",
    text="seconds a channel may be idle before the task ends: an integer from {minimum} to {maximum}",
    sources=("S2", "S3", "S17", "S19", "S10"),
    minimum=5,
    maximum=2_592_000,
    default=300,
    decision=(
        "CONFLICT: the Go and Java client comments say [5, 259200]; every Agora document says "
        "[5, 2592000] (30 days), and the documents are the authority. Default 300 s as the "
        "integration checklist recommends (S10), not Agora's 30 s: a declared session should "
        "survive a short break in the channel."
    ),
)

VIDEO_STREAM_TYPE = Choice(
    id="video_stream_type",
    path="recordingConfig.videoStreamType",
    text="{choices}",
    sources=("S3",),
    values=(0, 1),
    labels=("high stream", "low stream"),
    default=0,
)

DECRYPTION_MODE = Choice(
    id="decryption_mode",
    path="recordingConfig.decryptionMode",
    text="{first} (none) to {last}, matching the RTC SDK's media encryption",
    sources=("S3",),
    values=(0, 1, 2, 3, 4, 5, 6, 7, 8),
    default=0,
)

DECRYPTION_SECRET = Rule(
    id="decryption_secret",
    path="recordingConfig.secret",
    text="required when decryptionMode is not 0, and only then",
    sources=("S3",),
    decision="A secret with decryptionMode 0 is rejected: it is always a configuration mistake.",
)

SALT_MODES: Final = frozenset({7, 8})
SALT_BYTES: Final = 32
# Canonical Base64 of exactly SALT_BYTES bytes: 43 characters and one '=' of padding.
SALT_REGEX: Final = (
    f"[A-Za-z0-9+/]{{{(SALT_BYTES * 4 + 2) // 3}}}" + "=" * ((3 - SALT_BYTES % 3) % 3)
)

DECRYPTION_SALT = Pattern(
    id="decryption_salt",
    path="recordingConfig.salt",
    text=(
        f"required for decryptionMode {either(sorted(SALT_MODES), 'and')} (only then), as Base64 "
        f"of {SALT_BYTES} bytes"
    ),
    sources=("S3",),
    regex=SALT_REGEX,
)

ALL_STREAMS: Final = "#allstream#"
SUBSCRIBE_LIST_MAX: Final = 32

SUBSCRIBE_LIST = Rule(
    id="subscribe_list",
    path="recordingConfig.subscribeVideoUids",
    text=(
        f"1 to {SUBSCRIBE_LIST_MAX} distinct entries, each a uid (digits, 1 to {UID_MAX}) or "
        f"'{ALL_STREAMS}'; '{ALL_STREAMS}' stands alone"
    ),
    sources=("S3", "S5", "S19"),
    decision="Empty lists are rejected: S19 says a list 'should not be empty', S3 says avoid them.",
)

# Blacklist spelling. Canonical (the key in stack files, the Python API and state): the current
# English REST reference's `unsubscribe...Uids` (S2, S3, S5, S17, P1). Sent to Agora: the official
# clients' `unSubscribe...Uids` (G1 since issue GH19, J1, N1; also S14, S15, S19). Accepted: both.
# The two spellings are declared in RECORDING (``sent_as``).
BLACKLIST_SPELLING = Rule(
    id="blacklist_spelling",
    path="recordingConfig.unsubscribeVideoUids",
    text=(
        "a blacklist is written once: unsubscribeVideoUids or unSubscribeVideoUids (likewise for "
        "audio), not both"
    ),
    sources=("S3", "S15", "G1", "GH19", "J1"),
    decision=(
        "CONFLICT: the current English REST reference (S2/S3/S5, S17) and the Python client (P1) "
        "spell it unsubscribe...Uids; the Chinese start reference, S14, S15, S19 and the Java (J1), "
        "Node (N1) and Go (G1) clients spell it unSubscribe...Uids, the Go client since a user "
        "reported in 2024 that the lower-case key did not work and its maintainers agreed (GH19). "
        "We send unSubscribe...Uids, as the official clients do; stack files and the Python API "
        "may use either spelling, and state keeps one canonical form (unsubscribe...Uids), so a "
        "spelling change is not a diff."
    ),
)


def canonical_blacklists(recording: Mapping[str, object]) -> dict[str, object]:
    """``recording`` (a recordingConfig) with each blacklist under its canonical key. A mapping
    that holds both spellings of one list is returned unchanged, for the checker to report."""
    out = dict(recording)
    for alias, canonical in BLACKLIST_ALIASES.items():
        if alias in out and canonical not in out:
            out[canonical] = out.pop(alias)
    return out


SUBSCRIBE_EXCLUSIVE = Rule(
    id="subscribe_exclusive",
    path="recordingConfig.unsubscribeVideoUids",
    text="a whitelist and a blacklist of the same media type cannot both be set",
    sources=("S3", "S5"),
)

AUDIO_NEEDS_VIDEO_LIST = Rule(
    id="audio_needs_video_list",
    path="recordingConfig.subscribeAudioUids",
    text=(
        "subscribeAudioUids requires subscribeVideoUids, and unsubscribeAudioUids requires a video "
        "list (without one, video is not subscribed and no snapshot is taken)"
    ),
    sources=("S3", "S8", "S17", "S15"),
    decision=(
        "S3/S8/S17 state the subscribeAudioUids half. The unsubscribeAudioUids half follows from S3 "
        "and S15: a list for only one media type leaves the other unsubscribed, so an audio "
        "blacklist alone records no video at all."
    ),
)

AUDIO_LIST_NEEDS_AUDIO_STREAM = Rule(
    id="audio_list_needs_audio_stream",
    path="recordingConfig.subscribeAudioUids",
    text="audio lists apply only when streamTypes is 2 (audio and video)",
    sources=("S3", "S15"),
)

# (group, smallest uid count, largest uid count): S2/S3 current table.
SUBSCRIBE_UID_GROUPS: Final = ((0, 1, 2), (1, 3, 7), (2, 8, 12), (3, 13, 17), (4, 18, 32), (5, 33, 49))

SUBSCRIBE_UID_GROUP = Choice(
    id="subscribe_uid_group",
    path="recordingConfig.subscribeUidGroup",
    text="{first} to {last}, at least the group of the number of distinct subscribed uids (audio and video)",
    sources=("S2", "S3", "S17", "S14", "S19"),
    values=(0, 1, 2, 3, 4, 5),
    default=0,
    decision=(
        "Required in individual mode, so it is always sent. When not given it is derived from the "
        "union of the explicit audio and video uids (S3). With '#allstream#' or a blacklist the "
        "count is unknown and it defaults to 0, as Agora's own snapshot examples send (S8, G1). "
        "CONFLICT on the 17/18 boundary (S14, S19 say 4 = 17-32): the current table (S2/S3) is used."
    ),
)


def uid_group_for(count: int) -> int:
    """The ``subscribeUidGroup`` for ``count`` distinct subscribed uids (S2/S3 table)."""
    for group, _low, high in SUBSCRIBE_UID_GROUPS:
        if count <= high:
            return group
    return SUBSCRIBE_UID_GROUPS[-1][0]


# --------------------------------------------------------------------------------------------------
# start: snapshotConfig (docs/agora-api.md section 3.5)

CAPTURE_INTERVAL = IntRange(
    id="capture_interval",
    path="snapshotConfig.captureInterval",
    text="seconds between snapshots: an integer from {minimum} to {maximum}",
    sources=("S2", "S3", "S17", "G1", "S8", "S14"),
    minimum=5,
    maximum=3600,
    default=10,
    decision=(
        "CONFLICT: the REST reference (S2/S3, S17) and the Go, Java and Python clients say [5, 3600]; "
        "the screenshot guide (S8), the Chinese guide and a 2021-10-29 release note (S14) say "
        "[1, 3600]. 5-3600 passes under both readings, so 1-4 is rejected rather than risk a 400 "
        "from the server at deploy time."
    ),
)

FILE_TYPE = Choice(
    id="file_type",
    path="snapshotConfig.fileType",
    text="must be {json}, the only snapshot format",
    sources=("S3", "S8"),
    values=("jpg",),
    default="jpg",
)

# --------------------------------------------------------------------------------------------------
# storageConfig (docs/agora-api.md sections 3.6 and 9)


@dataclass(frozen=True)
class Provisioning:
    """How this tool creates a vendor's bucket and upload key (``snapshot_resources.storage``):
    ``module`` under ``snapshot_resources.storage``, its ``component`` class, the pip ``extra``
    that brings the vendor's Pulumi package (``pyproject.toml``) and that package's import name
    (``sdk``)."""

    module: str
    component: str
    extra: str
    sdk: str


@dataclass(frozen=True)
class Vendor:
    """A storage vendor Agora uploads to, with its region table and bucket-naming rule: the one
    registry of vendors (``storage.FAMILIES``, ``PROVISION_VENDORS`` and each storage module's
    ``VENDOR`` derive from it).

    ``regions`` maps Agora's numeric code to ``(Agora's label, the vendor's own region id)``.
    ``any_region`` vendors (Azure, Google, S3-compatible) take region 0 whatever the bucket's
    location, so any vendor region name resolves to 0.  ``provisioning`` says how this tool
    creates storage there; None: bring your own bucket and keys.
    """

    code: int
    name: str
    aliases: tuple[str, ...]
    title: str
    regions: MappingProxyType[int, tuple[str, str]]
    bucket: Pattern
    sources: tuple[str, ...]
    any_region: bool = False
    sts: bool = False
    decision: str | None = None
    extra_region_aliases: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    provisioning: Provisioning | None = None

    def region_code(self, region: int | str) -> int | None:
        """Resolve a region given as Agora's code, Agora's label or the vendor's id; None if unknown."""
        if isinstance(region, bool):
            return None
        if isinstance(region, int):
            return region if region in self.regions else None
        key = region.strip().lower().replace("_", "-")
        if self.any_region:
            return 0 if key else None
        for code, (label, vendor_id) in self.regions.items():
            if key in (label.lower().replace("_", "-"), vendor_id.lower()):
                return code
        return self.extra_region_aliases.get(key)

    def region_names(self) -> list[str]:
        return [vendor_id for _label, vendor_id in self.regions.values()]


def _table(*rows: tuple[int, str, str]) -> MappingProxyType[int, tuple[str, str]]:
    return MappingProxyType({code: (label, vendor_id) for code, label, vendor_id in rows})


def _lower(*rows: tuple[int, str]) -> MappingProxyType[int, tuple[str, str]]:
    """Rows whose vendor region id is Agora's label in lower case with hyphens."""
    return _table(*((c, label, label.lower().replace("_", "-")) for c, label in rows))


_S3_BUCKET = Pattern(
    id="bucket_name_s3",
    path="bucket",
    text=(
        "an S3 bucket name: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or "
        "digit, no '..', not an IP address, no 'xn--' prefix or '-s3alias' suffix"
    ),
    sources=("VENDOR",),  # docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
    regex=r"(?!xn--)(?!sthree-)(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)(?!.*-s3alias$)(?!.*--ol-s3$)"
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
)
_DNS_BUCKET = Pattern(
    id="bucket_name_dns",
    path="bucket",
    text="3-63 characters of a-z 0-9 -, starting and ending with a letter or digit",
    sources=("VENDOR",),  # help.aliyun.com OSS bucket naming; KS3 and Qiniu use the same form
    regex=r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
)
_COS_BUCKET = Pattern(
    id="bucket_name_cos",
    path="bucket",
    text="a COS bucket name with its APPID suffix: <name>-<appid>, a-z 0-9 -, at most 60 characters",
    sources=("VENDOR",),  # cloud.tencent.com/document/product/436/13312
    regex=r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{4,12}",
    max_length=60,
)
_AZURE_CONTAINER = Pattern(
    id="bucket_name_azure",
    path="bucket",
    text="an Azure container name: 3-63 characters of a-z 0-9 -, starting with a letter or digit, no '--'",
    sources=("VENDOR",),  # learn.microsoft.com naming-and-referencing-containers
    regex=r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
)
_GCS_BUCKET = Pattern(
    id="bucket_name_gcs",
    path="bucket",
    text=(
        "a Cloud Storage bucket name: 3-63 characters of a-z 0-9 - _ ., starting and ending with a "
        "letter or digit, not starting with 'goog' nor containing 'google'"
    ),
    sources=("VENDOR",),  # cloud.google.com/storage/docs/buckets#naming
    regex=r"(?!goog)(?!.*google)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]",
)
_OBS_BUCKET = Pattern(
    id="bucket_name_obs",
    path="bucket",
    text="an OBS bucket name: 3-63 characters of a-z 0-9 - ., starting and ending with a letter or digit",
    sources=("VENDOR",),  # support.huaweicloud.com/intl/en-us/obs bucket naming rules
    regex=r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)(?!.*\.-)(?!.*-\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
)
_BOS_BUCKET = Pattern(
    id="bucket_name_bos",
    path="bucket",
    text="a BOS bucket name: 4-63 characters of a-z 0-9 -, starting and ending with a letter or digit",
    sources=("VENDOR",),  # cloud.baidu.com/doc/BOS bucket naming
    regex=r"[a-z0-9][a-z0-9-]{2,61}[a-z0-9]",
)

# Agora labels 26/27 CN_Northeast_2 / CN_Southeast_7 (S9); their vendor ids are Alibaba's real
# ap-northeast-2 / ap-southeast-7 (see the vendor's decision below).
_ALIBABA_REGIONS = MappingProxyType(
    dict(
        _lower((0, "CN_Hangzhou"), (1, "CN_Shanghai"), (2, "CN_Qingdao"), (3, "CN_Beijing"),
               (4, "CN_Zhangjiakou"), (5, "CN_Huhehaote"), (6, "CN_Shenzhen"), (7, "CN_Hongkong"),
               (8, "US_West_1"), (9, "US_East_1"), (10, "AP_Southeast_1"), (11, "AP_Southeast_2"),
               (12, "AP_Southeast_3"), (13, "AP_Southeast_5"), (14, "AP_Northeast_1"),
               (15, "AP_South_1"), (16, "EU_Central_1"), (17, "EU_West_1"), (18, "EU_East_1"),
               (19, "AP_Southeast_6"), (20, "CN_Heyuan"), (21, "CN_Guangzhou"), (22, "CN_Chengdu"),
               (23, "CN_Nanjing"), (24, "CN_Fuzhou"), (25, "CN_Wulanchabu"))
    )
    | {26: ("CN_Northeast_2", "ap-northeast-2"), 27: ("CN_Southeast_7", "ap-southeast-7")}
)

VENDORS: Final = MappingProxyType(
    {
        v.code: v
        for v in (
            Vendor(
                0, "qiniu", ("kodo",), "Qiniu Cloud Kodo",
                _table((0, "East_China", "z0"), (1, "North_China", "z1"), (2, "South_China", "z2"),
                       (3, "North_America", "na0"), (4, "Southeast_Asia", "as0")),
                _DNS_BUCKET, ("S19",),
                decision="Only in the 2022 reference (S19); still named in the product overview.",
            ),
            Vendor(
                1, "aws", ("s3", "amazon"), "Amazon S3",
                _lower((0, "US_EAST_1"), (1, "US_EAST_2"), (2, "US_WEST_1"), (3, "US_WEST_2"),
                       (4, "EU_WEST_1"), (5, "EU_WEST_2"), (6, "EU_WEST_3"), (7, "EU_CENTRAL_1"),
                       (8, "AP_SOUTHEAST_1"), (9, "AP_SOUTHEAST_2"), (10, "AP_NORTHEAST_1"),
                       (11, "AP_NORTHEAST_2"), (12, "SA_EAST_1"), (13, "CA_CENTRAL_1"),
                       (14, "AP_SOUTH_1"), (15, "CN_NORTH_1"), (16, "CN_NORTHWEST_1"),
                       (18, "AF_SOUTH_1"), (19, "AP_EAST_1"), (20, "AP_NORTHEAST_3"),
                       (21, "EU_NORTH_1"), (22, "ME_SOUTH_1"), (24, "AP_SOUTHEAST_3"),
                       (25, "EU_SOUTH_1")),
                _S3_BUCKET, ("S9",), sts=True,
                provisioning=Provisioning("aws", "AwsSnapshotBucket", "aws", "pulumi_aws"),
                decision=(
                    "Codes 17 (us-gov-west-1) and 23 (us-gov-east-1) exist only in the 2022 table "
                    "(S19); the current table (S9) drops them, so they are rejected."
                ),
            ),
            Vendor(
                2, "alibaba", ("aliyun", "oss", "alicloud"), "Alibaba Cloud OSS",
                _ALIBABA_REGIONS,
                _DNS_BUCKET, ("S9", "S14"), sts=True,
                provisioning=Provisioning(
                    "alicloud", "AlicloudSnapshotBucket", "alicloud", "pulumi_alicloud"),
                decision=(
                    "CONFLICT on 26/27: Agora labels them CN_Northeast_2 / CN_Southeast_7 (S9); a "
                    "third-party table says AP_Northeast_2 / AP_Southeast_7, which are Alibaba's real "
                    "region ids (Seoul, Bangkok). The codes agree, so both spellings resolve to them."
                ),
                extra_region_aliases=MappingProxyType({"cn-northeast-2": 26, "cn-southeast-7": 27}),
            ),
            Vendor(
                3, "tencent", ("cos", "qcloud"), "Tencent Cloud COS",
                _lower((0, "AP_Beijing_1"), (1, "AP_Beijing"), (2, "AP_Shanghai"),
                       (3, "AP_Guangzhou"), (4, "AP_Chengdu"), (5, "AP_Chongqing"),
                       (6, "AP_Shenzhen_FSI"), (7, "AP_Shanghai_FSI"), (8, "AP_Beijing_FSI"),
                       (9, "AP_Hongkong"), (10, "AP_Singapore"), (11, "AP_Mumbai"), (12, "AP_Seoul"),
                       (13, "AP_Bangkok"), (14, "AP_Tokyo"), (15, "NA_Siliconvalley"),
                       (16, "NA_Ashburn"), (17, "NA_Toronto"), (18, "EU_Frankfurt"),
                       (19, "EU_Moscow")),
                _COS_BUCKET, ("S9", "S19"), sts=True,
                provisioning=Provisioning(
                    "tencent", "TencentSnapshotBucket", "tencent", "tencentcloud_iac_pulumi"),
            ),
            Vendor(
                4, "kingsoft", ("ks3", "ksyun"), "Kingsoft Cloud KS3",
                _lower((0, "CN_Hangzhou"), (1, "CN_Shanghai"), (2, "CN_Qingdao"), (3, "CN_Beijing"),
                       (4, "CN_Guangzhou"), (5, "CN_Hongkong"), (6, "JR_Beijing"),
                       (7, "JR_Shanghai"), (8, "NA_Russia_1"), (9, "NA_Singapore_1")),
                _DNS_BUCKET, ("S19",),
                decision="Only in the 2022 reference (S19); still named in the product overview.",
            ),
            Vendor(
                5, "azure", ("microsoft", "blob"), "Microsoft Azure Blob Storage",
                _table((0, "any", "any")), _AZURE_CONTAINER, ("S9",), any_region=True,
                provisioning=Provisioning(
                    "azure", "AzureSnapshotBucket", "azure", "pulumi_azure_native"),
                decision=(
                    "region is 0 (S9 since 2025-12-03; earlier 'has no effect'). bucket is the "
                    "container; accessKey the storage account name, secretKey its key "
                    "(docs/storage.md 2.4, UNCONFIRMED by Agora)."
                ),
            ),
            Vendor(
                6, "gcp", ("google", "gcs"), "Google Cloud Storage",
                _table((0, "any", "any")), _GCS_BUCKET, ("S9",), any_region=True,
                provisioning=Provisioning("gcp", "GcpSnapshotBucket", "gcp", "pulumi_gcp"),
                decision="region is 0 (S9 since 2025-12-03); keys are an HMAC key pair.",
            ),
            Vendor(
                7, "huawei", ("obs",), "Huawei Cloud OBS",
                _lower((0, "CN_North_1"), (1, "CN_North_4"), (2, "CN_East_2"), (3, "CN_East_3"),
                       (4, "CN_South_1"), (5, "CN_Southwest_2"), (6, "AP_Southeast_1"),
                       (7, "AP_Southeast_2"), (8, "AP_Southeast_3"), (9, "AF_South_1"),
                       (10, "SA_Argentina_1"), (11, "SA_Peru_1"), (12, "NA_Mexico_1"),
                       (13, "SA_Brazil_1"), (14, "LA_South_2"), (15, "SA_Chile_1")),
                _OBS_BUCKET, ("S9", "S19"),
                provisioning=Provisioning(
                    "huawei", "HuaweiSnapshotBucket", "huawei", "pulumi_huaweicloud"),
            ),
            Vendor(
                8, "baidu", ("bos", "bce"), "Baidu AI Cloud BOS",
                _table((1, "Baoding", "bd"), (2, "Suzhou", "su"), (3, "Guangzhou", "gz"),
                       (4, "Hongkong", "hkg"), (5, "Singapore", "sin"), (6, "Wuhan", "fwh"),
                       (7, "Shanghai", "fsh")),
                _BOS_BUCKET, ("S9",),
                decision="Code 0 (Beijing) is only in the 2022 table (S19); the current table drops it.",
            ),
            Vendor(
                11, "s3-compatible", ("s3compatible", "minio"), "S3-compatible storage",
                _table((0, "any", "any")), _S3_BUCKET, ("S9", "S14"), any_region=True,
                decision="Added 2025-06-27 (S14); region 0 with the host in extensionParams.endpoint.",
            ),
        )
    }
)

STORAGE_VENDOR = Choice(
    id="storage_vendor",
    path="vendor",
    text="a storage vendor: " + ", ".join(f"{v.code} ({v.name})" for v in VENDORS.values()),
    sources=("S9", "S19", "S14"),
    values=tuple(VENDORS),
    decision="Codes 0 and 4 are kept from the 2022 reference; 9 and 10 are documented nowhere.",
)

STORAGE_REGION = Rule(
    id="storage_region",
    path="region",
    text="a region in the vendor's table, by Agora's code, Agora's label or the vendor's region id",
    sources=("S9",),
)

BUCKET_NAME = Rule(
    id="bucket_name",
    path="bucket",
    text="must follow the vendor's bucket naming rules",
    sources=("S3", "VENDOR"),
)

FILE_NAME_PREFIX_MAX: Final = 128
FILE_NAME_PREFIX = Pattern(
    id="file_name_prefix",
    path="fileNamePrefix",
    text=(
        "path segments of letters and digits only (no '_', '-', '/' or spaces), at most "
        f"{FILE_NAME_PREFIX_MAX} characters in total including the '/' between segments"
    ),
    sources=("S3", "S17", "S19"),
    regex=r"[A-Za-z0-9]+",
)


def vendors_named(codes: Iterable[int]) -> str:
    """``Amazon S3 (vendor 1) and Alibaba Cloud OSS (vendor 2)``: vendors as a rule's text names
    them, from ``VENDORS``."""
    return either((f"{VENDORS[code].title} (vendor {code})" for code in sorted(codes)), "and")


# Which vendors take each extensionParams key (S3, S17; endpoint: S5, S9, S14).
SSE_VENDORS: Final = frozenset({1})
TAG_VENDORS: Final = frozenset({1, 2})
ENDPOINT_VENDORS: Final = frozenset({11})

SSE_VALUES: Final = ("kms", "aes256")
EXTENSION_SSE = Choice(
    id="extension_sse",
    path="extensionParams.sse",
    text=f"server-side encryption {{quoted}}, {vendors_named(SSE_VENDORS)} only",
    sources=("S3", "S17"),
    values=SSE_VALUES,
)
EXTENSION_TAG = Rule(
    id="extension_tag",
    path="extensionParams.tag",
    text=f"an object tag, {vendors_named(TAG_VENDORS)} only",
    sources=("S3", "S17"),
)
EXTENSION_ENDPOINT = Pattern(
    id="extension_endpoint",
    path="extensionParams.endpoint",
    text=(
        "the S3-compatible host name (no scheme), required for "
        f"vendor {either(sorted(ENDPOINT_VENDORS), 'and')} and only for it"
    ),
    sources=("S5", "S9", "S14", "G1"),
    regex=r"[A-Za-z0-9.-]+(:[0-9]{1,5})?",
    decision=(
        "Agora's example sends a bare domain ('xxxxx.xxxxx.com'); a scheme is rejected so the same "
        "value works at Agora. The emulator reaches a loopback endpoint over plain http."
    ),
)
STS_VENDORS: Final = frozenset(v.code for v in VENDORS.values() if v.sts)
STS_FIELDS = Rule(
    id="sts_fields",
    path="stsToken",
    text=(
        f"stsToken and stsExpiration are accepted for vendors {either(sorted(STS_VENDORS), 'and')} "
        "only, and go together"
    ),
    sources=("S2", "S5", "S14"),
)
# stsExpiration is Unix seconds, stored as uint64 (S2, S5): the bound of the sts_fields rule for it.
STS_EXPIRATION = IntRange(
    id=STS_FIELDS.id, path="stsExpiration", text=STS_FIELDS.text + " (Unix seconds)",
    sources=STS_FIELDS.sources, minimum=0, maximum=2**64 - 1,
)

MIN_STS_REMAINING_SECONDS: Final = 600
"""A given stsExpiration must be at least this far ahead when checked (validate, preview, create)."""

STS_LIFETIME = Rule(
    id="sts_lifetime",
    path="stsExpiration",
    text=(
        f"stsExpiration must be at least {MIN_STS_REMAINING_SECONDS // 60} minutes ahead: Agora "
        "uploads with the temporary key until it expires, and every upload after that fails"
    ),
    sources=("S2", "S5", "S14"),
    decision=(
        f"The minimum remaining life is {MIN_STS_REMAINING_SECONDS} s. Temporary keys are short: "
        "an Alibaba STS token lives 15 min to 1 h by default (12 h at most), an AWS session token "
        "15 min to 36 h. Ten minutes leaves room for `pulumi up` to start the task (up to "
        "agora:startTimeout, 90 s) and take snapshots, yet accepts a one-hour token for its first "
        "50 minutes and the shortest (15 min) one for its first 5. A key that expires is rotated "
        "in place: a new stsToken and stsExpiration are an update (S5), not a replacement. "
        "Checked in validate, in preview and again at create, because time passes in between."
    ),
)

# Provisioned storage: rules of this tool's storage components, not of Agora's API.
PROVISION_VENDORS: Final = frozenset(v.code for v in VENDORS.values() if v.provisioning)
PROVISION = Rule(
    id="provision",
    path="provision",
    text=(
        "true or false; provisioning (bucket + least-privilege upload key) is supported for "
        + ", ".join(VENDORS[c].name for c in sorted(PROVISION_VENDORS))
        + "; for other vendors give accessKey and secretKey"
    ),
    sources=(),
    decision="A feature of this tool's storage components (snapshot_resources.storage), not of Agora.",
)
STORAGE_CREDENTIALS = Rule(
    id="storage_credentials",
    path="accessKey",
    text=(
        "accessKey and secretKey are required unless provision is true, and must be absent when it "
        "is (the provisioned upload key is used)"
    ),
    sources=("S3",),
    decision="Agora requires both keys in storageConfig (S3); with provision this tool creates them.",
)
RETENTION_DAYS = IntRange(
    id="retention_days",
    path="retentionDays",
    text="days a provisioned bucket keeps snapshots: an integer of at least {minimum}, only with provision: true",
    sources=(),
    minimum=1,
    maximum=2**31 - 1,
    default=30,
    decision=(
        "A lifecycle rule of this tool's provisioned buckets, not an Agora field. The maximum is the "
        "32-bit integer the vendors' lifecycle APIs take; without provision it is rejected because "
        "nothing would apply it."
    ),
)

# --------------------------------------------------------------------------------------------------
# Resource inputs (SnapshotSession)

STORAGE_TARGET = Rule(
    id="storage_target",
    path="storage",
    text="a session needs a storage target: Agora's storageConfig, e.g. a storage component's target",
    sources=("S3",),
)

# --------------------------------------------------------------------------------------------------
# Stack-level rules

UNIQUE_TASK = Rule(
    id="unique_task",
    path="uid",
    text="no two sessions may share a channel and recorder uid (Agora answers 400 code 53, task conflict)",
    sources=("S7", "S2"),
)
STORAGE_REFERENCE = Rule(
    id="storage_reference",
    path="storage",
    text="must name a storage target declared under storage",
    sources=(),
    decision="A rule of this tool's stack file, not of Agora's API.",
)
PROJECT_KEYS = Rule(
    id="project_keys",
    path="",
    text=(
        "a stack's storage and sessions are read from <project>:storage and <project>:sessions, "
        "where <project> is the name in Pulumi.yaml (or storage: and sessions: without a "
        "namespace); keys under another name are never read"
    ),
    sources=(),
    decision=(
        "The program reads pulumi.Config(), whose namespace is the current project's name. A "
        "stack file whose sessions sit under another project's name (a copied example, a renamed "
        "project, a typo) would deploy nothing while looking complete, so both validate and the "
        "program refuse such keys instead of ignoring them."
    ),
)
MAPPING = Rule(
    id="mapping",
    path="",
    text="must be a mapping of the documented keys (a JSON object)",
    sources=("S3",),
    decision="Every Agora request section (recordingConfig, snapshotConfig, storageConfig) is an object.",
)
UNKNOWN_KEY = Rule(
    id="unknown_key",
    path="",
    text="is not a known key (Agora's fields are case-sensitive)",
    sources=("S10", "S18"),
)

# --------------------------------------------------------------------------------------------------
# Service behaviour the client, provider and emulator share (docs/agora-api.md sections 2.3, 4, 6, 7)

RESOURCE_ID_TTL_SECONDS: Final = 300  # S1, S2, S3, S23: start within five minutes, else 433
QPS_PER_APP_ID: Final = 10  # S8, S10; 429 above it (S7)
MAX_CONCURRENT_TASKS: Final = 50  # PCW per App ID (S10, W3); 406 vendor_over_load above it (S7)
FAILOVER_SECONDS: Final = 90  # a task moves to a new server within 90 s (S8); 404 meanwhile (S7 FAQ)
STOP_UPLOAD_TIMEOUT_SECONDS: Final = 20  # synchronous stop waits for uploads, else code 50 (S6)
# S10: "if query's status is still not 4/5 after about 90 s, treat the task as not started or
# already exited": how long confirming a start waits (the client's default, agora:startTimeout's).
START_CONFIRM_SECONDS: Final = 90
RUNNING_STATUSES: Final = frozenset({4, 5})  # "started successfully" (S10)
QUERY_STATUSES: Final = MappingProxyType(
    {
        0: "not started",
        1: "initialization complete",
        2: "components starting",
        3: "some components ready",
        4: "all components ready",
        5: "in progress",
        6: "stop requested",
        7: "all components stopped",
        8: "exited",
        20: "exited abnormally",
    }
)  # S4, S17, G1
# From 6 "stop requested" on the task is stopping or has exited: it captures nothing more (S4).
EXITED_STATUSES: Final = frozenset(code for code in QUERY_STATUSES if code >= 6)
UPLOADING_STATUSES: Final = ("uploaded", "backuped", "unknown")  # S6 (S19 spells it "unknow")

# <fileNamePrefix>/[bak<n>_]<sid>_<cname>__uid_s_<uid>__uid_e_video_<utc>.jpg (S8, S19, S16)
SNAPSHOT_FILE_TIME_FORMAT: Final = "%Y%m%d%H%M%S"  # + 3 digits of milliseconds, UTC (S8)


# --------------------------------------------------------------------------------------------------
# The objects Agora takes, one table each: a key is declared once, here (CONTRIBUTING.md, "Add a
# field"). Order matters: it is the order keys are checked (so problems are listed), described in
# the schemas and sent.

RECORDING: Final = Shape("recordingConfig", (  # docs/agora-api.md section 3.4
    Field("channelType", Kind.INTEGER, CHANNEL_TYPE, sent=True),  # required by S3
    Field("streamTypes", Kind.INTEGER, STREAM_TYPES, sent=True),  # always sent (its decision)
    Field("maxIdleTime", Kind.INTEGER, MAX_IDLE_TIME),
    Field("videoStreamType", Kind.INTEGER, VIDEO_STREAM_TYPE),
    Field("decryptionMode", Kind.INTEGER, DECRYPTION_MODE),
    # The media decryption key and salt (S3) decrypt the channel: secrets.
    Field("secret", Kind.STRING, DECRYPTION_SECRET, secret=True),
    Field("salt", Kind.STRING, DECRYPTION_SALT, secret=True,
          invalid=f"is not Base64 of {SALT_BYTES} bytes"),
    # The subscription lists are what update changes in place (S5 streamSubscribe).
    Field("subscribeVideoUids", Kind.UID_LIST, SUBSCRIBE_LIST, update=True),
    Field("unsubscribeVideoUids", Kind.UID_LIST, SUBSCRIBE_LIST, update=True,
          sent_as="unSubscribeVideoUids"),
    Field("subscribeAudioUids", Kind.UID_LIST, SUBSCRIBE_LIST, update=True),
    Field("unsubscribeAudioUids", Kind.UID_LIST, SUBSCRIBE_LIST, update=True,
          sent_as="unSubscribeAudioUids"),
    # Required in individual mode (S3); derived from the lists when not given (its decision).
    Field("subscribeUidGroup", Kind.INTEGER, SUBSCRIBE_UID_GROUP, derived=True, sent=True),
))

SNAPSHOT: Final = Shape("snapshotConfig", (  # docs/agora-api.md section 3.5
    Field("captureInterval", Kind.INTEGER, CAPTURE_INTERVAL),
    Field("fileType", Kind.CONST, FILE_TYPE, sent=True),  # required by S3
))

EXTENSION: Final = Shape("extensionParams", (  # docs/agora-api.md section 3.6
    Field("sse", Kind.STRING, EXTENSION_SSE, vendors=SSE_VENDORS),
    Field("tag", Kind.STRING, EXTENSION_TAG, vendors=TAG_VENDORS),
    Field("endpoint", Kind.STRING, EXTENSION_ENDPOINT, vendors=ENDPOINT_VENDORS),
))

STORAGE: Final = Shape("storageConfig", (  # docs/agora-api.md sections 3.6 and 9
    Field("vendor", Kind.VENDOR, STORAGE_VENDOR, required=True),
    Field("region", Kind.REGION, STORAGE_REGION, sent=True),
    Field("bucket", Kind.BUCKET, BUCKET_NAME, required=True),
    # This tool's keys of a stack file's storage entry: never part of Agora's storageConfig.
    Field("provision", Kind.BOOLEAN, PROVISION, default=False, input=False),
    Field("retentionDays", Kind.INTEGER, RETENTION_DAYS, input=False),
    Field("fileNamePrefix", Kind.PREFIX, FILE_NAME_PREFIX),
    Field("extensionParams", Kind.OBJECT, MAPPING, shape=EXTENSION),
    # accessKey names the credential, and for Azure it is the storage account paired with the
    # account key: secret like the key. A credential rotation is an update (S5).
    Field("accessKey", Kind.STRING, STORAGE_CREDENTIALS, sent=True, secret=True, update=True),
    Field("secretKey", Kind.STRING, STORAGE_CREDENTIALS, sent=True, secret=True, update=True),
    Field("stsToken", Kind.STRING, STS_FIELDS, secret=True, update=True, vendors=STS_VENDORS),
    Field("stsExpiration", Kind.INTEGER, STS_EXPIRATION, update=True, vendors=STS_VENDORS),
))

SESSION: Final = Shape("session", (  # acquire + start, docs/agora-api.md sections 2 and 3
    Field("cname", Kind.STRING, CHANNEL_NAME, required=True),
    Field("uid", Kind.UID, RECORDER_UID, required=True),
    # Decision: the storage target is mostly keys, so the input is one secret as a whole
    # (``storageLocation`` shows vendor, bucket and prefix).
    Field("storage", Kind.STORAGE, STORAGE_REFERENCE, required=True, secret=True, shape=STORAGE),
    Field("appId", Kind.STRING, APP_ID),
    Field("region", Kind.STRING, ACQUIRE_REGION),
    Field("resourceExpiredHour", Kind.INTEGER, RESOURCE_EXPIRED_HOUR),
    Field("mode", Kind.STRING, MODE, input=False),  # always individual: part of the URL (S3)
    Field("recordingConfig", Kind.OBJECT, MAPPING, default=EMPTY, shape=RECORDING),
    Field("snapshotConfig", Kind.OBJECT, MAPPING, default=EMPTY, shape=SNAPSHOT),
    # The session's own prefix, appended to its storage target's (the input is the target).
    Field("fileNamePrefix", Kind.PREFIX, FILE_NAME_PREFIX, input=False),
    # The recorder's RTC token (S3) joins the channel as the recorder: a secret.
    Field("token", Kind.STRING, RTC_TOKEN, secret=True),
    Field("recordingFileConfig", Kind.FORBIDDEN, RECORDING_FILE_CONFIG_FORBIDDEN),
))

SHAPES: Final = (SESSION, RECORDING, SNAPSHOT, STORAGE, EXTENSION)

# Derived key lists.
INPUT_KEYS: Final = SESSION.inputs()
"""The SnapshotSession resource's inputs (CONTRIBUTING.md), in table order."""
SUBSCRIBE_LIST_KEYS: Final = tuple(f.name for f in RECORDING.fields if f.kind is Kind.UID_LIST)
VIDEO_LIST_KEYS: Final = tuple(k for k in SUBSCRIBE_LIST_KEYS if k.endswith("VideoUids"))
AUDIO_LIST_KEYS: Final = tuple(k for k in SUBSCRIBE_LIST_KEYS if k.endswith("AudioUids"))
BLACKLIST_WIRE_NAMES: Final = MappingProxyType(
    {f.name: f.sent_as for f in RECORDING.fields if f.sent_as is not None}
)
"""Canonical blacklist key -> the spelling sent to Agora (rules.BLACKLIST_SPELLING)."""
BLACKLIST_ALIASES: Final = MappingProxyType({v: k for k, v in BLACKLIST_WIRE_NAMES.items()})
"""Accepted other spelling -> canonical key."""


# --------------------------------------------------------------------------------------------------
# Secrets, derived from the tables' ``secret`` fields. Everything that must hide a value derives
# from these: the resource's secret inputs and outputs, the stack program, problem messages, plan,
# the client's redaction (CONTRIBUTING.md "Secrets").

SECRET_PATHS: Final[tuple[tuple[str, ...], ...]] = tuple(SESSION.secret_paths())
"""Paths, inside a SnapshotSession's inputs (Agora's start ``clientRequest``), of secret values."""

SECRET_WHOLE_INPUTS: Final = tuple(f.name for f in SESSION.fields if f.input and f.secret)
"""Inputs kept secret as a whole (``storage``, ``token``). ``recordingConfig`` keeps only its
``secret`` and ``salt`` secret, so reviewers still see subscription-list edits in a diff."""

SECRET_FIELDS: Final = frozenset(path[-1] for path in SECRET_PATHS)
"""Field names (the last key of each secret path) whose values are never shown, wherever they
appear: problem messages, plan, the client's redaction."""

SECRET_BEARING_INPUTS: Final = frozenset(path[0] for path in SECRET_PATHS)
"""Top-level inputs that hold a secret somewhere inside."""

SECRET_NESTED_PATHS: Final = tuple(p for p in SECRET_PATHS if p[0] not in SECRET_WHOLE_INPUTS)
"""Secret leaves inside an input that is not secret as a whole: marked one by one."""


# --------------------------------------------------------------------------------------------------
# The registry: every rule of this module, for tests, schemas and documentation.


def _every_rule() -> tuple[Rule, ...]:
    """Every public rule constant above, in the order written, then any rule declared inside a
    table (a new field's own rule); one per id (``STS_EXPIRATION`` is a bound of sts_fields)."""
    written = [v for k, v in globals().items() if isinstance(v, Rule) and not k.startswith("_")]
    found: dict[str, Rule] = {}
    for rule in (*written, *(f.rule for shape in SHAPES for f in shape.fields)):
        found.setdefault(rule.id, rule)
    return tuple(found.values())


ALL_RULES: Final[tuple[Rule, ...]] = _every_rule()
RULES_BY_ID: Final = MappingProxyType({r.id: r for r in ALL_RULES})

_RULE_DATUM = re.compile(r"\{([a-z_]+)\.(minimum|maximum|default)\}")


def stated(text: str | None) -> str:
    """``text`` (a docstring) with each ``{rule_id.minimum}``, ``{rule_id.maximum}`` and
    ``{rule_id.default}`` replaced by that rule's data: prose that states a bound derives it from
    the rule, as a rule's own ``text`` does (``help(SnapshotSessionArgs)`` follows a changed
    bound).  An unknown rule id raises ``KeyError`` when the docstring is filled, at import."""
    return _RULE_DATUM.sub(lambda m: str(getattr(RULES_BY_ID[m[1]], m[2])), text or "")


def is_ascii_digits(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits 0-9: the package's only "string of digits".

    ``str.isdigit`` also accepts other scripts' digits ("１２", "٣") and superscripts ("²"):
    ``int()`` turns the first into numbers that no Agora uid or code is written with, and raises on
    the second.  Use this instead of ``isdigit`` everywhere.
    """
    return text.isascii() and text.isdigit()


def vendor_by_name(name: str | int) -> Vendor | None:
    """Resolve a vendor given by Agora's code or by name/alias (``aws``, ``alibaba``, ``s3``...)."""
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return VENDORS.get(name)
    key = name.strip().lower()
    if is_ascii_digits(key):
        return VENDORS.get(int(key))
    for vendor in VENDORS.values():
        if key == vendor.name or key in vendor.aliases:
            return vendor
    return None


def file_name_prefix_length(segments: list[str] | tuple[str, ...]) -> int:
    """Characters of the joined prefix, slashes included (the 128 limit counts them, S3)."""
    return len("/".join(segments))
