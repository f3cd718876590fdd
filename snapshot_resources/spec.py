"""The user-facing config: named storage targets and named snapshot sessions (pydantic models).

Public API::

    parse_stack(data, *, default_app_id=None) -> StackSpec        # raises SpecError (all problems)
    parse_session(data) -> SessionSpec                             # raises SpecError
    parse_storage(data) -> StorageSpec                             # raises SpecError
    stack_problems(data, *, default_app_id=None, is_unknown=None) -> list[Problem]
    session_problems(data, *, path=(), is_unknown=None) -> list[Problem]
    storage_target_problems(data, *, path=(), is_unknown=None) -> list[Problem]
    storage_target(storage, session_prefix=(), *, access_key=None, secret_key=None) -> StorageTarget
    is_secure_marker(value) -> bool                                # a Pulumi ``{secure: ...}`` value
    Problem(path, message, rule_id)      # .dotted_path, .rule; str(): "path: message (rule id; S..)"
    SpecError(problems)                  # Exception; .problems; str() = one problem per line
    StackSpec(storage: dict[str, StorageSpec], sessions: dict[str, StackSessionSpec])
    SessionSpec (.resource_inputs() -> the SnapshotSession inputs), StackSessionSpec(+ storage)
    StorageSpec (.vendorCode, .regionCode, .vendor_region properties)
    SECRET_FIELDS, SESSION_KEYS, STORAGE_KEYS, RESOURCE_INPUT_KEYS, dotted(path), show_value(...)

Keys are Agora's own camelCase vocabulary (docs/agora-api.md sections 2, 3, 9), so the field
names are mixedCase on purpose.  Every bound, enum and table comes from ``rules.py``.

How validation works (botocore's model, style.md): a checker walks the raw mapping once, collects
every problem with its dotted path and rule id, and builds the normalised values (names resolved to
codes, uids as digit strings, defaults filled).  Only when nothing is wrong are the pydantic models
built from those values; calling ``SessionSpec.model_validate(raw)`` directly runs the same checker.

Partial validation (the provider's ``check()`` during preview): pass ``is_unknown``, a predicate that
recognises a value not known yet (or a Pulumi secret marker in ``validate``).  Such a value counts as
present and valid, and every cross-field rule that depends on it is skipped.  The provider checks its
``storage`` input (a full ``StorageTarget``) with ``storage_target_problems(..., path=("storage",))``
and the other inputs with ``session_problems``.

Problem messages never contain the value of a secret field (``SECRET_FIELDS``).
"""

# ruff: noqa: N802, N815 -- Agora's camelCase keys are the public field names (see above).

from __future__ import annotations

import difflib
import enum
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from snapshot_resources import rules
from snapshot_resources.rules import Choice, IntRange, Pattern, Rule
from snapshot_resources.target import ExtensionParams as WireExtensionParams
from snapshot_resources.target import StorageTarget

Path = tuple[str | int, ...]
UnknownPredicate = Callable[[object], bool]

SECRET_FIELDS: Final = rules.SECRET_LEAVES
"""Keys whose values never appear in a message (CONTRIBUTING.md: secrets never in exception text)."""

SESSION_KEYS: Final = (
    "cname", "uid", "appId", "region", "resourceExpiredHour", "mode", "recordingConfig",
    "snapshotConfig", "fileNamePrefix", "token",
)
STACK_SESSION_KEYS: Final = (*SESSION_KEYS, "storage")
RESOURCE_INPUT_KEYS: Final = (
    "appId", "cname", "uid", "region", "resourceExpiredHour", "recordingConfig", "snapshotConfig",
    "token",
)
RECORDING_KEYS: Final = (
    "channelType", "streamTypes", "maxIdleTime", "videoStreamType", "decryptionMode", "secret",
    "salt", *rules.SUBSCRIBE_LIST_KEYS, "subscribeUidGroup",
)
SNAPSHOT_KEYS: Final = ("captureInterval", "fileType")
EXTENSION_KEYS: Final = ("sse", "tag", "endpoint")
STORAGE_KEYS: Final = (
    "vendor", "region", "bucket", "provision", "retentionDays", "fileNamePrefix", "extensionParams",
    "accessKey", "secretKey", "stsToken", "stsExpiration",
)
WIRE_STORAGE_KEYS: Final = tuple(k for k in STORAGE_KEYS if k not in ("provision", "retentionDays"))
STACK_KEYS: Final = ("storage", "sessions")

# Keys that are rejected with their own rule rather than as unknown.
SESSION_FORBIDDEN: Final = {"recordingFileConfig": rules.RECORDING_FILE_CONFIG_FORBIDDEN}
# The other accepted spelling of each blacklist (rules.BLACKLIST_SPELLING): a known key that the
# checker renames to the canonical one.
RECORDING_ACCEPTED_KEYS: Final = (*RECORDING_KEYS, *rules.BLACKLIST_ALIASES)


# --------------------------------------------------------------------------------------------------
# Problems


_REGIONS_SHOWN: Final = 30  # every table but the largest fits; longer lists are cut with a count


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def dotted(path: Path) -> str:
    """``("sessions", "lobby", "recordingConfig", "subscribeVideoUids", 3)`` ->
    ``sessions.lobby.recordingConfig.subscribeVideoUids[3]`` (botocore's key style)."""
    if not path:
        return "(document)"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part or not part.isprintable():
            # An empty key must not read as the document, nor a newline split the line.
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (path), what (message, never a secret value) and which rule.

    ``path`` (tuple of str and int): where in the input, e.g. ``("sessions", "lobby",
    "snapshotConfig", "captureInterval")``; ``dotted_path`` renders it
    ``sessions.lobby.snapshotConfig.captureInterval``.  ``message`` (str): what is wrong.
    ``rule_id`` (str): a key of ``rules.RULES_BY_ID``; ``rule`` is that ``Rule`` (``KeyError`` for
    an unknown id).  ``str()`` gives ``path: message (rule <id>; sources)``.
    """

    path: Path
    message: str
    rule_id: str

    @property
    def rule(self) -> Rule:
        return rules.RULES_BY_ID[self.rule_id]

    @property
    def dotted_path(self) -> str:
        return dotted(self.path)

    def __str__(self) -> str:
        cite = self.rule.cite() or "this tool's rule"
        return f"{self.dotted_path}: {self.message} (rule {self.rule_id}; {cite})"


class SpecError(Exception):
    """Every problem found in a config, reported together.  ``str()`` lists one per line.

    ``problems`` (iterable of ``Problem``): every broken rule, kept as the list ``.problems``.
    Raised by ``parse_stack``, ``parse_session``, ``parse_storage``, ``storage_target`` and the
    models' own validation (``SessionSpec.model_validate`` ...).
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def is_secure_marker(value: object) -> bool:
    """A Pulumi secret as written in a stack file: ``{secure: <ciphertext>}``."""
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and isinstance(value.get("secure"), str)
    )


# --------------------------------------------------------------------------------------------------
# The checker


class _S(enum.Enum):
    """Outcomes of reading one value besides the value itself."""

    ABSENT = "absent"  # not given and no default
    BAD = "bad"  # given but wrong (a problem was recorded)
    OPAQUE = "opaque"  # unknown or secret marker: present, not checkable


def _known(value: object) -> bool:
    return not isinstance(value, _S)


