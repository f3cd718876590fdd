"""``SnapshotSession``: one Agora Cloud Recording snapshot task as a Pulumi resource.

>>> session = SnapshotSession(
...     "lobby",
...     SnapshotSessionArgs(cname="lobby", uid="527841", storage=bucket.target,
...                         snapshot_config={"captureInterval": 5, "fileType": ["jpg"]}),
... )

The type token is ``pulumi-python:dynamic/agora:SnapshotSession``.  It and the resource name are
part of the URN: renaming either replaces the session unless an alias is given.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict

import pulumi
from pulumi import dynamic

from snapshot_resources import changes, rules
from snapshot_resources.provider import OUTPUT_KEYS, SnapshotSessionProvider
from snapshot_resources.spec import SessionSpec
from snapshot_resources.target import ExtensionParams, StorageTarget


class RecordingConfigArgsDict(TypedDict, total=False):
    """``recording_config``: Agora's ``recordingConfig`` keys, each optional and each a value or
    a ``pulumi.Input`` (``help(SnapshotSessionArgs)`` gives each rule): ``channelType``,
    ``streamTypes``, ``maxIdleTime``, ``videoStreamType``, ``decryptionMode`` (int); ``secret``
    and ``salt`` (str, secrets); the subscription lists ``subscribeVideoUids``,
    ``unsubscribeVideoUids``, ``subscribeAudioUids`` and ``unsubscribeAudioUids`` (uids as digit
    strings, or ``["#allstream#"]``), the blacklists also spelled ``unSubscribeVideoUids`` and
    ``unSubscribeAudioUids`` (not both spellings at once); ``subscribeUidGroup`` (int)."""

    channelType: pulumi.Input[int]
    streamTypes: pulumi.Input[int]
    maxIdleTime: pulumi.Input[int]
    videoStreamType: pulumi.Input[int]
    decryptionMode: pulumi.Input[int]
    secret: pulumi.Input[str]
    salt: pulumi.Input[str]
    subscribeVideoUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    unsubscribeVideoUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    subscribeAudioUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    unsubscribeAudioUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    unSubscribeVideoUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    unSubscribeAudioUids: pulumi.Input[Sequence[pulumi.Input[str | int]]]
    subscribeUidGroup: pulumi.Input[int]


class SnapshotConfigArgsDict(TypedDict, total=False):
    """``snapshot_config``: Agora's ``snapshotConfig`` keys, each optional (``captureInterval``
    {capture_interval.minimum} to {capture_interval.maximum}, ``fileType`` ``["jpg"]``)."""

    captureInterval: pulumi.Input[int]
    fileType: pulumi.Input[Sequence[pulumi.Input[str]]]


SnapshotConfigArgsDict.__doc__ = rules.stated(SnapshotConfigArgsDict.__doc__)


class StorageTargetArgsDict(TypedDict, total=False):
    """``storage`` written out by hand: Agora's ``storageConfig`` (``target.StorageTarget``), each
    value a value or a ``pulumi.Input`` (e.g. a key from another resource).  ``vendor``,
    ``region``, ``bucket``, ``accessKey`` and ``secretKey`` are required (rule
    storage_target); ``fileNamePrefix``, ``extensionParams``, ``stsToken`` and
    ``stsExpiration`` are optional.  Usually a storage component's ``target`` is passed
    instead."""

    vendor: pulumi.Input[int]
    region: pulumi.Input[int]
    bucket: pulumi.Input[str]
    accessKey: pulumi.Input[str]
    secretKey: pulumi.Input[str]
    fileNamePrefix: pulumi.Input[Sequence[pulumi.Input[str]]]
    extensionParams: pulumi.Input[ExtensionParams]
    stsToken: pulumi.Input[str]
    stsExpiration: pulumi.Input[int]


def snake_case(name: str) -> str:
    """``resourceId`` -> ``resource_id``: Pulumi's Python name of a camelCase property."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


