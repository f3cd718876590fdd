"""The user-facing config: named storage targets and named snapshot sessions (pydantic models).

Public API::

    parse_stack(data, *, default_app_id=None) -> StackSpec        # raises SpecError (all problems)
    parse_session(data) -> SessionSpec                             # raises SpecError
    parse_storage(data) -> StorageSpec                             # raises SpecError
    stack_problems(data, *, default_app_id=None, is_unknown=None) -> list[Problem]
    session_problems(data, *, path=(), is_unknown=None) -> list[Problem]
    storage_target_problems(data, *, path=(), is_unknown=None) -> list[Problem]
    storage_target(storage, session_prefix=(), *, access_key=None, secret_key=None) -> StorageTarget
    prefix_problems(segments, *, path=()) -> list[Problem]        # one joined fileNamePrefix
    checked_storage(data, *, is_unknown=None, creates_bucket=False) -> dict  # storage components
    is_secure_marker(value) -> bool                                # a Pulumi ``{secure: ...}`` value
    Problem(path, message, rule_id)      # .dotted_path, .rule; str(): "path: message (rule id; S..)"
    SpecError(problems)                  # Exception; .problems; str() = one problem per line
    StackSpec(storage: dict[str, StorageSpec], sessions: dict[str, StackSessionSpec])
    SessionSpec (.resource_inputs() -> the SnapshotSession inputs), StackSessionSpec(+ storage)
    StorageSpec (.vendorCode, .regionCode, .vendor_region properties)
    SESSION_KEYS, STORAGE_KEYS, RESOURCE_INPUT_KEYS, dotted(path), show_value(...)

Keys are Agora's own camelCase vocabulary (docs/agora-api.md sections 2, 3, 9), so the field
names are mixedCase on purpose.  Every bound, enum and table comes from ``rules.py``.

How validation works (botocore's model: rules as data, one checker): a checker walks the raw mapping once, field by
field in the order of the tables in rules.py (``rules.SESSION``, ``RECORDING``, ``SNAPSHOT``,
``STORAGE``, ``EXTENSION``), reads each value by its kind, runs the rules across fields right after
the field they follow (``_AFTER``: the only rule logic here that is not a field's own), collects
every problem with its dotted path and rule id, and builds the normalised values (names resolved to
codes, uids as digit strings, defaults filled).  Only when nothing is wrong are the pydantic models
built from those values; calling ``SessionSpec.model_validate(raw)`` directly runs the same checker.
The models of the nested objects are made from their tables; the key lists are the tables' keys.
The same checker validates a stack file's storage entries, the provider's ``storage`` input and
the storage components' arguments (``checked_storage``): one storage validator.

Partial validation (the provider's ``check()`` during preview): pass ``is_unknown``, a predicate that
recognises a value not known yet (or a Pulumi secret marker in ``validate``).  Such a value counts as
present and valid, and every cross-field rule that depends on it is skipped.  The provider checks its
``storage`` input (a full ``StorageTarget``) with ``storage_target_problems(..., path=("storage",))``
and the other inputs with ``session_problems``.

Problem messages never contain the value of a secret field (``rules.SECRET_FIELDS``).
"""

# ruff: noqa: N802, N815 -- Agora's camelCase keys are the public field names (see above).

from __future__ import annotations

import difflib
import enum
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)

from snapshot_resources import rules
from snapshot_resources.rules import Choice, IntRange, Kind, Pattern, Rule
from snapshot_resources.target import StorageTarget, build_target, joined_prefix

Path = tuple[str | int, ...]
UnknownPredicate = Callable[[object], bool]

# The key lists, from the tables of fields in rules.py (rules.SESSION, rules.RECORDING ...).
SESSION_KEYS: Final = tuple(f.name for f in rules.SESSION.fields
                            if f.kind not in (Kind.STORAGE, Kind.FORBIDDEN))
STACK_SESSION_KEYS: Final = rules.SESSION.keys()  # and the name of the session's storage entry
RESOURCE_INPUT_KEYS: Final = tuple(k for k in rules.INPUT_KEYS if k in SESSION_KEYS)
STORAGE_KEYS: Final = rules.STORAGE.keys()
WIRE_STORAGE_KEYS: Final = rules.STORAGE.inputs()  # Agora's storageConfig, without this tool's keys
STACK_KEYS: Final = ("storage", "sessions")
PROJECT: Final = "agora-snapshots"
"""The Pulumi project's name (``Pulumi.yaml``): the stack file's keys are ``<PROJECT>:storage`` and
``<PROJECT>:sessions``."""

# Keys that are rejected with their own rule rather than as unknown.
SESSION_FORBIDDEN: Final = rules.SESSION.forbidden()


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


class _ReadOutcome(enum.Enum):
    """Outcomes of reading one value besides the value itself."""

    ABSENT = "absent"  # not given and no default
    BAD = "bad"  # given but wrong (a problem was recorded)
    OPAQUE = "opaque"  # unknown or secret marker: present, not checkable


def _known(value: object) -> bool:
    return not isinstance(value, _ReadOutcome)