def show_value(key: str | int, value: object) -> str:
    """The value for a message, unless it is a secret's."""
    if key in SECRET_FIELDS:
        return f"of type {type(value).__name__}"
    # A mapping or list where a scalar belongs may hold a secret anywhere inside (a whole storage
    # target pasted into `vendor`): name its type and keys, never its contents.
    if isinstance(value, Mapping):
        # repr: a key may hold a newline, which would split a one-line problem.
        names = ", ".join(repr(str(k))[:24] for k in sorted(value, key=str)[:8])
        return f"a mapping (keys: {names})" if names else "an empty mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        # str() of an int over sys.get_int_max_str_digits() raises ValueError (Python 3.11), and
        # a very deep structure exceeds the recursion limit: describe instead of crashing.
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    options = list(choices)
    for option in options:  # a case slip is the likeliest typo (Agora is case-sensitive, S10)
        if option.lower() == word.lower():
            return option
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: object, known: Iterable[str]) -> str:
    text = f"{key!r} {rules.UNKNOWN_KEY.text}"
    hint = _suggest(str(key), known)
    return text + (f"; did you mean {hint!r}?" if hint else "")


def _uid_value(value: object) -> str | None:
    """A uid (int or digit string) as Agora's digit string, or None when it is not one (S2)."""
    if type(value) is float and value.is_integer():  # as in _Checker.integer
        value = int(value)
    if type(value) is int:
        return str(value) if 1 <= value <= rules.UID_MAX else None
    if isinstance(value, str) and rules.RECORDER_UID.matches(value) and int(value) <= rules.UID_MAX:
        return value
    return None