_PROPERTIES: Final = (*rules.INPUT_KEYS, *OUTPUT_KEYS)
"""The resource's properties as the state keys them (camelCase, Agora's names)."""
PYTHON_NAMES: Final = {name: snake_case(name) for name in dict.fromkeys(_PROPERTIES)}
"""State key -> Python attribute (``resourceId`` -> ``resource_id``), Pulumi's convention."""
_PROPERTY_OF: Final = {python: name for name, python in PYTHON_NAMES.items()}
# Every key of every nested object, by its Python spelling: for paths in resource options
# ("snapshot_config.capture_interval" -> "snapshotConfig.captureInterval").
_NESTED_KEY_OF: Final = {snake_case(key): key for shape in rules.SHAPES
                         for key in shape.accepted_keys()}
_PATH_PART: Final = re.compile(r"(\[[^\]]*\]|[^.\[]+)")

# Outputs secret as a whole (rules.SECRET_WHOLE_INPUTS): the provider echoes its inputs, and the
# engine re-marks an output secret only where the input of the same path was (annotateSecrets;
# docs/engine.md, difference 1), so they are named here too. Nested secrets
# (rules.SECRET_NESTED_PATHS) are marked on the input leaf; the engine carries that mark into the
# output of the same path (tests/engine/test_engine_secrets.py proves it).
SECRET_OUTPUTS = list(rules.SECRET_WHOLE_INPUTS)