def show_value(key: str | int, value: object) -> str:
    """The value for a message, unless it is a secret's."""
    if key in rules.SECRET_FIELDS:
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


def _allows(rule: IntRange | Choice, value: int) -> bool:
    if isinstance(rule, IntRange):
        return rule.minimum <= value <= rule.maximum
    return value in rule.values


def _uid_value(value: object) -> str | None:
    """A uid (int or digit string) as Agora's digit string, or None when it is not one (S2)."""
    if type(value) is float and value.is_integer():  # as in _Checker.integer
        value = int(value)
    if type(value) is int:
        return str(value) if 1 <= value <= rules.UID_MAX else None
    if isinstance(value, str) and rules.RECORDER_UID.matches(value) and int(value) <= rules.UID_MAX:
        return value
    return None


def _quote_hint(value: object) -> str:
    """What to do about a number where text belongs: ``pulumi config set --path`` writes a value
    such as a channel ``12345`` or a prefix segment ``2024`` unquoted, so the program gets a
    number.  It is refused rather than read as its digits, so that the stack file, the JSON
    Schema and the resource inputs all say the same type; the message says how to keep it text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (" (a number: quote it in the stack file, or set it with `pulumi config set "
                "--path --type string`)")
    return ""


@dataclass
class _Walk:
    """One object being checked: its mapping, where it is, and what was read so far.

    ``wire`` (storage only): Agora's storageConfig, codes only and keys required.  ``creates``
    (storage only): the arguments of a storage component that creates the bucket.  ``vendor``:
    the storage vendor once ``vendor`` was read (None when unknown or wrong).
    """

    shape: rules.Shape
    given: Mapping[str, object]
    path: Path
    out: dict[str, object] = field(default_factory=dict)
    wire: bool = False
    creates: bool = False
    vendor: rules.Vendor | None = None


# Problems of one rule at the items of one list: the first few are reported one by one, the rest
# as a count (a 1,000,000-item uid list made a million lines, and memory to match).
REPEATS_SHOWN: Final = 3


class _Checker:
    def __init__(self, is_unknown: UnknownPredicate | None, now: float | None = None) -> None:
        self._problems: list[Problem] = []
        # (list path, rule id) -> how many problems of that rule at that list's items were not
        # kept beyond the first REPEATS_SHOWN (negative: still to be shown), and the path of the
        # first one not kept.
        self._repeats: dict[tuple[Path, str], tuple[int, Path]] = {}
        self._is_unknown = is_unknown
        # Unix seconds the token rules compare expiries with (rules.RTC_TOKEN_LIFETIME).
        self.now = time.time() if now is None else now
        self.default_app_id: str | None = None

    # ---- recording problems

    @property
    def problems(self) -> list[Problem]:
        """Every problem, repeats at the items of a list collapsed: the first ``REPEATS_SHOWN``
        of a rule, then one problem at the list saying how many more there are."""
        more = [Problem(first, f"this and {count - 1:,} more item{'s' if count != 2 else ''} "
                        f"from here on, like the {REPEATS_SHOWN} above; "
                        f"{rules.RULES_BY_ID[rule_id].text}", rule_id)
                for (_, rule_id), (count, first) in self._repeats.items() if count > 0]
        return [*self._problems, *more]

    def add(self, path: Path, rule: Rule, detail: str | None = None) -> None:
        if self._repeated(path, rule):
            return
        message = rule.text if detail is None else f"{detail}; {rule.text}"
        self._problems.append(Problem(path, message, rule.id))

    def add_message(self, path: Path, rule: Rule, message: str) -> None:
        if not self._repeated(path, rule):
            self._problems.append(Problem(path, message, rule.id))

    def _repeated(self, path: Path, rule: Rule) -> bool:
        """Count a problem at a list item; True when it is past the first ``REPEATS_SHOWN``."""
        if not path or not isinstance(path[-1], int):
            return False
        key = (path[:-1], rule.id)
        seen, first = self._repeats.get(key, (-REPEATS_SHOWN, path))
        self._repeats[key] = (seen + 1, path if seen == 0 else first)
        return seen >= 0

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

    def walk(
        self,
        shape: rules.Shape,
        data: object,
        path: Path,
        *,
        rule: Rule = rules.MAPPING,
        wire: bool = False,
        creates: bool = False,
        skip: Iterable[Kind] = (),
    ) -> dict[str, object] | None:
        """Check ``data`` against ``shape``'s fields in order, each followed by the cross-field
        rules that come after it (``_AFTER``); the values read, or None if it is no mapping.
        ``wire`` leaves out the fields that are this tool's own (not an input); ``skip`` leaves
        out fields of those kinds (a session's storage outside a stack file)."""
        fields = [f for f in shape.fields if f.kind is not Kind.FORBIDDEN and f.kind not in skip
                  and (f.input or not wire)]
        known = [k for f in fields for k in (f.name, *((f.sent_as,) if f.sent_as else ()))]
        given = self.mapping(data, path, known, shape.forbidden(), rule=rule)
        if given is None:
            return None
        walk = _Walk(shape, self.spellings(shape, given, path), path, wire=wire, creates=creates)
        for item in fields:
            walk.out[item.name] = self.read(item, walk)
            after = _AFTER.get((shape.name, item.name))
            if after is not None:
                after(self, walk, item)
        after = _AFTER.get((shape.name, None))
        if after is not None:
            after(self, walk, None)
        return walk.out

    def spellings(
        self, shape: rules.Shape, given: Mapping[str, object], path: Path
    ) -> Mapping[str, object]:
        """Keys sent under another spelling are accepted under either, once; the result holds
        each under its own name (rules.BLACKLIST_SPELLING)."""
        renamed = [f for f in shape.fields if f.sent_as is not None]
        if not renamed:
            return given
        out = dict(given)
        for item in renamed:
            alias = cast(str, item.sent_as)
            if alias in given and item.name in given:
                self.add((*path, alias), rules.BLACKLIST_SPELLING, f"is set together with {item.name}")
            elif alias in out:
                out[item.name] = out.pop(alias)
        return out

    def read(self, item: rules.Field, walk: _Walk) -> object:
        """One field's value, checked by its kind (rules.Kind)."""
        kind = item.kind
        if kind is Kind.INTEGER:
            return self.integer(walk, item)
        if kind in (Kind.STRING, Kind.STORAGE):
            value = self.string(walk, item)
            return item.default if value is _ReadOutcome.ABSENT and item.default is not None else value
        if kind is Kind.BOOLEAN:
            return self.boolean(walk, item)
        if kind is Kind.UID:
            return self.recorder_uid(walk, item)
        if kind is Kind.UID_LIST:
            return self.uid_list(walk, item)
        if kind is Kind.PREFIX:
            return self.prefix(walk.given, item.name, walk.path)
        if kind is Kind.CONST:
            return self.const(walk, item)
        if kind is Kind.OBJECT:
            return self.nested(item, walk)
        if kind is Kind.VENDOR:
            return self.vendor(walk)
        if kind is Kind.REGION:
            return self.region(walk)
        assert kind is Kind.BUCKET, kind
        return self.bucket(walk)

    def get(self, obj: Mapping[str, object], key: str) -> object:
        value = obj.get(key, _ReadOutcome.ABSENT)
        return _ReadOutcome.OPAQUE if value is not _ReadOutcome.ABSENT and self.opaque(value) else value

    def given(self, walk: _Walk, item: rules.Field) -> object:
        """The value of ``item``; a required one that is absent is reported (and BAD)."""
        value = self.get(walk.given, item.name)
        if value is _ReadOutcome.ABSENT and item.required:
            self.add((*walk.path, item.name), item.rule, "is required")
            return _ReadOutcome.BAD
        return value

    def nested(self, item: rules.Field, walk: _Walk) -> object:
        """An object of its own fields (``item.shape``); absent, it is checked as empty when its
        fields have defaults (``rules.EMPTY``), and left absent otherwise."""
        value = walk.given.get(item.name, _ReadOutcome.ABSENT)
        if value is _ReadOutcome.ABSENT:
            if item.default is None:
                return value
            value = dict(cast(Mapping[str, object], item.default))
        assert item.shape is not None
        out = self.walk(item.shape, value, (*walk.path, item.name))
        if out is None:
            return _ReadOutcome.OPAQUE if self.opaque(value) else _ReadOutcome.BAD
        return out

    # ---- scalars

    def integer(self, walk: _Walk, item: rules.Field) -> object:
        """An integer in the rule's IntRange or Choice; absent, the field's default."""
        rule, key = cast(IntRange | Choice, item.rule), item.name
        value = self.given(walk, item)
        if value is _ReadOutcome.ABSENT:
            return _ReadOutcome.ABSENT if item.default is None else item.default
        if not _known(value):
            return value
        # 5.0 is the integer 5, as JSON Schema's "integer" says and as Pulumi's wire sends it
        # (numbers are doubles there); 5.5 is not.
        if type(value) is float and value.is_integer():
            value = int(value)
        p = (*walk.path, key)
        if type(value) is not int:
            self.add(p, rule, f"is {show_value(key, value)}, not an integer")
            return _ReadOutcome.BAD
        if not _allows(rule, value):
            self.add(p, rule, f"is {show_value(key, value)}")
            return _ReadOutcome.BAD
        return value

    def string(self, walk: _Walk, item: rules.Field) -> object:
        """A non-empty string, matching the rule when it is a Pattern or a Choice."""
        rule, key = item.rule, item.name
        value = self.given(walk, item)
        if not _known(value) or value is _ReadOutcome.ABSENT:
            return value
        p = (*walk.path, key)
        if not isinstance(value, str) or not value:
            self.add(p, rule, f"is {show_value(key, value)}, not a non-empty string"
                     + _quote_hint(value))
            return _ReadOutcome.BAD
        if (isinstance(rule, Pattern) and not rule.matches(value)) or (
            isinstance(rule, Choice) and value not in rule.values
        ):
            # ``invalid`` says what is wrong with a value that must not be shown (a secret's).
            self.add(p, rule, item.invalid or f"is {show_value(key, value)}")
            return _ReadOutcome.BAD
        return value

    def boolean(self, walk: _Walk, item: rules.Field) -> object:
        value = self.get(walk.given, item.name)
        if value is _ReadOutcome.ABSENT:
            return False
        if value is _ReadOutcome.OPAQUE:
            return value
        if not isinstance(value, bool):
            self.add((*walk.path, item.name), item.rule,
                     f"is {show_value(item.name, value)}, not true or false")
            return _ReadOutcome.BAD
        return value

    def recorder_uid(self, walk: _Walk, item: rules.Field) -> object:
        value = self.given(walk, item)
        if not _known(value):
            return value
        uid = _uid_value(value)
        if uid is None:
            self.add((*walk.path, item.name), item.rule, f"is {show_value(item.name, value)}")
            return _ReadOutcome.BAD
        return uid

    def const(self, walk: _Walk, item: rules.Field) -> object:
        """The one list value the rule allows (fileType: ["jpg"], S3)."""
        expected = list(cast(Choice, item.rule).values)
        value = self.get(walk.given, item.name)
        if value is _ReadOutcome.OPAQUE or (isinstance(value, list) and any(self.opaque(v) for v in value)):
            return _ReadOutcome.OPAQUE  # an entry not known yet (preview): cannot compare
        if value is not _ReadOutcome.ABSENT and value != expected:
            self.add((*walk.path, item.name), item.rule, f"is {show_value(item.name, value)}")
            return _ReadOutcome.BAD
        return expected

    # ---- lists

    def uid_list(self, walk: _Walk, item: rules.Field) -> object:
        """A subscription list: 1..32 distinct uids or '#allstream#' alone (S3, S5, S19)."""
        key, rule = item.name, item.rule
        value = self.get(walk.given, key)
        p = (*walk.path, key)
        if not isinstance(value, list):
            if _known(value):
                self.add(p, rule, f"is {show_value(key, value)}, not a list")
                return _ReadOutcome.BAD
            return value
        ok = True
        if not 1 <= len(value) <= rules.SUBSCRIBE_LIST_MAX:
            self.add(p, rule, f"has {len(value)} entries")
            ok = False
        out: list[str] = []
        for i, entry in enumerate(value):
            if self.opaque(entry):
                return _ReadOutcome.OPAQUE
            uid = rules.ALL_STREAMS if entry == rules.ALL_STREAMS else _uid_value(entry)
            if uid is None:
                self.add((*p, i), rule, f"is {show_value(key, entry)}")
                ok = False
            elif uid in out:
                self.add((*p, i), rule, f"repeats {uid!r}")
                ok = False
            else:
                out.append(uid)
        if ok and rules.ALL_STREAMS in out and len(out) > 1:
            self.add(p, rule, f"mixes {rules.ALL_STREAMS!r} with uids")
            ok = False
        return out if ok else _ReadOutcome.BAD

    def prefix(self, obj: Mapping[str, object], key: str, path: Path) -> object:
        """fileNamePrefix: segments of letters and digits, at most 128 characters joined (S3)."""
        value = self.get(obj, key)
        p = (*path, key)
        if not isinstance(value, list):
            if _known(value):
                self.add(p, rules.FILE_NAME_PREFIX, f"is {show_value(key, value)}, not a list")
                return _ReadOutcome.BAD
            return value
        if not value:
            self.add(p, rules.FILE_NAME_PREFIX, "is empty (leave it out for no prefix)")
            return _ReadOutcome.BAD
        ok = True
        for i, segment in enumerate(value):
            if self.opaque(segment):
                return _ReadOutcome.OPAQUE
            if not isinstance(segment, str) or not rules.FILE_NAME_PREFIX.matches(segment):
                self.add((*p, i), rules.FILE_NAME_PREFIX,
                         f"is {show_value(key, segment)}" + _quote_hint(segment))
                ok = False
        if ok and rules.file_name_prefix_length(value) > rules.FILE_NAME_PREFIX_MAX:
            length = rules.file_name_prefix_length(value)
            self.add(p, rules.FILE_NAME_PREFIX, f"is {length} characters joined")
            ok = False
        return list(value) if ok else _ReadOutcome.BAD

    # ---- objects: the session

    def session(self, data: object, path: Path, *, stack: bool) -> dict[str, object] | None:
        # Outside a stack file a session has no storage entry to name (the resource's storage
        # input is checked as a target, storage_target_problems).
        return self.walk(rules.SESSION, data, path, skip=() if stack else (Kind.STORAGE,))

    def session_cross(self, walk: _Walk, _item: rules.Field | None) -> None:
        self.recorder_not_subscribed(walk.out, walk.path)
        self.token_identity(walk.out, walk.path)

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

    # ---- recordingConfig

    def recording_cross(self, walk: _Walk, _item: rules.Field | None) -> None:
        out, path = walk.out, walk.path
        mode = out["decryptionMode"]
        if _known(mode):
            # S3: secret required when decryptionMode != 0; salt for modes 7 and 8.
            if mode != 0 and out["secret"] is _ReadOutcome.ABSENT:
                self.add((*path, "secret"), rules.DECRYPTION_SECRET,
                         f"is required with decryptionMode {mode}")
            if mode == 0 and out["secret"] is not _ReadOutcome.ABSENT:
                self.add((*path, "secret"), rules.DECRYPTION_SECRET,
                         "must not be set with decryptionMode 0")
            if mode in rules.SALT_MODES and out["salt"] is _ReadOutcome.ABSENT:
                self.add((*path, "salt"), rules.DECRYPTION_SALT,
                         f"is required with decryptionMode {mode}")
            if mode not in rules.SALT_MODES and out["salt"] is not _ReadOutcome.ABSENT:
                self.add((*path, "salt"), rules.DECRYPTION_SALT,
                         f"must not be set with decryptionMode {mode}")
        given = {k for k in rules.SUBSCRIBE_LIST_KEYS if out[k] is not _ReadOutcome.ABSENT}
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
        if not all(isinstance(v, list) or v is _ReadOutcome.ABSENT for v in lists):
            if out["subscribeUidGroup"] is _ReadOutcome.ABSENT:
                out["subscribeUidGroup"] = _ReadOutcome.OPAQUE
            return
        uids = {u for v in lists if isinstance(v, list) for u in v if u != rules.ALL_STREAMS}
        needed = rules.uid_group_for(len(uids))
        group = out["subscribeUidGroup"]
        most = rules.SUBSCRIBE_UID_GROUPS[-1][2]
        p = (*path, "subscribeUidGroup")
        if len(uids) > most:
            self.add(p, rules.SUBSCRIBE_UID_GROUP, f"{len(uids)} distinct uids exceed {most}")
        elif group is _ReadOutcome.ABSENT:
            out["subscribeUidGroup"] = needed  # derived (rules.SUBSCRIBE_UID_GROUP decision)
        elif isinstance(group, int) and group < needed:
            self.add(p, rules.SUBSCRIBE_UID_GROUP,
                     f"is {group} but {len(uids)} distinct uids need at least {needed}")

    # ---- storage: a stack file's entry, Agora's storageConfig, or a component's arguments

    def storage(
        self, data: object, path: Path, *, wire: bool, creates: bool = False
    ) -> dict[str, object] | None:
        return self.walk(rules.STORAGE, data, path, wire=wire, creates=creates,
                         rule=rules.STORAGE_TARGET if wire else rules.MAPPING)

    def vendor(self, walk: _Walk) -> object:
        value = self.given(walk, walk.shape["vendor"])
        if not _known(value):
            return value
        found = None
        if type(value) is int or (isinstance(value, str) and not walk.wire):
            found = rules.vendor_by_name(value)
        if found is None:
            names = [n for v in rules.VENDORS.values() for n in (v.name, *v.aliases)]
            hint = _suggest(value, names) if isinstance(value, str) else None
            self.add((*walk.path, "vendor"), rules.STORAGE_VENDOR,
                     f"is {show_value('vendor', value)}"
                     + (f" (did you mean {hint!r}?)" if hint else ""))
            return _ReadOutcome.BAD
        walk.vendor = found
        return value

    def region(self, walk: _Walk) -> object:
        value = self.get(walk.given, "region")
        p = (*walk.path, "region")
        vendor = walk.vendor
        if value is _ReadOutcome.ABSENT:
            if vendor is not None and vendor.any_region and not walk.wire:
                return _ReadOutcome.ABSENT  # Azure, Google, S3-compatible: region 0 (S9)
            self.add(p, rules.STORAGE_REGION, "is required")
            return _ReadOutcome.BAD
        if value is _ReadOutcome.OPAQUE:
            return value
        if type(value) is not int and (walk.wire or not isinstance(value, str)):
            self.add(p, rules.STORAGE_REGION, f"is {show_value('region', value)}, not "
                     + ("an integer" if walk.wire else "a code or a name"))
            return _ReadOutcome.BAD
        if vendor is None:
            return value
        if vendor.region_code(value) is None:
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
            return _ReadOutcome.BAD
        return value

    def bucket_location(self, walk: _Walk, _item: rules.Field | None) -> None:
        """A bucket a storage component creates at Azure or Google needs its location, not
        Agora's region code 0 (which names none, S9)."""
        region, vendor = walk.out["region"], walk.vendor
        if walk.creates and vendor is not None and vendor.any_region and type(region) is int:
            self.add_message((*walk.path, "region"), rules.STORAGE_REGION,
                             f"{region!r}: creating a {vendor.title} bucket needs its location "
                             "(e.g. westeurope, EU); Agora's region code is 0 either way")

    def bucket(self, walk: _Walk) -> object:
        value = self.string(walk, walk.shape["bucket"])
        if isinstance(value, str) and walk.vendor is not None:
            naming = walk.vendor.bucket
            if not naming.matches(value):
                self.add_message((*walk.path, "bucket"), rules.BUCKET_NAME,
                                 f"is {show_value('bucket', value)}; {rules.BUCKET_NAME.text}: "
                                 f"{naming.text}")
                return _ReadOutcome.BAD
        return value

    def provision_supported(self, walk: _Walk, _item: rules.Field | None) -> None:
        vendor = walk.vendor
        # A component's arguments: the factory that picks the component says which vendors it
        # can provision, and how to bring your own instead (storage.storage_component_for).
        if walk.out["provision"] is True and vendor is not None and not walk.creates and (
            vendor.code not in rules.PROVISION_VENDORS
        ):
            self.add((*walk.path, "provision"), rules.PROVISION,
                     f"is not supported for {vendor.name}")

    def retention_needs_provision(self, walk: _Walk, _item: rules.Field | None) -> None:
        if walk.out["provision"] is False and "retentionDays" in walk.given:
            self.add((*walk.path, "retentionDays"), rules.RETENTION_DAYS,
                     "is set without provision")

    def extension_vendors(self, walk: _Walk, _item: rules.Field | None) -> None:
        """extensionParams keys for the vendors that take them (S3, S9, S14)."""
        ext = walk.out["extensionParams"]
        if ext is _ReadOutcome.OPAQUE or ext is _ReadOutcome.BAD or walk.vendor is None:
            return
        given = cast(dict[str, object], ext) if isinstance(ext, dict) else {}
        p = (*walk.path, "extensionParams")
        self.vendor_limits(rules.EXTENSION, given, p, walk.vendor)
        code = walk.vendor.code
        if code in rules.ENDPOINT_VENDORS and given.get("endpoint", _ReadOutcome.ABSENT) is _ReadOutcome.ABSENT:
            self.add((*p, "endpoint"), rules.EXTENSION_ENDPOINT, f"is required for vendor {code}")

    def vendor_limits(self, shape: rules.Shape, out: Mapping[str, object], path: Path,
                      vendor: rules.Vendor, names: Iterable[str] | None = None) -> None:
        """Keys given for a vendor that does not take them (``rules.Field.vendors``)."""
        for item in shape.fields:
            if names is not None and item.name not in names:
                continue
            if item.vendors is not None and vendor.code not in item.vendors and (
                out.get(item.name, _ReadOutcome.ABSENT) is not _ReadOutcome.ABSENT
            ):
                # The rule as registered: stsExpiration's own bound shares rule sts_fields.
                rule = rules.RULES_BY_ID[item.rule.id]
                self.add((*path, item.name), rule, f"is set for vendor {vendor.code}")

    def key_with_provision(self, walk: _Walk, item: rules.Field | None) -> None:
        """accessKey and secretKey: required, unless provision creates them (S3)."""
        assert item is not None
        provision, value = walk.out.get("provision", False), walk.out[item.name]
        if provision is True and value is not _ReadOutcome.ABSENT:
            self.add((*walk.path, item.name), item.rule, "must not be set with provision")
        if provision is False and value is _ReadOutcome.ABSENT:
            self.add((*walk.path, item.name), item.rule, "is required")

    def sts_pair(self, walk: _Walk, _item: rules.Field | None) -> None:
        """stsToken and stsExpiration go together, for the vendors that take them (S2, S5), and
        the expiry is far enough ahead (rules.STS_LIFETIME)."""
        token, expiration = walk.out["stsToken"], walk.out["stsExpiration"]
        if type(expiration) is int:
            left = expiration - self.now
            p = (*walk.path, "stsExpiration")
            if left <= 0:
                self.add(p, rules.STS_LIFETIME, f"expired at {_utc(expiration)}")
            elif left < rules.MIN_STS_REMAINING_SECONDS:
                self.add(p, rules.STS_LIFETIME,
                         f"expires at {_utc(expiration)}, in {int(left // 60)} min")
        if (token is _ReadOutcome.ABSENT) != (expiration is _ReadOutcome.ABSENT):
            missing = "stsExpiration" if expiration is _ReadOutcome.ABSENT else "stsToken"
            other = "stsToken" if missing == "stsExpiration" else "stsExpiration"
            self.add((*walk.path, missing), rules.STS_FIELDS, f"is required with {other}")
        if walk.vendor is not None:
            self.vendor_limits(rules.STORAGE, walk.out, walk.path, walk.vendor,
                               ("stsToken", "stsExpiration"))

    # ---- the stack

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
            app = session["appId"] if session["appId"] is not _ReadOutcome.ABSENT else default_app_id
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
                app = session["appId"] if session["appId"] is not _ReadOutcome.ABSENT else default_app_id
                recorders.setdefault((app, session["cname"], session["uid"]), name)
        for name, session in sessions.items():
            if not isinstance(session, dict) or not isinstance(session["recordingConfig"], dict):
                continue
            app = session["appId"] if session["appId"] is not _ReadOutcome.ABSENT else default_app_id
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
        base = target.get("fileNamePrefix") if isinstance(target, dict) else _ReadOutcome.ABSENT
        if isinstance(own, list) and isinstance(base, list):
            length = rules.file_name_prefix_length(joined_prefix(base, own))
            if length > rules.FILE_NAME_PREFIX_MAX:
                self.add((*path, "fileNamePrefix"), rules.FILE_NAME_PREFIX,
                         f"makes {length} characters joined with the storage prefix")


# Cross-field rules (rule logic; the fields themselves are declared in rules.py), each run right
# after the field it follows, or (key None) after the whole object, so that problems are listed in
# the order of the walk.
_After = Callable[[_Checker, _Walk, rules.Field | None], None]
_AFTER: Final[Mapping[tuple[str, str | None], _After]] = {
    ("session", None): _Checker.session_cross,
    ("recordingConfig", None): _Checker.recording_cross,
    ("storageConfig", "region"): _Checker.bucket_location,
    ("storageConfig", "provision"): _Checker.provision_supported,
    ("storageConfig", "retentionDays"): _Checker.retention_needs_provision,
    ("storageConfig", "extensionParams"): _Checker.extension_vendors,
    ("storageConfig", "accessKey"): _Checker.key_with_provision,
    ("storageConfig", "secretKey"): _Checker.key_with_provision,
    ("storageConfig", "stsExpiration"): _Checker.sts_pair,
}


# --------------------------------------------------------------------------------------------------
# Models

_CHECKED: Final = "snapshot_resources.spec.checked"


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    """Normalised values for a model: absent keys dropped (the model's defaults apply)."""
    return {
        k: _clean(cast(Mapping[str, object], v)) if isinstance(v, dict) else v
        for k, v in values.items()
        if v is not _ReadOutcome.ABSENT
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


# The models of Agora's nested objects are made from their tables in rules.py, so a field added
# there is checked, kept and sent without an edit here.  The type checker sees the attributes the
# code reads through the declarations below (typing only; the fields come from the table).
_PYTHON_TYPES: Final[Mapping[Kind, Any]] = {
    Kind.INTEGER: int, Kind.STRING: str, Kind.UID_LIST: list[str], Kind.CONST: list[str],
}


def _table_model(name: str, shape: rules.Shape, doc: str) -> type[_Model]:
    """A frozen model with one field per entry of ``shape``: its type by kind, its default (a
    derived default is the rule's own when nothing derives it), secrets kept out of ``repr``."""
    fields: dict[str, Any] = {}
    for item in shape.fields:
        python_type = _PYTHON_TYPES[item.kind]
        default: Any = getattr(item.rule, "default", None) if item.derived else item.default
        info: Any
        if isinstance(default, tuple):
            info = Field(default_factory=functools.partial(list, default), repr=not item.secret)
        else:
            info = Field(default=default, repr=not item.secret)
            if default is None:
                python_type = python_type | None
        fields[item.name] = (python_type, info)
    model: type[_Model] = create_model(
        name, __base__=_Model, __module__=__name__, __doc__=doc, **fields
    )
    return model


if TYPE_CHECKING:
    class RecordingConfig(_Model):
        def __init__(self, **data: Any) -> None: ...
        channelType: int
        streamTypes: int
        maxIdleTime: int
        videoStreamType: int
        decryptionMode: int
        secret: str | None
        salt: str | None
        subscribeVideoUids: list[str] | None
        unsubscribeVideoUids: list[str] | None
        subscribeAudioUids: list[str] | None
        unsubscribeAudioUids: list[str] | None
        subscribeUidGroup: int

    class SnapshotConfig(_Model):
        def __init__(self, **data: Any) -> None: ...
        captureInterval: int
        fileType: list[str]

    class ExtensionParamsSpec(_Model):
        def __init__(self, **data: Any) -> None: ...
        sse: str | None
        tag: str | None
        endpoint: str | None
else:
    RecordingConfig = _table_model(
        "RecordingConfig", rules.RECORDING,
        "``recordingConfig`` for a snapshot task (docs/agora-api.md section 3.4; rules.RECORDING).")
    SnapshotConfig = _table_model(
        "SnapshotConfig", rules.SNAPSHOT,
        "``snapshotConfig`` (docs/agora-api.md section 3.5; rules.SNAPSHOT).")
    ExtensionParamsSpec = _table_model(
        "ExtensionParamsSpec", rules.EXTENSION,
        "``storageConfig.extensionParams`` (docs/agora-api.md section 3.6; rules.EXTENSION).")


class SessionSpec(_Model):
    """One snapshot session: acquire + start parameters (docs/agora-api.md sections 2 and 3).

    Fields, Agora's camelCase keys (build with ``parse_session``, which raises ``SpecError`` with
    every problem; frozen; an unknown key is refused, rule unknown_key):
    ``cname`` (str): the channel, 1 to 63 bytes of the allowed characters (rule channel_name;
    S18).  ``uid`` (str): the recorder uid, digits, 1 to 4294967295 (rules recorder_uid,
    recorder_uid_subscribed; S2).  ``appId`` (str | None): the App ID; None for the stack's
    ``agora:appId`` (rule app_id; S2).  ``region`` (str | None): the acquire area CN, AP, EU or NA
    (rule acquire_region; S2).  ``resourceExpiredHour`` (int): {resource_expired_hour.minimum} to
    {resource_expired_hour.maximum} hours, default {resource_expired_hour.default} (rule
    resource_expired_hour; S2).  ``mode`` (str): always ``"individual"`` (rule mode; S3, S8).
    ``recordingConfig`` (``RecordingConfig``): channelType, streamTypes, maxIdleTime,
    videoStreamType, decryptionMode, secret, salt, the four subscription lists and
    subscribeUidGroup, with defaults filled (``help(SnapshotSessionArgs)`` gives each; S3).
    ``snapshotConfig`` (``SnapshotConfig``): captureInterval {capture_interval.minimum} to
    {capture_interval.maximum} s, default {capture_interval.default} (rule capture_interval), and
    fileType ``["jpg"]`` (rule file_type; S3, S8).  ``fileNamePrefix`` (list of str | None): the
    session's own prefix segments, appended to its storage's (rule file_name_prefix; S3).
    ``token`` (str | None): the recorder's RTC token, secret (rules rtc_token,
    rtc_token_identity, rtc_token_lifetime; S3).
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


SessionSpec.__doc__ = rules.stated(SessionSpec.__doc__)


class StackSessionSpec(SessionSpec):
    """A session in a stack file: a ``SessionSpec`` plus the name of its storage target.

    Fields: those of ``SessionSpec`` (``cname``, ``uid``, ``appId``, ``region``,
    ``resourceExpiredHour``, ``mode``, ``recordingConfig``, ``snapshotConfig``, ``fileNamePrefix``,
    ``token``; see there), and ``storage`` (str): the name of an entry under the stack's
    ``storage`` (rule storage_reference).  Built by ``parse_stack``.
    """

    storage: str


class StorageSpec(_Model):
    """A named storage target (docs/agora-api.md section 3.6 and 9), given by the vendor's own names.

    Fields (build with ``parse_storage``, which raises ``SpecError`` with every problem):
    ``vendor`` (int | str): Agora's code or a name or alias, e.g. ``1``, ``"aws"``, ``"gcp"``
    (rule storage_vendor; S9).  ``region`` (int | str | None): the vendor's region id
    (``us-east-1``), Agora's label or Agora's code; for Azure, Google and S3-compatible storage
    the location (rule storage_region; S9).  ``bucket`` (str): by the vendor's naming rules (rule
    bucket_name).  ``provision`` (bool): create the bucket and an upload-only key, default False
    (rule provision; vendors 1, 2, 3, 5, 6, 7).  ``retentionDays`` (int): days a provisioned
    bucket keeps snapshots, at least {retention_days.minimum}, default {retention_days.default},
    only with provision (rule retention_days).
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


StorageSpec.__doc__ = rules.stated(StorageSpec.__doc__)


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


def checked_storage(
    data: object, *, is_unknown: UnknownPredicate | None = None, creates_bucket: bool = False
) -> dict[str, object]:
    """A storage entry's checked values (names kept, defaults filled, absent keys left out), as
    the storage components take them; raises ``SpecError`` with every problem.

    ``data``: a stack file's storage entry (``vendor``, ``region``, ``bucket``, ``provision`` ...).
    ``is_unknown``: recognises values that count as present and valid without being read (a
    component's keys).  ``creates_bucket``: the bucket is to be created, so a vendor whose region
    code is always 0 (Azure, Google) needs its location as a name (rule storage_region).
    """
    checker = _Checker(is_unknown)
    values = checker.storage(data, (), wire=False, creates=creates_bucket)
    if checker.problems:
        raise SpecError(checker.problems)
    assert values is not None  # no problem means the input was a mapping
    return _clean(values)


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
    prefix = joined_prefix(storage.fileNamePrefix, session_prefix)
    problems = prefix_problems(prefix)
    if problems:
        raise SpecError(problems)
    extension = storage.extensionParams
    return build_target({
        "vendor": storage.vendorCode,
        "region": storage.regionCode,
        "bucket": storage.bucket,
        "fileNamePrefix": prefix,
        "extensionParams": extension.model_dump(exclude_none=True) if extension else None,
        "accessKey": access,
        "secretKey": secret,
        "stsToken": storage.stsToken,
        "stsExpiration": storage.stsExpiration,
    })


def prefix_problems(segments: Sequence[str], *, path: Path = ()) -> list[Problem]:
    """Every problem of ``segments`` as one ``fileNamePrefix`` (a storage prefix joined with a
    session's, ``target.joined_prefix``): segments of letters and digits, at most 128 characters
    joined (rule file_name_prefix; S3).  No segments is no prefix, and no problem.

    ``segments``: the joined prefix.  ``path`` (tuple of str and int): where the prefix is;
    problems are reported at ``(*path, "fileNamePrefix")``.  Returns the problems; raises nothing.
    """
    if not segments:
        return []
    checker = _Checker(None)
    checker.prefix({"fileNamePrefix": list(segments)}, "fileNamePrefix", path)
    return checker.problems