class _Checker:
    def __init__(self, is_unknown: UnknownPredicate | None, now: float | None = None) -> None:
        self.problems: list[Problem] = []
        self._is_unknown = is_unknown
        # Unix seconds the token rules compare expiries with (rules.RTC_TOKEN_LIFETIME).
        self.now = time.time() if now is None else now
        self.default_app_id: str | None = None

    # ---- recording problems

    def add(self, path: Path, rule: Rule, detail: str | None = None) -> None:
        message = rule.text if detail is None else f"{detail}; {rule.text}"
        self.problems.append(Problem(path, message, rule.id))

    def add_message(self, path: Path, rule: Rule, message: str) -> None:
        self.problems.append(Problem(path, message, rule.id))

    def opaque(self, value: object) -> bool:
        return self._is_unknown is not None and self._is_unknown(value)

    # ---- shapes

    def mapping(
        self,
        value: object,
        path: Path,
        known: Sequence[str] | None,
        forbidden: Mapping[str, Rule] | None = None,
        rule: Rule = rules.MAPPING,
    ) -> Mapping[str, object] | None:
        """The mapping if it is one (unknown keys reported unless ``known`` is None, which admits
        any key: the names of storage targets and sessions), None if it cannot be checked."""
        if self.opaque(value):
            return None
        if not isinstance(value, Mapping):
            # A storage target or recordingConfig given as text may be a serialized object
            # holding keys (json.dumps of a StorageTarget): name the type, not the value.
            hides = rule is rules.STORAGE_TARGET or path[-1:] == ("recordingConfig",)
            self.add(path, rule, f"is {show_value('secret' if hides else '', value)}")
            return None
        for key in value:
            if known is None or key in known:
                continue
            key_path = (*path, str(key))
            if forbidden is not None and key in forbidden:
                rule = forbidden[key]
                self.add(key_path, rule, None if rule.text.startswith("must") else "is not accepted")
            else:
                self.add_message(key_path, rules.UNKNOWN_KEY, unknown_key_message(key, known))
        return cast(Mapping[str, object], value)

    def get(self, obj: Mapping[str, object], key: str) -> object:
        value = obj.get(key, _S.ABSENT)
        return _S.OPAQUE if value is not _S.ABSENT and self.opaque(value) else value

    # ---- scalars

    def integer(
        self,
        obj: Mapping[str, object],
        key: str,
        path: Path,
        rule: IntRange | Choice,
        *,
        default: object = _S.ABSENT,
        required: bool = False,
    ) -> object:
        value = self.get(obj, key)
        p = (*path, key)
        if value is _S.ABSENT:
            if required:
                self.add(p, rule, "is required")
                return _S.BAD
            return default
        if value is _S.OPAQUE:
            return value
        # 5.0 is the integer 5, as JSON Schema's "integer" says and as Pulumi's wire sends it
        # (numbers are doubles there); 5.5 is not.
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            self.add(p, rule, f"is {show_value(key, value)}, not an integer")
            return _S.BAD
        if isinstance(rule, IntRange):
            if not rule.minimum <= value <= rule.maximum:
                self.add(p, rule, f"is {show_value(key, value)}")
                return _S.BAD
        elif value not in rule.values:
            self.add(p, rule, f"is {show_value(key, value)}")
            return _S.BAD
        return value

    def string(
        self,
        obj: Mapping[str, object],
        key: str,
        path: Path,
        rule: Rule,
        *,
        required: bool = False,
        pattern: Pattern | None = None,
        choices: Sequence[str] | None = None,
    ) -> object:
        value = self.get(obj, key)
        p = (*path, key)
        if value is _S.ABSENT:
            if required:
                self.add(p, rule, "is required")
                return _S.BAD
            return value
        if value is _S.OPAQUE:
            return value
        if not isinstance(value, str) or not value:
            self.add(p, rule, f"is {show_value(key, value)}, not a non-empty string")
            return _S.BAD
        if pattern is not None and not pattern.matches(value):
            self.add(p, rule, f"is {show_value(key, value)}")
            return _S.BAD
        if choices is not None and value not in choices:
            self.add(p, rule, f"is {show_value(key, value)}")
            return _S.BAD
        return value

    def boolean(self, obj: Mapping[str, object], key: str, path: Path, rule: Rule) -> object:
        value = self.get(obj, key)
        if value is _S.ABSENT:
            return False
        if value is _S.OPAQUE:
            return value
        if not isinstance(value, bool):
            self.add((*path, key), rule, f"is {show_value(key, value)}, not true or false")
            return _S.BAD
        return value

    # ---- lists

    def uid_list(self, obj: Mapping[str, object], key: str, path: Path) -> object:
        """A subscription list: 1..32 distinct uids or '#allstream#' alone (S3, S5, S19)."""
        value = self.get(obj, key)
        if not isinstance(value, list):
            if _known(value):
                self.add((*path, key), rules.SUBSCRIBE_LIST, f"is {show_value(key, value)}, not a list")
                return _S.BAD
            return value
        p = (*path, key)
        ok = True
        if not 1 <= len(value) <= rules.SUBSCRIBE_LIST_MAX:
            self.add(p, rules.SUBSCRIBE_LIST, f"has {len(value)} entries")
            ok = False
        out: list[str] = []
        for i, entry in enumerate(value):
            if self.opaque(entry):
                return _S.OPAQUE
            uid = rules.ALL_STREAMS if entry == rules.ALL_STREAMS else _uid_value(entry)
            if uid is None:
                self.add((*p, i), rules.SUBSCRIBE_LIST, f"is {show_value(key, entry)}")
                ok = False
            elif uid in out:
                self.add((*p, i), rules.SUBSCRIBE_LIST, f"repeats {uid!r}")
                ok = False
            else:
                out.append(uid)
        if ok and rules.ALL_STREAMS in out and len(out) > 1:
            self.add(p, rules.SUBSCRIBE_LIST, f"mixes {rules.ALL_STREAMS!r} with uids")
            ok = False
        return out if ok else _S.BAD

    def prefix(self, obj: Mapping[str, object], key: str, path: Path) -> object:
        """fileNamePrefix: segments of letters and digits, at most 128 characters joined (S3)."""
        value = self.get(obj, key)
        p = (*path, key)
        if not isinstance(value, list):
            if _known(value):
                self.add(p, rules.FILE_NAME_PREFIX, f"is {show_value(key, value)}, not a list")
                return _S.BAD
            return value
        if not value:
            self.add(p, rules.FILE_NAME_PREFIX, "is empty (leave it out for no prefix)")
            return _S.BAD
        ok = True
        for i, segment in enumerate(value):
            if self.opaque(segment):
                return _S.OPAQUE
            if not isinstance(segment, str) or not rules.FILE_NAME_PREFIX.matches(segment):
                self.add((*p, i), rules.FILE_NAME_PREFIX, f"is {show_value(key, segment)}")
                ok = False
        if ok and rules.file_name_prefix_length(value) > rules.FILE_NAME_PREFIX_MAX:
            length = rules.file_name_prefix_length(value)
            self.add(p, rules.FILE_NAME_PREFIX, f"is {length} characters joined")
            ok = False
        return list(value) if ok else _S.BAD

    # ---- objects

    def session(self, data: object, path: Path, *, stack: bool) -> dict[str, object] | None:
        obj = self.mapping(data, path, STACK_SESSION_KEYS if stack else SESSION_KEYS,
                           SESSION_FORBIDDEN)
        if obj is None:
            return None
        out: dict[str, object] = {
            "cname": self.string(obj, "cname", path, rules.CHANNEL_NAME, required=True,
                                 pattern=rules.CHANNEL_NAME),
            "uid": self.recorder_uid(obj, path),
            "appId": self.string(obj, "appId", path, rules.APP_ID, pattern=rules.APP_ID),
            "region": self.string(obj, "region", path, rules.ACQUIRE_REGION,
                                  choices=cast(Sequence[str], rules.ACQUIRE_REGION.values)),
            "resourceExpiredHour": self.integer(
                obj, "resourceExpiredHour", path, rules.RESOURCE_EXPIRED_HOUR,
                default=rules.RESOURCE_EXPIRED_HOUR.default),
            "mode": self.string(obj, "mode", path, rules.MODE,
                                choices=cast(Sequence[str], rules.MODE.values)),
            "recordingConfig": self.recording(obj.get("recordingConfig", {}),
                                              (*path, "recordingConfig")),
            "snapshotConfig": self.snapshot(obj.get("snapshotConfig", {}),
                                            (*path, "snapshotConfig")),
            "fileNamePrefix": self.prefix(obj, "fileNamePrefix", path),
            "token": self.string(obj, "token", path, rules.RTC_TOKEN),
        }
        if out["mode"] is _S.ABSENT:
            out["mode"] = rules.MODE.default
        self.recorder_not_subscribed(out, path)
        self.token_identity(out, path)
        if stack:
            out["storage"] = self.string(obj, "storage", path, rules.STORAGE_REFERENCE,
                                         required=True)
        return out

    def recorder_not_subscribed(self, out: dict[str, object], path: Path) -> None:
        """S2: the recorder's uid must not be a user's uid in the channel."""
        uid, recording = out["uid"], out["recordingConfig"]
        if not isinstance(uid, str) or not isinstance(recording, dict):
            return
        for key in rules.SUBSCRIBE_LIST_KEYS:
            uids = recording.get(key)
            if isinstance(uids, list) and uid in uids:
                self.add((*path, "recordingConfig", key), rules.RECORDER_UID_SUBSCRIBED,
                         f"holds the recorder's own uid {uid}")

    def token_identity(self, out: dict[str, object], path: Path) -> None:
        """A given AccessToken2 read without the certificate: built for this App ID, channel and
        uid, and valid long enough (rules.RTC_TOKEN_IDENTITY, rules.RTC_TOKEN_LIFETIME). The
        messages name what the token holds, never the token."""
        from snapshot_resources.agora import token as rtc_token

        value = out["token"]
        if not isinstance(value, str):
            return  # absent, or not known yet
        p = (*path, "token")
        if not value.startswith(rtc_token.TOKEN_VERSION):
            # The older AccessToken ("006"), or a format Agora adds later: passed unread.
            return
        try:
            parsed = rtc_token.parse_token(value)
        except ValueError:
            self.add(p, rules.RTC_TOKEN_IDENTITY, "is not a readable AccessToken2 token")
            return
        app = out["appId"] if isinstance(out["appId"], str) else self.default_app_id
        rtc = parsed.rtc
        if isinstance(app, str) and parsed.app_id != app:
            self.add(p, rules.RTC_TOKEN_IDENTITY, f"was built for App ID {parsed.app_id!r}, "
                     f"not {app!r}")
        if rtc is None:
            self.add(p, rules.RTC_TOKEN_IDENTITY, "has no RTC service")
        else:
            cname, uid = out["cname"], out["uid"]
            if isinstance(cname, str) and rtc.channel_name != cname:
                self.add(p, rules.RTC_TOKEN_IDENTITY, f"was built for channel "
                         f"{rtc.channel_name!r}, not {cname!r}")
            if isinstance(uid, str) and rtc.uid not in ("", uid):
                self.add(p, rules.RTC_TOKEN_IDENTITY, f"was built for uid {rtc.uid}, not the "
                         f"recorder uid {uid} (a publisher's token?)")
        expires = rtc_token.token_expires_at(value)
        if expires is None:
            return
        left = expires - self.now
        when = _utc(expires)
        if left <= 0:
            self.add(p, rules.RTC_TOKEN_LIFETIME, f"expired at {when}")
        elif left < rules.MIN_TOKEN_REMAINING_SECONDS:
            self.add(p, rules.RTC_TOKEN_LIFETIME, f"expires at {when}, in {int(left // 60)} min")

    def recorder_uid(self, obj: Mapping[str, object], path: Path) -> object:
        value = self.get(obj, "uid")
        if value is _S.ABSENT:
            self.add((*path, "uid"), rules.RECORDER_UID, "is required")
            return _S.BAD
        if value is _S.OPAQUE:
            return value
        uid = _uid_value(value)
        if uid is None:
            self.add((*path, "uid"), rules.RECORDER_UID, f"is {show_value('uid', value)}")
            return _S.BAD
        return uid

    def recording(self, data: object, path: Path) -> object:
        given = self.mapping(data, path, RECORDING_ACCEPTED_KEYS)
        if given is None:
            return _S.OPAQUE if self.opaque(data) else _S.BAD
        for alias, canonical in rules.BLACKLIST_ALIASES.items():
            if alias in given and canonical in given:
                self.add((*path, alias), rules.BLACKLIST_SPELLING, f"is set together with {canonical}")
        obj = rules.canonical_blacklists(given)
        out: dict[str, object] = {
            "channelType": self.integer(obj, "channelType", path, rules.CHANNEL_TYPE,
                                        default=rules.CHANNEL_TYPE.default),
            "streamTypes": self.integer(obj, "streamTypes", path, rules.STREAM_TYPES,
                                        default=rules.STREAM_TYPES.default),
            "maxIdleTime": self.integer(obj, "maxIdleTime", path, rules.MAX_IDLE_TIME,
                                        default=rules.MAX_IDLE_TIME.default),
            "videoStreamType": self.integer(obj, "videoStreamType", path, rules.VIDEO_STREAM_TYPE,
                                            default=rules.VIDEO_STREAM_TYPE.default),
            "decryptionMode": self.integer(obj, "decryptionMode", path, rules.DECRYPTION_MODE,
                                           default=rules.DECRYPTION_MODE.default),
            "secret": self.string(obj, "secret", path, rules.DECRYPTION_SECRET),
            "salt": self.salt(obj, path),
        }
        for key in rules.SUBSCRIBE_LIST_KEYS:
            out[key] = self.uid_list(obj, key, path)
        out["subscribeUidGroup"] = self.integer(obj, "subscribeUidGroup", path,
                                                rules.SUBSCRIBE_UID_GROUP)
        self.recording_cross(out, path)
        return out

    def salt(self, obj: Mapping[str, object], path: Path) -> object:
        value = self.string(obj, "salt", path, rules.DECRYPTION_SALT)
        if isinstance(value, str) and not re.fullmatch(rules.SALT_REGEX, value):
            # The value is a secret: say what is wrong without showing it.
            self.add((*path, "salt"), rules.DECRYPTION_SALT,
                     f"is not Base64 of {rules.SALT_BYTES} bytes")
            return _S.BAD
        return value

    def recording_cross(self, out: dict[str, object], path: Path) -> None:
        mode = out["decryptionMode"]
        if _known(mode):
            # S3: secret required when decryptionMode != 0; salt for modes 7 and 8.
            if mode != 0 and out["secret"] is _S.ABSENT:
                self.add((*path, "secret"), rules.DECRYPTION_SECRET,
                         f"is required with decryptionMode {mode}")
            if mode == 0 and out["secret"] is not _S.ABSENT:
                self.add((*path, "secret"), rules.DECRYPTION_SECRET,
                         "must not be set with decryptionMode 0")
            if mode in rules.SALT_MODES and out["salt"] is _S.ABSENT:
                self.add((*path, "salt"), rules.DECRYPTION_SALT,
                         f"is required with decryptionMode {mode}")
            if mode not in rules.SALT_MODES and out["salt"] is not _S.ABSENT:
                self.add((*path, "salt"), rules.DECRYPTION_SALT,
                         f"must not be set with decryptionMode {mode}")
        given = {k for k in rules.SUBSCRIBE_LIST_KEYS if out[k] is not _S.ABSENT}
        for white, black in (rules.VIDEO_LIST_KEYS, rules.AUDIO_LIST_KEYS):
            if white in given and black in given:
                self.add((*path, black), rules.SUBSCRIBE_EXCLUSIVE, f"is set together with {white}")
        if "subscribeAudioUids" in given and "subscribeVideoUids" not in given:
            self.add((*path, "subscribeAudioUids"), rules.AUDIO_NEEDS_VIDEO_LIST,
                     "is set without subscribeVideoUids")
        if "unsubscribeAudioUids" in given and not given & set(rules.VIDEO_LIST_KEYS):
            self.add((*path, "unsubscribeAudioUids"), rules.AUDIO_NEEDS_VIDEO_LIST,
                     "is set without a video list")
        stream_types = out["streamTypes"]
        if _known(stream_types) and stream_types != 2:
            for key in sorted(given & set(rules.AUDIO_LIST_KEYS)):
                self.add((*path, key), rules.AUDIO_LIST_NEEDS_AUDIO_STREAM,
                         f"is set with streamTypes {stream_types}")
        self.uid_group(out, path)

    def uid_group(self, out: dict[str, object], path: Path) -> None:
        lists = [out["subscribeVideoUids"], out["subscribeAudioUids"]]
        if not all(isinstance(v, list) or v is _S.ABSENT for v in lists):
            if out["subscribeUidGroup"] is _S.ABSENT:
                out["subscribeUidGroup"] = _S.OPAQUE
            return
        uids = {u for v in lists if isinstance(v, list) for u in v if u != rules.ALL_STREAMS}
        needed = rules.uid_group_for(len(uids))
        group = out["subscribeUidGroup"]
        most = rules.SUBSCRIBE_UID_GROUPS[-1][2]
        p = (*path, "subscribeUidGroup")
        if len(uids) > most:
            self.add(p, rules.SUBSCRIBE_UID_GROUP, f"{len(uids)} distinct uids exceed {most}")
        elif group is _S.ABSENT:
            out["subscribeUidGroup"] = needed  # derived (rules.SUBSCRIBE_UID_GROUP decision)
        elif isinstance(group, int) and group < needed:
            self.add(p, rules.SUBSCRIBE_UID_GROUP,
                     f"is {group} but {len(uids)} distinct uids need at least {needed}")

    def snapshot(self, data: object, path: Path) -> object:
        obj = self.mapping(data, path, SNAPSHOT_KEYS)
        if obj is None:
            return _S.OPAQUE if self.opaque(data) else _S.BAD
        out: dict[str, object] = {
            "captureInterval": self.integer(obj, "captureInterval", path, rules.CAPTURE_INTERVAL,
                                            default=rules.CAPTURE_INTERVAL.default),
            "fileType": [rules.FILE_TYPE.default],
        }
        value = self.get(obj, "fileType")
        if value is _S.OPAQUE or (isinstance(value, list) and any(self.opaque(v) for v in value)):
            out["fileType"] = _S.OPAQUE  # an entry not known yet (preview): cannot compare
        elif value is not _S.ABSENT and value != list(rules.FILE_TYPE.values):
            self.add((*path, "fileType"), rules.FILE_TYPE, f"is {show_value('fileType', value)}")
            out["fileType"] = _S.BAD
        return out

    def storage(self, data: object, path: Path, *, wire: bool) -> dict[str, object] | None:
        obj = self.mapping(data, path, WIRE_STORAGE_KEYS if wire else STORAGE_KEYS,
                           rule=rules.STORAGE_TARGET if wire else rules.MAPPING)
        if obj is None:
            return None
        vendor, vendor_code = self.vendor(obj, path, wire=wire)
        out: dict[str, object] = {"vendor": vendor}
        # The codes are not stored: StorageSpec resolves them again from the names (properties).
        out["region"], _region_code = self.region(obj, path, vendor_code, wire=wire)
        out["bucket"] = self.bucket(obj, path, vendor_code)
        provision = False if wire else self.provision(obj, path, vendor_code, out)
        out["fileNamePrefix"] = self.prefix(obj, "fileNamePrefix", path)
        out["extensionParams"] = self.extension(obj, path, vendor_code)
        for key in ("accessKey", "secretKey"):
            value = self.string(obj, key, path, rules.STORAGE_CREDENTIALS)
            out[key] = value
            if provision is True and value is not _S.ABSENT:
                self.add((*path, key), rules.STORAGE_CREDENTIALS, "must not be set with provision")
            if provision is False and value is _S.ABSENT:
                self.add((*path, key), rules.STORAGE_CREDENTIALS, "is required")
        self.sts(obj, path, vendor_code, out)
        return out

    def provision(
        self, obj: Mapping[str, object], path: Path, vendor_code: object, out: dict[str, object]
    ) -> object:
        provision = out["provision"] = self.boolean(obj, "provision", path, rules.PROVISION)
        if provision is True and isinstance(vendor_code, int) and (
            vendor_code not in rules.PROVISION_VENDORS
        ):
            self.add((*path, "provision"), rules.PROVISION,
                     f"is not supported for {rules.VENDORS[vendor_code].name}")
        out["retentionDays"] = self.integer(obj, "retentionDays", path, rules.RETENTION_DAYS,
                                            default=rules.RETENTION_DAYS.default)
        if provision is False and "retentionDays" in obj:
            self.add((*path, "retentionDays"), rules.RETENTION_DAYS, "is set without provision")
        return provision

    def vendor(self, obj: Mapping[str, object], path: Path, *, wire: bool) -> tuple[object, object]:
        value = self.get(obj, "vendor")
        p = (*path, "vendor")
        if value is _S.ABSENT:
            self.add(p, rules.STORAGE_VENDOR, "is required")
            return _S.BAD, _S.BAD
        if value is _S.OPAQUE:
            return value, value
        found = None
        if type(value) is int or (isinstance(value, str) and not wire):
            found = rules.vendor_by_name(value)
        if found is None:
            names = [n for v in rules.VENDORS.values() for n in (v.name, *v.aliases)]
            hint = _suggest(value, names) if isinstance(value, str) else None
            self.add(p, rules.STORAGE_VENDOR, f"is {show_value('vendor', value)}"
                     + (f" (did you mean {hint!r}?)" if hint else ""))
            return _S.BAD, _S.BAD
        return value, found.code

    def region(
        self, obj: Mapping[str, object], path: Path, vendor_code: object, *, wire: bool
    ) -> tuple[object, object]:
        value = self.get(obj, "region")
        p = (*path, "region")
        vendor = rules.VENDORS[vendor_code] if isinstance(vendor_code, int) else None
        if value is _S.ABSENT:
            if vendor is not None and vendor.any_region and not wire:
                return _S.ABSENT, 0  # Azure, Google, S3-compatible: region 0 (S9)
            self.add(p, rules.STORAGE_REGION, "is required")
            return _S.BAD, _S.BAD
        if value is _S.OPAQUE:
            return value, value
        if type(value) is not int and (wire or not isinstance(value, str)):
            self.add(p, rules.STORAGE_REGION, f"is {show_value('region', value)}, not "
                     + ("an integer" if wire else "a code or a name"))
            return _S.BAD, _S.BAD
        if vendor is None:
            return value, _S.BAD
        code = vendor.region_code(value)
        if code is None:
            names = list(vendor.region_names())
            hint = _suggest(value, names) if isinstance(value, str) else None
            if hint:
                known = f"; did you mean {hint!r}?"
            else:  # nothing close: say what the table holds, so the user need not look it up
                shown = ", ".join(names[:_REGIONS_SHOWN])
                more = f" and {len(names) - _REGIONS_SHOWN} more" if len(names) > _REGIONS_SHOWN else ""
                known = f"; its regions: {shown}{more} (or Agora's codes)"
            self.add(p, rules.STORAGE_REGION, f"{show_value('region', value)} is not in the region "
                     f"table of {vendor.title} (vendor {vendor.code}){known}")
            return _S.BAD, _S.BAD
        return value, code

    def bucket(self, obj: Mapping[str, object], path: Path, vendor_code: object) -> object:
        value = self.string(obj, "bucket", path, rules.BUCKET_NAME, required=True)
        if isinstance(value, str) and isinstance(vendor_code, int):
            naming = rules.VENDORS[vendor_code].bucket
            if not naming.matches(value):
                self.add_message((*path, "bucket"), rules.BUCKET_NAME,
                                 f"is {show_value('bucket', value)}; {rules.BUCKET_NAME.text}: "
                                 f"{naming.text}")
                return _S.BAD
        return value

    def extension(self, obj: Mapping[str, object], path: Path, vendor_code: object) -> object:
        value = obj.get("extensionParams", _S.ABSENT)
        p = (*path, "extensionParams")
        given: dict[str, object] = {}
        if value is not _S.ABSENT:
            ext = self.mapping(value, p, EXTENSION_KEYS)
            if ext is None:
                return _S.OPAQUE if self.opaque(value) else _S.BAD
            given = {
                "sse": self.string(ext, "sse", p, rules.EXTENSION_SSE,
                                   choices=rules.SSE_VALUES),
                "tag": self.string(ext, "tag", p, rules.EXTENSION_TAG),
                "endpoint": self.string(ext, "endpoint", p, rules.EXTENSION_ENDPOINT,
                                        pattern=rules.EXTENSION_ENDPOINT),
            }
        if isinstance(vendor_code, int):
            for key, rule, vendors in (
                ("sse", rules.EXTENSION_SSE, rules.SSE_VENDORS),
                ("tag", rules.EXTENSION_TAG, rules.TAG_VENDORS),
                ("endpoint", rules.EXTENSION_ENDPOINT, rules.ENDPOINT_VENDORS),
            ):
                if given.get(key, _S.ABSENT) is not _S.ABSENT and vendor_code not in vendors:
                    self.add((*p, key), rule, f"is set for vendor {vendor_code}")
            if vendor_code in rules.ENDPOINT_VENDORS and given.get("endpoint", _S.ABSENT) is (
                _S.ABSENT
            ):
                self.add((*p, "endpoint"), rules.EXTENSION_ENDPOINT,
                         f"is required for vendor {vendor_code}")
        return given if value is not _S.ABSENT else _S.ABSENT

    def sts(
        self, obj: Mapping[str, object], path: Path, vendor_code: object, out: dict[str, object]
    ) -> None:
        token = out["stsToken"] = self.string(obj, "stsToken", path, rules.STS_FIELDS)
        expiration = out["stsExpiration"] = self.integer(
            obj, "stsExpiration", path, _STS_EXPIRATION)
        if (token is _S.ABSENT) != (expiration is _S.ABSENT):
            missing = "stsExpiration" if expiration is _S.ABSENT else "stsToken"
            other = "stsToken" if missing == "stsExpiration" else "stsExpiration"
            self.add((*path, missing), rules.STS_FIELDS, f"is required with {other}")
        if isinstance(vendor_code, int) and vendor_code not in rules.STS_VENDORS:
            for key, value in (("stsToken", token), ("stsExpiration", expiration)):
                if value is not _S.ABSENT:
                    self.add((*path, key), rules.STS_FIELDS, f"is set for vendor {vendor_code}")

    def stack(self, data: object, default_app_id: str | None) -> dict[str, object] | None:
        self.default_app_id = default_app_id
        obj = self.mapping(data, (), STACK_KEYS)
        if obj is None:
            return None
        storage: dict[str, object] = {}
        storage_data = obj.get("storage", {})
        storage_map = self.mapping(storage_data, ("storage",), None)
        for name, entry in (storage_map or {}).items():
            if self.name_ok(name, ("storage",)):
                storage[name] = self.storage(entry, ("storage", name), wire=False)
        sessions: dict[str, object] = {}
        sessions_map = self.mapping(obj.get("sessions", {}), ("sessions",), None)
        for name, entry in (sessions_map or {}).items():
            if self.name_ok(name, ("sessions",)):
                sessions[name] = self.session(entry, ("sessions", name), stack=True)
        self.stack_cross(storage if storage_map is not None else None, sessions, default_app_id)
        return {"storage": storage, "sessions": sessions}

    def name_ok(self, name: object, path: Path) -> bool:
        if isinstance(name, str) and name:
            return True
        self.add((*path, str(name)), rules.MAPPING, "has a name that is not a non-empty string")
        return False

    def stack_cross(
        self,
        storage: dict[str, object] | None,
        sessions: dict[str, object],
        default_app_id: str | None,
    ) -> None:
        tasks: dict[tuple[object, str, str], str] = {}
        self.recorders_not_subscribed_by_others(sessions, default_app_id)
        for name, session in sessions.items():
            if not isinstance(session, dict):
                continue
            path: Path = ("sessions", name)
            ref = session["storage"]
            target = None
            if isinstance(ref, str) and storage is not None:
                target = storage.get(ref)
                if ref not in storage:
                    hint = _suggest(ref, storage)
                    self.add((*path, "storage"), rules.STORAGE_REFERENCE,
                             f"names {show_value('storage', ref)}, which is not declared"
                             + (f" (did you mean {hint!r}?)" if hint else ""))
            self.combined_prefix(target, session, path)
            # S7 code 53: one task per appid + cname + uid (S2).
            app = session["appId"] if session["appId"] is not _S.ABSENT else default_app_id
            cname, uid = session["cname"], session["uid"]
            if isinstance(cname, str) and isinstance(uid, str) and _known(app):
                first = tasks.setdefault((app, cname, uid), name)
                if first != name:
                    self.add((*path, "uid"), rules.UNIQUE_TASK,
                             f"session {first!r} already records channel {cname!r} as uid {uid}")

    def recorders_not_subscribed_by_others(
        self, sessions: dict[str, object], default_app_id: str | None
    ) -> None:
        """A recorder uid in another session's lists on the same channel is a user's uid there
        from that recorder's point of view (S2), and recorders publish nothing to capture."""
        recorders: dict[tuple[object, object, object], str] = {}
        for name, session in sessions.items():
            if isinstance(session, dict):
                app = session["appId"] if session["appId"] is not _S.ABSENT else default_app_id
                recorders.setdefault((app, session["cname"], session["uid"]), name)
        for name, session in sessions.items():
            if not isinstance(session, dict) or not isinstance(session["recordingConfig"], dict):
                continue
            app = session["appId"] if session["appId"] is not _S.ABSENT else default_app_id
            for key in rules.SUBSCRIBE_LIST_KEYS:
                uids = session["recordingConfig"].get(key)
                for uid in uids if isinstance(uids, list) else ():
                    other = recorders.get((app, session["cname"], uid))
                    if other is not None and other != name:
                        self.add(("sessions", name, "recordingConfig", key),
                                 rules.RECORDER_UID_SUBSCRIBED,
                                 f"holds uid {uid}, the recorder of session {other!r}")

    def combined_prefix(self, target: object, session: dict[str, object], path: Path) -> None:
        own = session["fileNamePrefix"]
        base = target.get("fileNamePrefix") if isinstance(target, dict) else _S.ABSENT
        if isinstance(own, list) and isinstance(base, list):
            length = rules.file_name_prefix_length([*base, *own])
            if length > rules.FILE_NAME_PREFIX_MAX:
                self.add((*path, "fileNamePrefix"), rules.FILE_NAME_PREFIX,
                         f"makes {length} characters joined with the storage prefix")