@dataclass
class SnapshotSessionArgs:
    """Inputs of a ``SnapshotSession``, in Agora's vocabulary (see ``spec.SessionSpec``).

    ``SnapshotSessionArgs(cname, uid, storage, app_id=None, recording_config=None,
    snapshot_config=None, region=None, resource_expired_hour=None, token=None)``

    Every field may be a plain value or a ``pulumi.Input`` (an ``Output`` of another resource).
    Nothing is checked here (``SnapshotSession`` only requires an App ID, raising ``ValueError``
    without one): the provider checks every field against ``rules.py`` during
    ``pulumi preview`` (offline, every problem at once, each reported as ``path: message (rule
    <id>; sources)``), and ``snapshot-resources validate`` checks a stack file the same way.  The
    rule ids below are keys of ``rules.RULES_BY_ID``.  "Replaces" means a change stops the task and
    starts a new one with a new ``sid``; "in place" means Agora's ``update`` (S5), same ``sid``.

    Fields (Python name -> resource input):
        cname (str) -> ``cname``: the RTC channel to take snapshots of; 1 to 63 bytes of
            ``a-z A-Z 0-9``, space and ``! # $ % & ( ) + - : ; < = . > ? @ [ ] ^ _ { } | ~ ,``
            (rule channel_name; S18, S7).  Required.  Replaces.
        uid (str) -> ``uid``: the recorder's own uid in the channel, a string of digits holding an
            integer from 1 to 4294967295 (rule recorder_uid; S2, S19).  It must not be a user's uid
            in the channel, so it may not appear in a subscription list (rule
            recorder_uid_subscribed; S2, S19); one task per channel and uid (rule unique_task; S7
            code 53).  Required.  Replaces.
        storage (StorageTarget | StorageTargetArgsDict) -> ``storage``: where the JPGs go, exactly Agora's
            ``storageConfig`` (``vendor`` and ``region`` codes, ``bucket``, ``accessKey``,
            ``secretKey``, optional ``fileNamePrefix``, ``extensionParams``, ``stsToken``,
            ``stsExpiration``); usually ``provision_storage(...).target`` or
            ``bring_your_own(...).target``.  Checked by rules storage_target, storage_vendor,
            storage_region, bucket_name, file_name_prefix (segments of letters and digits, at most
            128 characters joined), extension_sse, extension_tag, extension_endpoint and
            sts_fields (S3, S9, S14).  Secret as a whole.  Required.  ``accessKey``,
            ``secretKey``, ``stsToken`` and ``stsExpiration`` change in place; anything else
            replaces.
        app_id (str | None) -> ``appId``: the App ID of the channel; letters, digits, ``_`` and
            ``-``, at most 64 characters (rule app_id; S2).  Default None: the stack config
            ``agora:appId``.  Replaces.
        recording_config (RecordingConfigArgsDict | None) -> ``recordingConfig``: Agora's camelCase keys, each
            optional (default None: every default below):
            ``channelType`` 0 (communication) or 1 (live broadcasting), default 0 (rule
            channel_type; S3);
            ``streamTypes`` 1 (video) or 2 (audio and video), default 2 (rule stream_types; S3,
            S8, S17);
            ``maxIdleTime`` seconds without users before the task ends, {max_idle_time.minimum}
            to {max_idle_time.maximum}, default {max_idle_time.default} (rule max_idle_time; S3,
            S10);
            ``videoStreamType`` 0 (high) or 1 (low stream), default 0 (rule video_stream_type; S3);
            ``decryptionMode`` 0 (none) to 8, default 0 (rule decryption_mode; S3), with ``secret``
            required exactly when it is not 0 (rule decryption_secret) and ``salt``, Base64 of 32
            bytes, exactly for 7 and 8 (rule decryption_salt); both secret;
            ``subscribeVideoUids``, ``unsubscribeVideoUids``, ``subscribeAudioUids``,
            ``unsubscribeAudioUids``: 1 to 32 distinct uids (digit strings) or ``["#allstream#"]``
            (rule subscribe_list; S3, S5, S19); not a whitelist and a blacklist of one media type
            (rule subscribe_exclusive), audio lists only with a video list (rule
            audio_needs_video_list) and streamTypes 2 (rule audio_list_needs_audio_stream); the
            blacklists may also be spelled ``unSubscribe...Uids``, not both (rule
            blacklist_spelling; S3, G1, GH19).  Without a video list every video stream is
            subscribed (S15).  These four lists change in place;
            ``subscribeUidGroup`` 0 to 5, at least the group of the number of distinct subscribed
            uids; default derived from the lists, 0 with ``#allstream#`` (rule
            subscribe_uid_group; S2, S3).
            Any key other than the four lists replaces.
        snapshot_config (SnapshotConfigArgsDict | None) -> ``snapshotConfig``: ``captureInterval`` seconds
            between snapshots, an integer from {capture_interval.minimum} to
            {capture_interval.maximum}, default {capture_interval.default} (rule capture_interval; S2,
            S3, S17, G1, S8, S14); ``fileType`` must be ``["jpg"]``, the default (rule file_type;
            S3, S8).  Default None: both defaults.  Replaces.
        region (str | None) -> ``region``: the acquire service area, one of ``CN``, ``AP``,
            ``EU``, ``NA`` (rule acquire_region; S2, S17, S19).  Default None: not sent.  Replaces.
        resource_expired_hour (int | None) -> ``resourceExpiredHour``: hours the task's resource
            ID accepts query, update and stop after start, {resource_expired_hour.minimum} to
            {resource_expired_hour.maximum} (rule resource_expired_hour; S2, S17, S7).  Default
            None: {resource_expired_hour.default}, not Agora's 72 (the decision is in rules.py).
            Replaces.
        token (str | None) -> ``token``: an RTC token for the recorder uid in this channel and App
            ID, valid for at least one more hour (rules rtc_token, rtc_token_identity,
            rtc_token_lifetime; S3, S18).  Secret.  Default None: with ``agora:appCertificate``
            set the provider builds a 24-hour AccessToken2 at create; without it no token is sent
            (App Certificate off).  Replaces.

    A ``recordingFileConfig`` (recording + snapshots) is refused (rule
    recording_file_config_forbidden; S3, S8).
    """

    cname: pulumi.Input[str]
    uid: pulumi.Input[str]
    storage: pulumi.Input[StorageTarget] | pulumi.Input[StorageTargetArgsDict]
    app_id: pulumi.Input[str] | None = None
    recording_config: pulumi.Input[RecordingConfigArgsDict] | None = None
    snapshot_config: pulumi.Input[SnapshotConfigArgsDict] | None = None
    region: pulumi.Input[str] | None = None
    resource_expired_hour: pulumi.Input[int] | None = None
    token: pulumi.Input[str] | None = None

    @classmethod
    def from_spec(
        cls,
        spec: SessionSpec,
        storage: pulumi.Input[StorageTarget] | pulumi.Input[StorageTargetArgsDict],
        *,
        app_id: pulumi.Input[str] | None = None,
        token: pulumi.Input[str] | None = None,
        written: Mapping[str, Any] | None = None,
    ) -> SnapshotSessionArgs:
        """Args from a validated ``SessionSpec`` (as ``stack.deploy`` builds them).

        ``spec``: the session, as ``parse_session`` or ``parse_stack`` returned it.  ``storage``:
        its ``StorageTarget`` with the session's ``fileNamePrefix`` already appended.  ``app_id``
        and ``token``, when given, win over the spec's ``appId`` and ``token`` (e.g. the stack's
        ``agora:appId``, or the token wrapped as a Pulumi secret).  ``written`` is the mapping the
        spec was parsed from: only the keys the user wrote become inputs (with the spec's
        normalised values), so a default derived by the spec, such as ``subscribeUidGroup``, never
        turns a later subscription-list edit into a replacement; None takes every key of the spec.

        Returns the args; raises nothing (the spec is already valid).
        """
        data = resource_inputs(spec, written)
        return cls(
            cname=data["cname"],
            uid=data["uid"],
            storage=storage,
            app_id=app_id if app_id is not None else data.get("appId"),
            recording_config=data.get("recordingConfig"),
            snapshot_config=data.get("snapshotConfig"),
            region=data.get("region"),
            resource_expired_hour=data.get("resourceExpiredHour"),
            token=token if token is not None else data.get("token"),
        )

    def props(self) -> dict[str, Any]:
        """The resource's inputs as ``SnapshotSession`` registers them: Agora's camelCase keys,
        blacklists under their canonical spelling (rule blacklist_spelling), the secrets of
        ``rules.SECRET_PATHS`` wrapped as Pulumi secrets, and every output key present (None).

        Raises ``ValueError`` when neither ``app_id`` nor the stack config ``agora:appId`` is set.
        """
        app_id = self.app_id if self.app_id is not None else pulumi.Config("agora").get("appId")
        if app_id is None:
            raise ValueError(
                "SnapshotSession needs an App ID: pass app_id or set the stack config agora:appId"
            )
        props: dict[str, Any] = {
            "appId": app_id,
            "cname": self.cname,
            "uid": self.uid,
            "storage": self.storage,
            "recordingConfig": (
                rules.canonical_blacklists(self.recording_config)
                if isinstance(self.recording_config, Mapping) else self.recording_config
            ),
            "snapshotConfig": self.snapshot_config,
            "region": self.region,
            "resourceExpiredHour": self.resource_expired_hour,
            "token": self.token,
        }
        mark_secrets(props)
        # Declared outputs must exist as keys, or the attributes are missing (docs/pulumi-dynamic.md 4A).
        props.update({key: None for key in OUTPUT_KEYS})
        return props