_STS_EXPIRATION = IntRange(
    id=rules.STS_FIELDS.id, path="stsExpiration", text=rules.STS_FIELDS.text + " (Unix seconds)",
    sources=rules.STS_FIELDS.sources, minimum=0, maximum=2**64 - 1,
)  # stsExpiration is Unix seconds, stored as uint64 (S2, S5).


# --------------------------------------------------------------------------------------------------
# Models

_CHECKED: Final = "snapshot_resources.spec.checked"


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    """Normalised values for a model: absent keys dropped (the model's defaults apply)."""
    return {
        k: _clean(cast(Mapping[str, object], v)) if isinstance(v, dict) else v
        for k, v in values.items()
        if v is not _S.ABSENT
    }


def _int_default(rule: IntRange | Choice) -> int:
    assert isinstance(rule.default, int)
    return rule.default


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def _checked(cls, values: Mapping[str, object]) -> Any:
        return cls.model_validate(_clean(values), context={_CHECKED: True})


def _was_checked(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(_CHECKED))


class RecordingConfig(_Model):
    """``recordingConfig`` for a snapshot task (docs/agora-api.md section 3.4)."""

    channelType: int = _int_default(rules.CHANNEL_TYPE)
    streamTypes: int = _int_default(rules.STREAM_TYPES)
    maxIdleTime: int = _int_default(rules.MAX_IDLE_TIME)
    videoStreamType: int = _int_default(rules.VIDEO_STREAM_TYPE)
    decryptionMode: int = _int_default(rules.DECRYPTION_MODE)
    secret: str | None = Field(default=None, repr=False)
    salt: str | None = Field(default=None, repr=False)
    subscribeVideoUids: list[str] | None = None
    unsubscribeVideoUids: list[str] | None = None
    subscribeAudioUids: list[str] | None = None
    unsubscribeAudioUids: list[str] | None = None
    subscribeUidGroup: int = _int_default(rules.SUBSCRIBE_UID_GROUP)


class SnapshotConfig(_Model):
    """``snapshotConfig`` (docs/agora-api.md section 3.5)."""

    captureInterval: int = _int_default(rules.CAPTURE_INTERVAL)
    fileType: list[str] = Field(default_factory=lambda: [str(rules.FILE_TYPE.default)])


class SessionSpec(_Model):
    """One snapshot session: acquire + start parameters (docs/agora-api.md sections 2 and 3).

    Fields, Agora's camelCase keys (build with ``parse_session``, which raises ``SpecError`` with
    every problem; frozen; an unknown key is refused, rule unknown_key):
    ``cname`` (str): the channel, 1 to 63 bytes of the allowed characters (rule channel_name;
    S18).  ``uid`` (str): the recorder uid, digits, 1 to 4294967295 (rules recorder_uid,
    recorder_uid_subscribed; S2).  ``appId`` (str | None): the App ID; None for the stack's
    ``agora:appId`` (rule app_id; S2).  ``region`` (str | None): the acquire area CN, AP, EU or NA
    (rule acquire_region; S2).  ``resourceExpiredHour`` (int): 1 to 720 hours, default 720 (rule
    resource_expired_hour; S2).  ``mode`` (str): always ``"individual"`` (rule mode; S3, S8).
    ``recordingConfig`` (``RecordingConfig``): channelType, streamTypes, maxIdleTime,
    videoStreamType, decryptionMode, secret, salt, the four subscription lists and
    subscribeUidGroup, with defaults filled (``help(SnapshotSessionArgs)`` gives each; S3).
    ``snapshotConfig`` (``SnapshotConfig``): captureInterval 5 to 3600 s, default 10 (rule
    capture_interval), and fileType ``["jpg"]`` (rule file_type; S3, S8).  ``fileNamePrefix`` (list
    of str | None): the session's own prefix segments, appended to its storage's (rule
    file_name_prefix; S3).  ``token`` (str | None): the recorder's RTC token, secret (rules
    rtc_token, rtc_token_identity, rtc_token_lifetime; S3).
    """

    cname: str
    uid: str
    appId: str | None = None
    region: str | None = None
    resourceExpiredHour: int = _int_default(rules.RESOURCE_EXPIRED_HOUR)
    mode: str = str(rules.MODE.default)
    recordingConfig: RecordingConfig = Field(default_factory=RecordingConfig)
    snapshotConfig: SnapshotConfig = Field(default_factory=SnapshotConfig)
    fileNamePrefix: list[str] | None = None
    token: str | None = Field(default=None, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any, info: ValidationInfo) -> Any:
        if _was_checked(info):
            return data
        return _run(lambda c: c.session(data, (), stack=issubclass(cls, StackSessionSpec)))

    def resource_inputs(self) -> dict[str, Any]:
        """The SnapshotSession inputs this spec gives (CONTRIBUTING.md): Agora's keys, normalised
        and with defaults filled, unset optional keys left out.  Not included: ``storage`` (the
        caller's StorageTarget, with ``fileNamePrefix`` already joined) and ``mode`` (always
        individual)."""
        data = self.model_dump(
            exclude_none=True, include=set(RESOURCE_INPUT_KEYS) & set(type(self).model_fields)
        )
        return {k: data[k] for k in RESOURCE_INPUT_KEYS if k in data}