SnapshotSessionArgs.__doc__ = rules.stated(SnapshotSessionArgs.__doc__)


def mark_secrets(props: dict[str, Any]) -> None:
    """Wrap every secret of ``props`` (a SnapshotSession's inputs) as a Pulumi secret, in place:
    the inputs of ``rules.SECRET_WHOLE_INPUTS`` as a whole, the leaves of
    ``rules.SECRET_NESTED_PATHS`` one by one. A leaf can be marked alone only inside a plain
    mapping; when its object is itself an Output, the whole object becomes secret (an Output is
    secret or not as a whole)."""
    for key in rules.SECRET_WHOLE_INPUTS:
        if props.get(key) is not None:
            props[key] = pulumi.Output.secret(props[key])
    for path in rules.SECRET_NESTED_PATHS:
        top, rest = path[0], path[1:]
        value = props.get(top)
        if isinstance(value, Mapping):
            props[top] = _with_secret_leaf(value, rest)
        elif value is not None:
            props[top] = pulumi.Output.from_input(value).apply(
                functools.partial(_with_secret_leaf, path=rest)
            )


def _with_secret_leaf(value: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(value, Mapping) or path[0] not in value or value[path[0]] is None:
        return value
    copied = dict(value)
    if len(path) == 1:
        copied[path[0]] = pulumi.Output.secret(copied[path[0]])
    else:
        copied[path[0]] = _with_secret_leaf(copied[path[0]], path[1:])
    return copied


def resource_inputs(spec: SessionSpec, written: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A spec's SnapshotSession inputs, limited to the keys (and nested keys) in ``written``.

    Defaults the spec fills in stay out of the inputs; the provider applies them when it builds the
    request. Otherwise a default that is derived from other values (``subscribeUidGroup`` from the
    subscribed uids) would change with a list edit and turn an in-place update into a replacement.
    """
    full = spec.resource_inputs()
    if written is None:
        return full
    inputs: dict[str, Any] = {}
    written = changes.canonical_inputs(written)  # either blacklist spelling was written
    for key, value in full.items():
        if key not in written:
            continue
        nested = written[key]
        if isinstance(value, dict) and isinstance(nested, Mapping):
            value = {k: v for k, v in value.items() if k in nested}
        inputs[key] = value
    return inputs


SESSION_MODULE: Final = "agora"
SESSION_TYPE: Final = f"pulumi-python:dynamic/{SESSION_MODULE}:SnapshotSession"
"""The resource type token of ``SnapshotSession`` (Pulumi's dynamic resources are typed
``pulumi-python:dynamic/<module>:<name>``); with the resource name it forms the URN."""


class SnapshotSession(dynamic.Resource, module=SESSION_MODULE, name="SnapshotSession"):
    r"""One Agora Cloud Recording snapshot task as a Pulumi resource: a JPG of each subscribed
    user's video every ``captureInterval`` seconds, uploaded to the session's storage.

    ``SnapshotSession(resource_name, args, opts=None)``

    Arguments:
        resource_name (str): the Pulumi logical name.  With the type token
            ``pulumi-python:dynamic/agora:SnapshotSession`` it forms the URN, so renaming it
            replaces the session (a new ``sid``) unless ``opts`` gives an alias.
        args (SnapshotSessionArgs): the inputs, in Agora's vocabulary: channel, recorder uid,
            storage, App ID, recordingConfig, snapshotConfig, region, resourceExpiredHour and
            token.  ``help(SnapshotSessionArgs)`` gives each field's type, allowed values,
            default and rule.
        opts (pulumi.ResourceOptions | None): Pulumi's resource options, merged over the two this
            resource always sets: ``additional_secret_outputs=["storage", "token"]`` and
            ``delete_before_replace=True`` (Agora refuses a second task on the same channel and
            recorder uid with code 53, S7).  Default None.

    What ``pulumi up``, ``refresh`` and ``destroy`` do:
        create: acquire and start (S2, S3), then query until the status is 4 or 5 (S10), for at
            most ``agora:startTimeout`` seconds (default 90).
        update in place (same ``sid``, Agora's update, S5): when only the subscription lists
            (``recordingConfig.subscribeVideoUids``, ``unsubscribeVideoUids``,
            ``subscribeAudioUids``, ``unsubscribeAudioUids``) or the storage keys
            (``storage.accessKey``, ``secretKey``, ``stsToken``, ``stsExpiration``) changed.
        replace (a new ``sid``; the old task is stopped first, so the series has a gap): any other
            change, e.g. captureInterval, channel, uid, App ID, region, resourceExpiredHour,
            maxIdleTime, streamTypes, bucket, prefix or token (``changes.classify``).  An
            unchanged session is replaced too once its resource ID expires within a quarter of
            ``resourceExpiredHour`` (at most 24 h), while it can still be stopped.
        refresh: query (S4).  A task that has ended (no users for ``maxIdleTime``, its token
            expired, stopped elsewhere) is dropped from the state with a message on stderr, and
            the next ``pulumi up`` starts a new one.  After the resource ID expired (433) the
            session is kept, with ``status`` None.
        delete: stop (S6) and return, without waiting for the task to leave the channel (only a
            replacement needs the channel and uid free: its create retries Agora's 53 task
            conflict caused by its own predecessor for at most ``agora:exitTimeout`` seconds,
            default 30).  A task that is already gone is not an error; after the resource ID
            expired the session is removed with a warning saying until when the task may still
            run.

    Outputs (``pulumi.Output`` attributes, named in Python's snake_case as in Pulumi's own
    packages, ``session.resource_id``; the state keeps Agora's camelCase names,
    ``resourceId``, so stacks deployed before are read unchanged; the inputs are echoed as
    outputs, ``session.recording_config`` ..., ``storage`` and ``token`` secret; the camelCase
    attributes of earlier versions still work, with a ``DeprecationWarning``):
        ``sid`` (str): Agora's recording id, returned by start (S3) and used as the resource's id.
            Kept by an update in place, new after a replacement.
        ``resource_id`` (``resourceId`` in the state; str): the resource ID acquire returned (S2);
            query, update and stop use it.
        ``status`` (int | None): the query status (S4) at the last create or refresh: 0 not
            started, 1-3 starting, 4 all components ready, 5 in progress (4 and 5 mean running,
            S10), 6-8 stopping and exited, 20 exited abnormally.  None when it could not be read
            (create recorded the task with a warning, or its resource ID expired).
        ``started_at`` (``startedAt`` in the state; str): ISO 8601 in UTC with milliseconds, e.g.
            ``2026-11-30T09:15:02.123Z``: when the task started capturing (query's
            ``sliceStartTime``), else when create recorded it.
        ``file_name_pattern`` (``fileNamePattern`` in the state; str): an anchored regular
            expression that matches the object key of every snapshot of this session, for any
            publisher uid, failover index (``bak<n>_``) and time (S8); for channel ``lobby`` and
            prefix ``["snaps"]``:
            ``^snaps/(bak[0-9]+_)?<sid>_lobby__uid_s_[0-9]+__uid_e_video_[0-9]{17}\.jpg$``. Written
            without syntax specific to Python, so it also works in JavaScript or Go
            (``naming.snapshot_pattern``).
        ``storage_location`` (``storageLocation`` in the state; dict): ``{"vendor": int, "bucket":
            str, "prefix": str}``: Agora's vendor code (rule storage_vendor; S9), the bucket, and
            ``fileNamePrefix`` joined with ``/`` (``""`` for none).  Not secret.
        ``token_expires_at`` (``tokenExpiresAt`` in the state; str | None): ISO 8601 in UTC, whole
            seconds, e.g. ``2026-12-01T09:15:02Z``: when the recorder's RTC token expires, and with
            it the session, since Cloud Recording cannot renew tokens (rule rtc_token_lifetime;
            S3). The given token's expiry, or 24 h after create for a token built from
            ``agora:appCertificate``.  When no token is sent (no App Certificate) or a given one
            cannot be read, the state has no ``tokenExpiresAt`` (Pulumi drops a None output) and
            the attribute resolves to None.
        ``resource_expires_at`` (``resourceExpiresAt`` in the state; str): ISO 8601 in UTC, whole
            seconds: ``resourceExpiredHour`` hours after start.  From then Agora answers query,
            update and stop for this task with 433 (rule resource_expired_hour; S2), so ``pulumi
            up`` replaces the session ahead of it (above).
    Errors:
        ``ValueError`` at construction, when ``args.app_id`` is None and the stack config
        ``agora:appId`` is not set.  Everything else is reported by the engine for this resource,
        not raised in the program: in ``pulumi preview``, one check failure per broken rule,
        ``path: message (rule <id>; sources)``; in ``pulumi up``, a failed create, update or
        delete: credentials not configured (``agora:customerId``, ``agora:customerSecret``),
        Agora's error after the retries Agora documents (``AgoraApiError``: 401, 400 code 53
        task conflict, 400 code 406 quota, 429 ...; S7, S10), or a started task known not to
        run (it exited, stayed gone past ``agora:failoverGrace``, or never reached status 4/5
        and was stopped).  A create that has a ``sid`` but could not confirm the task records it
        with a warning rather than fail (docs/decisions.md).

    Example::

        bucket = provision_storage("snaps", vendor="aws", region="eu-west-1",
                                   bucket="acme-snaps", retention_days=30)
        SnapshotSession("lobby", SnapshotSessionArgs(
            cname="lobby", uid="900001", storage=bucket.target,
            recording_config={"channelType": 1, "subscribeVideoUids": ["#allstream#"]},
            snapshot_config={"captureInterval": 10}))
    """

    sid: pulumi.Output[str]
    """Agora's recording id; also the resource id. A replacement gets a new one."""
    resource_id: pulumi.Output[str]
    """The resource ID from acquire (S2), used by query, update and stop (state: resourceId)."""
    status: pulumi.Output[int]
    """Query status at the last create/refresh: 4 or 5 = running (S10); None if unread."""
    started_at: pulumi.Output[str]
    """ISO 8601 UTC with milliseconds: when the task started capturing (state: startedAt)."""
    file_name_pattern: pulumi.Output[str]
    """A regular expression matching the object keys of this session's snapshots."""
    storage_location: pulumi.Output[dict[str, Any]]
    """``{"vendor": int, "bucket": str, "prefix": str}``; not secret (state: storageLocation)."""
    token_expires_at: pulumi.Output[str | None]
    """ISO 8601 UTC: when the recorder's RTC token, and so the session, ends; None without one
    (then the state has no tokenExpiresAt)."""
    resource_expires_at: pulumi.Output[str]
    """When Agora stops accepting query and stop for this task (``resourceExpiredHour`` after
    start, S2); `pulumi up` replaces the session ahead of it."""
    app_id: pulumi.Output[str]
    cname: pulumi.Output[str]
    uid: pulumi.Output[str]
    storage: pulumi.Output[dict[str, Any]]  # a StorageTarget (a TypedDict would be enforced by the SDK)
    region: pulumi.Output[str | None]
    resource_expired_hour: pulumi.Output[int | None]
    recording_config: pulumi.Output[dict[str, Any] | None]
    snapshot_config: pulumi.Output[dict[str, Any] | None]
    token: pulumi.Output[str | None]

    def translate_input_property(self, prop: str) -> str:
        """Pulumi's hook from a Python name to the property's name in the state
        (``snapshot_config`` -> ``snapshotConfig``), used for the props and for the names in
        ``ignore_changes``, ``replace_on_changes`` and ``additional_secret_outputs``.  A path
        (``recording_config.subscribe_video_uids``) is translated part by part; a name it does
        not know, or one already in camelCase, is returned as it is."""
        if "." not in prop and "[" not in prop:
            return _PROPERTY_OF.get(prop, prop)
        parts: list[str] = _PATH_PART.findall(prop)
        out = _PROPERTY_OF.get(parts[0], parts[0])
        for part in parts[1:]:
            out += part if part.startswith("[") else "." + _NESTED_KEY_OF.get(part, part)
        return out

    def translate_output_property(self, prop: str) -> str:
        """Pulumi's hook from a state key to the Python attribute (``resourceId`` ->
        ``resource_id``).  Only the resource's own property names are translated: the keys
        inside ``storage_location``, ``recording_config`` ... stay Agora's, as in the state."""
        return PYTHON_NAMES.get(prop, prop)

    def __init__(
        self,
        resource_name: str,
        args: SnapshotSessionArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declare the snapshot session ``resource_name``; ``pulumi up`` starts it.

        ``resource_name`` (str): the logical name, part of the URN.  ``args``
        (``SnapshotSessionArgs``): the inputs; every rule is checked in ``pulumi preview``.
        ``opts`` (``pulumi.ResourceOptions`` | None): merged over ``additional_secret_outputs=
        ["storage", "token"]`` and ``delete_before_replace=True``.  The outputs and what each
        change does are in the class docstring.

        Raises ``ValueError`` when ``args.app_id`` is None and ``agora:appId`` is not set.
        """
        secret_opts = pulumi.ResourceOptions(
            additional_secret_outputs=SECRET_OUTPUTS,
            # Same channel and recorder uid: the old task must stop before the new one starts (S7 53).
            delete_before_replace=True,
        )
        super().__init__(
            SnapshotSessionProvider(),
            resource_name,
            # Keyed by the Python names: the SDK names the attributes after the keys given here
            # and sends each key through translate_input_property (Pulumi's convention).
            {PYTHON_NAMES.get(key, key): value for key, value in args.props().items()},
            pulumi.ResourceOptions.merge(secret_opts, opts),
        )


def _deprecated_alias(python: str, name: str) -> property:
    def get(self: SnapshotSession) -> Any:
        warnings.warn(f"SnapshotSession.{name} is deprecated: use .{python} (Python attributes "
                      "are snake_case; the state keeps the camelCase key)", DeprecationWarning,
                      stacklevel=2)
        return getattr(self, python)

    return property(get, doc=f"Deprecated: the same as ``{python}``.")


for _name, _python in PYTHON_NAMES.items():
    if _name != _python:
        setattr(SnapshotSession, _name, _deprecated_alias(_python, _name))