class StackSessionSpec(SessionSpec):
    """A session in a stack file: a ``SessionSpec`` plus the name of its storage target.

    Fields: those of ``SessionSpec`` (``cname``, ``uid``, ``appId``, ``region``,
    ``resourceExpiredHour``, ``mode``, ``recordingConfig``, ``snapshotConfig``, ``fileNamePrefix``,
    ``token``; see there), and ``storage`` (str): the name of an entry under the stack's
    ``storage`` (rule storage_reference).  Built by ``parse_stack``.
    """

    storage: str


class ExtensionParamsSpec(_Model):
    sse: str | None = None
    tag: str | None = None
    endpoint: str | None = None


class StorageSpec(_Model):
    """A named storage target (docs/agora-api.md section 3.6 and 9), given by the vendor's own names.

    Fields (build with ``parse_storage``, which raises ``SpecError`` with every problem):
    ``vendor`` (int | str): Agora's code or a name or alias, e.g. ``1``, ``"aws"``, ``"gcp"``
    (rule storage_vendor; S9).  ``region`` (int | str | None): the vendor's region id
    (``us-east-1``), Agora's label or Agora's code; for Azure, Google and S3-compatible storage
    the location (rule storage_region; S9).  ``bucket`` (str): by the vendor's naming rules (rule
    bucket_name).  ``provision`` (bool): create the bucket and an upload-only key, default False
    (rule provision; vendors 1, 2, 3, 5, 6, 7).  ``retentionDays`` (int): days a provisioned
    bucket keeps snapshots, at least 1, default 30, only with provision (rule retention_days).
    ``fileNamePrefix`` (list of str | None): segments of letters and digits, at most 128
    characters joined (rule file_name_prefix; S3).  ``extensionParams``: ``sse``, ``tag`` and
    ``endpoint``, or None (rules extension_sse, extension_tag, extension_endpoint).
    ``accessKey`` and ``secretKey`` (str | None): required unless provision, absent with it (rule
    storage_credentials); secrets.  ``stsToken`` (str | None, secret) and ``stsExpiration`` (int |
    None, Unix seconds): together, vendors 1, 2 and 3 only (rule sts_fields; S5, S14).
    The properties ``vendorCode``, ``regionCode`` and ``vendor_region`` give the resolved codes and
    the vendor's region id.
    """

    vendor: int | str
    region: int | str | None = None
    bucket: str
    provision: bool = False
    retentionDays: int = _int_default(rules.RETENTION_DAYS)
    fileNamePrefix: list[str] | None = None
    extensionParams: ExtensionParamsSpec | None = None
    accessKey: str | None = Field(default=None, repr=False)
    secretKey: str | None = Field(default=None, repr=False)
    stsToken: str | None = Field(default=None, repr=False)
    stsExpiration: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any, info: ValidationInfo) -> Any:
        if _was_checked(info):
            return data
        return _run(lambda c: c.storage(data, (), wire=False))

    @property
    def vendorCode(self) -> int:
        """Agora's vendor code (rules.VENDORS)."""
        vendor = rules.vendor_by_name(self.vendor)
        assert vendor is not None  # checked at validation
        return vendor.code

    @property
    def regionCode(self) -> int:
        """Agora's region code in the vendor's table (0 for Azure, Google, S3-compatible)."""
        vendor = rules.VENDORS[self.vendorCode]
        code = 0 if self.region is None else vendor.region_code(self.region)
        assert code is not None  # checked at validation
        return code

    @property
    def vendor_region(self) -> str | None:
        """The vendor's own region id (``us-east-1``, ``cn-beijing``) for provisioning; for
        Azure, Google and S3-compatible storage the region as given (None when not given)."""
        vendor = rules.VENDORS[self.vendorCode]
        if vendor.any_region:
            return None if self.region is None else str(self.region)
        return vendor.regions[self.regionCode][1]


class StackSpec(_Model):
    """A stack file's ``storage`` and ``sessions`` (CONTRIBUTING.md, user-facing config).

    ``storage`` (dict of str to ``StorageSpec``) and ``sessions`` (dict of str to
    ``StackSessionSpec``), by name; both empty by default.  Built by ``parse_stack``, which also
    checks the rules across entries: each session's storage exists (rule storage_reference), no two
    sessions share a channel and recorder uid (rules unique_task, recorder_uid_subscribed; S7), and
    each joined prefix stays within 128 characters (rule file_name_prefix).
    """

    storage: dict[str, StorageSpec] = Field(default_factory=dict)
    sessions: dict[str, StackSessionSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any, info: ValidationInfo) -> Any:
        if _was_checked(info):
            return data
        values = _run(lambda c: c.stack(data, None))
        # The entries are built as checked models: validated again as raw input, a storage
        # entry's filled-in default retentionDays would count as "set without provision".
        storage = cast(Mapping[str, Mapping[str, object]], values["storage"])
        sessions = cast(Mapping[str, Mapping[str, object]], values["sessions"])
        return {
            "storage": {name: StorageSpec._checked(entry) for name, entry in storage.items()},
            "sessions": {name: StackSessionSpec._checked(entry)
                         for name, entry in sessions.items()},
        }


def _run(step: Callable[[_Checker], dict[str, object] | None]) -> dict[str, object]:
    checker = _Checker(None)
    values = step(checker)
    if checker.problems:
        raise SpecError(checker.problems)
    assert values is not None  # no problem means the input was a mapping
    return _clean(values)


# --------------------------------------------------------------------------------------------------
# Entry points


def stack_problems(
    data: object,
    *,
    default_app_id: str | None = None,
    is_unknown: UnknownPredicate | None = None,
    now: float | None = None,
) -> list[Problem]:
    """Every problem in a stack document (``storage`` + ``sessions``), stack-level rules included.
    ``now`` (Unix seconds, default the clock) is what given tokens' expiries are compared with.

    ``data``: the stack's config as decoded YAML/JSON, ``{"storage": {...}, "sessions": {...}}``;
    anything else is reported, not raised.  ``default_app_id`` (str | None): the stack's
    ``agora:appId``, used for sessions without ``appId`` (token identity, rule unique_task).
    ``is_unknown`` (callable taking a value, returning bool, or None): recognises a value not
    known yet (a Pulumi unknown in preview, a ``{secure: ...}`` marker in ``validate``); such a
    value counts as present and valid, and every cross-field rule that depends on it is skipped.
    None: every value is known.

    Returns every ``Problem`` (empty when the document is valid), each with its rule id from
    ``rules.RULES_BY_ID`` and that rule's sources.  Raises nothing for bad input.
    """
    checker = _Checker(is_unknown, now)
    checker.stack(data, default_app_id)
    return checker.problems


def session_problems(
    data: object,
    *,
    path: Path = (),
    is_unknown: UnknownPredicate | None = None,
    now: float | None = None,
) -> list[Problem]:
    """Every problem in one session's keys (``SESSION_KEYS``); paths start with ``path``.
    ``now`` (Unix seconds, default the clock) is what a given token's expiry is compared with.

    ``data``: one session's mapping (cname, uid, appId, region, resourceExpiredHour, mode,
    recordingConfig, snapshotConfig, fileNamePrefix, token); anything else is reported.  ``path``
    (tuple of str and int): prepended to every problem's path, e.g. ``("sessions", "lobby")``.
    ``is_unknown`` (callable taking a value, returning bool, or None): recognises a value not
    known yet (a Pulumi unknown in preview, a ``{secure: ...}`` marker in ``validate``); such a
    value counts as present and valid, and every cross-field rule that depends on it is skipped.
    None: every value is known.

    Returns every ``Problem`` (empty when valid); the session rules are listed in
    ``help(SnapshotSessionArgs)``.  Raises nothing for bad input.
    """
    checker = _Checker(is_unknown, now)
    checker.session(data, path, stack=False)
    return checker.problems


def storage_target_problems(
    data: object, *, path: Path = (), is_unknown: UnknownPredicate | None = None
) -> list[Problem]:
    """Every problem in a wire-shaped ``StorageTarget`` (codes, keys required).

    ``data``: Agora's ``storageConfig`` mapping (``vendor`` and ``region`` as codes, ``bucket``,
    ``accessKey``, ``secretKey``, optional ``fileNamePrefix``, ``extensionParams``, ``stsToken``,
    ``stsExpiration``).  ``path`` (tuple of str and int): prepended to every problem's path, e.g.
    ``("storage",)``.
    ``is_unknown`` (callable taking a value, returning bool, or None): recognises a value not
    known yet (a Pulumi unknown in preview, a ``{secure: ...}`` marker in ``validate``); such a
    value counts as present and valid, and every cross-field rule that depends on it is skipped.
    None: every value is known.

    Returns every ``Problem`` (empty when valid): rules storage_vendor, storage_region,
    bucket_name, file_name_prefix, extension_sse, extension_tag, extension_endpoint,
    sts_fields, storage_credentials (S3, S9).  Raises nothing for bad input.
    """
    checker = _Checker(is_unknown)
    checker.storage(data, path, wire=True)
    return checker.problems


def _build(model: type[_Model], values: dict[str, object] | None, checker: _Checker) -> Any:
    if checker.problems:
        raise SpecError(checker.problems)
    assert values is not None  # no problem means the input was a mapping
    try:
        return model._checked(values)
    except ValidationError as exc:  # a bug in the checker, not the user's: say so plainly
        raise AssertionError(f"checked values failed {model.__name__}: {exc}") from None


def parse_stack(data: Mapping[str, object], *, default_app_id: str | None = None) -> StackSpec:
    """The stack config as models; raises ``SpecError`` with every problem.

    ``data``: ``{"storage": {name: entry}, "sessions": {name: entry}}`` as read from the stack
    file.  ``default_app_id`` (str | None): the stack's ``agora:appId``, for sessions without
    ``appId``.  Returns a ``StackSpec`` with names resolved to codes and defaults filled.  Raises
    ``SpecError`` listing every problem that ``stack_problems`` would return.
    """
    checker = _Checker(None)
    return cast(StackSpec, _build(StackSpec, checker.stack(data, default_app_id), checker))


def parse_session(data: Mapping[str, object]) -> SessionSpec:
    """One session's keys as a ``SessionSpec``; raises ``SpecError`` with every problem.

    ``data``: the session's mapping in Agora's keys (see ``SessionSpec``).  Returns the
    normalised spec (uids as digit strings, defaults filled, blacklists under one spelling).
    """
    checker = _Checker(None)
    return cast(SessionSpec, _build(SessionSpec, checker.session(data, (), stack=False), checker))


def parse_storage(data: Mapping[str, object]) -> StorageSpec:
    """One storage target's keys as a ``StorageSpec``; raises ``SpecError`` with every problem.

    ``data``: a stack file's storage entry (``vendor``, ``region``, ``bucket``, ``provision`` ...;
    see ``StorageSpec``).  Returns the validated spec.
    """
    checker = _Checker(None)
    return cast(StorageSpec, _build(StorageSpec, checker.storage(data, (), wire=False), checker))


def storage_target(
    storage: StorageSpec,
    session_prefix: Sequence[str] | None = (),
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> StorageTarget:
    """The wire ``storageConfig`` for a session: codes resolved, prefixes joined (storage's first).

    ``storage`` (``StorageSpec``): the validated target.  ``session_prefix`` (sequence of str or
    None): the session's own ``fileNamePrefix``, appended after the storage's.
    ``access_key``/``secret_key`` supply the provisioned key of a ``provision: true`` target;
    None takes the spec's ``accessKey``/``secretKey``.

    Returns a ``StorageTarget``.  Raises ``SpecError`` when the joined prefix breaks
    rules.FILE_NAME_PREFIX (rule file_name_prefix: at most 128 characters, S3), ValueError when
    there are no keys.
    """
    access = access_key if access_key is not None else storage.accessKey
    secret = secret_key if secret_key is not None else storage.secretKey
    if access is None or secret is None:
        raise ValueError("storage_target: no accessKey/secretKey (a provisioned target needs the "
                         "keys its storage component created)")
    target: StorageTarget = {
        "vendor": storage.vendorCode,
        "region": storage.regionCode,
        "bucket": storage.bucket,
        "accessKey": access,
        "secretKey": secret,
    }
    prefix = [*(storage.fileNamePrefix or ()), *(session_prefix or ())]
    if prefix:
        length = rules.file_name_prefix_length(prefix)
        if length > rules.FILE_NAME_PREFIX_MAX:
            raise SpecError([Problem(("fileNamePrefix",), f"is {length} characters joined; "
                                     f"{rules.FILE_NAME_PREFIX.text}", rules.FILE_NAME_PREFIX.id)])
        target["fileNamePrefix"] = prefix
    if storage.extensionParams is not None:
        ext = storage.extensionParams.model_dump(exclude_none=True)
        if ext:
            target["extensionParams"] = cast(WireExtensionParams, ext)
    if storage.stsToken is not None and storage.stsExpiration is not None:
        target["stsToken"] = storage.stsToken
        target["stsExpiration"] = storage.stsExpiration
    return target
