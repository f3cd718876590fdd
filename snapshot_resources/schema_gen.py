"""JSON Schemas generated from ``rules.py``: the stack config and the start request body.

Public API::

    stack_schema() -> dict          # snapshot_resources/schemas/snapshot-stack.schema.json
    start_schema() -> dict          # snapshot_resources/schemas/agora-snapshot-start.schema.json
    SCHEMA_DIR                      # that directory: the schemas ship in the wheel
    SCHEMAS: dict[str, Callable[[], dict]]   # file name -> generator
    render(schema) -> str           # the committed text (2-space JSON, trailing newline)
    write_schemas(directory) -> list[pathlib.Path]
    start_body_problems(body) -> list[spec.Problem]           # against start_schema()
    stack_schema_problems(document) -> list[spec.Problem]     # against stack_schema()
    anchored(regex), up_to(limit), any_case(word)             # pattern helpers

Nothing here is hand-written JSON: every bound, enum, pattern and region table is read from
``rules.py`` (rules as data, botocore's model).  Each object's properties and required keys come
from its table of fields (``fields_schema``, ``field_schema`` by the field's kind); what is written
here is the rules across fields (``recording_schema``, ``vendor_rules``, ``storage_schema``).
Subschemas carry two annotations that validators ignore: ``x-rule`` (the rule id a failure
reports) and ``x-path`` (the key a cross-field failure is about).  ``description`` holds the rule text for editors.

What JSON Schema cannot say, and so only ``spec.py`` checks (each also noted in ``$comment``):
the joined length of ``fileNamePrefix`` (a schema cannot add lengths; it bounds each segment and
the segment count), the union count behind ``subscribeUidGroup`` (the schema bounds it per list),
that a session's ``storage`` names a declared target, that no two sessions share channel and uid,
and that ``1`` and ``"1"`` are the same uid in a subscription list.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from snapshot_resources import rules
from snapshot_resources.rules import Choice, IntRange, Kind, Pattern, Rule, Vendor
from snapshot_resources.spec import (
    Problem,
    show_value,
    unknown_key_message,
)

Schema = dict[str, Any]

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
STACK_SCHEMA_FILE: Final = "snapshot-stack.schema.json"
START_SCHEMA_FILE: Final = "agora-snapshot-start.schema.json"

# --------------------------------------------------------------------------------------------------
# Building blocks


def anchored(regex: str) -> str:
    """A rules.py regex (used with re.fullmatch) as a JSON Schema pattern (searched).

    ``$(?!\\n)``: Python's ``$`` also matches before a final newline, ECMA-262's does not; the
    look-ahead makes both engines agree with ``re.fullmatch``.
    """
    return f"^(?:{regex})$(?!\\n)"


def up_to(limit: int) -> str:
    """A regex for the decimal integers 1..limit without leading zeros (uids up to 2^32-1)."""
    digits = str(limit)
    n = len(digits)
    alternatives = [f"[1-9][0-9]{{0,{n - 2}}}"] if n > 1 else []
    for i, d in enumerate(digits):
        low, high = (1 if i == 0 else 0), int(d) - 1
        if high >= low:
            rest = n - i - 1
            alternatives.append(digits[:i] + f"[{low}-{high}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


def any_case(word: str) -> str:
    """A regex for ``word`` in any letter case, '-' and '_' interchangeable (rules.Vendor.region_code
    and rules.vendor_by_name compare that way)."""
    out = []
    for ch in word:
        if ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch in "-_":
            out.append("[-_]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _names(words: Iterable[str]) -> str:
    return anchored(r"\s*(?:" + "|".join(any_case(w) for w in words) + r")\s*")


def _describe(rule: Rule) -> str:
    # The rule as registered: a field's own bound (stsExpiration's) is described by its rule.
    rule = rules.RULES_BY_ID.get(rule.id, rule)
    return f"{rule.text} (rule {rule.id}; {rule.cite() or 'this tool'})"


def ruled(rule: Rule, schema: Schema, *, key: str | None = None) -> Schema:
    """``schema`` annotated with the rule it checks (and the key a cross-field check is about)."""
    out: Schema = {"description": _describe(rule), "x-rule": rule.id, **schema}
    if key is not None:
        out["x-path"] = key
    return out


def int_schema(rule: IntRange | Choice, *, default: bool = True) -> Schema:
    body: Schema = {"type": "integer"}
    if isinstance(rule, IntRange):
        body |= {"minimum": rule.minimum, "maximum": rule.maximum}
    else:
        body["enum"] = list(rule.values)
    if default and rule.default is not None:
        body["default"] = rule.default
    return ruled(rule, body)


def pattern_schema(rule: Rule, pattern: Pattern) -> Schema:
    body: Schema = {"type": "string", "pattern": anchored(pattern.regex)}
    if pattern.max_length is not None:
        body["maxLength"] = pattern.max_length  # the patterns are ASCII: characters = bytes
    return ruled(rule, body)


def forbidden(rule: Rule) -> Schema:
    return ruled(rule, {"not": {}})


def secret_string(rule: Rule, *, secure: bool) -> Schema:
    """A secret: a non-empty string, or (in a stack file) a Pulumi ``{secure: ...}`` value."""
    text: Schema = {"type": "string", "minLength": 1}
    if not secure:
        return ruled(rule, text)
    return ruled(rule, {"anyOf": [text, {"$ref": "#/$defs/secure"}]})


SECURE_DEF: Final[Schema] = {
    "description": "A Pulumi secret as the stack file stores it (accepted as opaque).",
    "type": "object",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


def _has(key: str) -> Schema:
    return {"required": [key]}


def _has_any(*keys: str) -> Schema:
    return _has(keys[0]) if len(keys) == 1 else {"anyOf": [_has(k) for k in keys]}


def _list_key(key: str, wire: bool) -> str:
    """A subscription list's key: on the wire a blacklist takes the spelling sent to Agora."""
    return rules.BLACKLIST_WIRE_NAMES.get(key, key) if wire else key


def _spellings(key: str, wire: bool) -> tuple[str, ...]:
    """Every key a subscription list may appear under: one on the wire, both in a stack file."""
    if wire:
        return (_list_key(key, wire),)
    return (key, *(alias for alias, canonical in rules.BLACKLIST_ALIASES.items() if canonical == key))


def _none_of(*keys: str) -> Schema:
    return {"not": {"anyOf": [_has(k) for k in keys]}} if len(keys) > 1 else {"not": _has(keys[0])}


# --------------------------------------------------------------------------------------------------
# Sessions


def uid_schema(*, wire: bool) -> Schema:
    text = {"type": "string", "pattern": anchored(up_to(rules.UID_MAX))}
    if wire:
        return text
    return {"anyOf": [{"type": "integer", "minimum": 1, "maximum": rules.UID_MAX}, text]}


def uid_list_schema(*, wire: bool) -> Schema:
    entry = {"anyOf": [uid_schema(wire=wire), {"const": rules.ALL_STREAMS}]}
    return ruled(rules.SUBSCRIBE_LIST, {
        "type": "array",
        "minItems": 1,
        "maxItems": rules.SUBSCRIBE_LIST_MAX,
        "uniqueItems": True,
        "items": entry,
        # '#allstream#' stands alone (S3, S5).
        "if": {"contains": {"const": rules.ALL_STREAMS}},
        "then": {"maxItems": 1},
    })


def prefix_schema() -> Schema:
    longest = rules.FILE_NAME_PREFIX_MAX
    return ruled(rules.FILE_NAME_PREFIX, {
        "$comment": (
            "The joined length (segments plus '/') must be at most "
            f"{longest}; JSON Schema cannot add lengths, so it bounds each segment and the count."
        ),
        "type": "array",
        "minItems": 1,
        "maxItems": (longest + 1) // 2,  # one-character segments and their slashes
        "items": {"type": "string", "pattern": anchored(rules.FILE_NAME_PREFIX.regex),
                  "maxLength": longest},
    })


def recording_schema(*, wire: bool, secure: bool) -> Schema:
    properties = fields_schema(rules.RECORDING, wire=wire, secure=secure)
    decrypting = {"required": ["decryptionMode"],
                  "properties": {"decryptionMode": {"not": {"const": 0}}}}
    salted = {"required": ["decryptionMode"],
              "properties": {"decryptionMode": {"enum": sorted(rules.SALT_MODES)}}}
    def has(key: str) -> Schema:  # the list is present, under any spelling it may have here
        return _has_any(*_spellings(key, wire))

    audio_lists = {"anyOf": [has(k) for k in rules.AUDIO_LIST_KEYS]}
    checks: list[Schema] = [
        {"if": decrypting, "then": ruled(rules.DECRYPTION_SECRET, _has("secret")),
         "else": ruled(rules.DECRYPTION_SECRET, _none_of("secret"), key="secret")},
        {"if": salted, "then": ruled(rules.DECRYPTION_SALT, _has("salt")),
         "else": ruled(rules.DECRYPTION_SALT, _none_of("salt"), key="salt")},
        ruled(rules.SUBSCRIBE_EXCLUSIVE, {"not": {"allOf": [has(k) for k in rules.VIDEO_LIST_KEYS]}},
              key=_list_key("unsubscribeVideoUids", wire)),
        ruled(rules.SUBSCRIBE_EXCLUSIVE, {"not": {"allOf": [has(k) for k in rules.AUDIO_LIST_KEYS]}},
              key=_list_key("unsubscribeAudioUids", wire)),
        ruled(rules.AUDIO_NEEDS_VIDEO_LIST,
              {"dependentRequired": {"subscribeAudioUids": ["subscribeVideoUids"]}},
              key="subscribeAudioUids"),
        {"if": has("unsubscribeAudioUids"),
         "then": ruled(rules.AUDIO_NEEDS_VIDEO_LIST,
                       {"anyOf": [has(k) for k in rules.VIDEO_LIST_KEYS]},
                       key=_list_key("unsubscribeAudioUids", wire))},
        *([] if wire else [
            ruled(rules.BLACKLIST_SPELLING, {"not": {"required": [canonical, alias]}}, key=alias)
            for alias, canonical in rules.BLACKLIST_ALIASES.items()
        ]),
        {"if": audio_lists,
         "then": ruled(rules.AUDIO_LIST_NEEDS_AUDIO_STREAM,
                       {"properties": {"streamTypes": {"const": 2}}})},
        *uid_group_bounds(),
    ]
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "allOf": checks,
    }
    # Always sent (channelType: S3; rules.STREAM_TYPES and rules.SUBSCRIBE_UID_GROUP decisions).
    return schema | _required(rules.RECORDING, wire=wire)


def uid_group_bounds() -> list[Schema]:
    """subscribeUidGroup is at least the group of each whitelist's length.

    The rule counts the union of audio and video uids (S3), which JSON Schema cannot count; a
    bound per list never rejects a valid config, and spec.py checks the union.
    """
    out: list[Schema] = []
    for group, low, _high in rules.SUBSCRIBE_UID_GROUPS[1:]:
        for key in ("subscribeVideoUids", "subscribeAudioUids"):
            out.append({
                "if": {"required": [key, "subscribeUidGroup"],
                       "properties": {key: {"minItems": low}}},
                "then": ruled(rules.SUBSCRIBE_UID_GROUP,
                              {"properties": {"subscribeUidGroup": {"minimum": group}}}),
            })
    return out


def session_schema() -> Schema:
    """A ``StackSessionSpec`` (the stack file's session entry)."""
    return object_schema(rules.SESSION, wire=False, required_first=True)


# --------------------------------------------------------------------------------------------------
# Storage


def vendor_match(vendor: Vendor) -> Schema:
    """Matches ``vendor`` given as its code, a digit string or a name (rules.vendor_by_name)."""
    names = [vendor.name, *vendor.aliases]
    code = anchored(r"\s*0*" + str(vendor.code) + r"\s*")
    return {"anyOf": [{"const": vendor.code},
                      {"type": "string", "pattern": _names(names)},
                      {"type": "string", "pattern": code}]}


def vendor_schema(*, wire: bool) -> Schema:
    codes = list(rules.VENDORS)
    if wire:
        return ruled(rules.STORAGE_VENDOR, {"enum": codes})
    names = [n for v in rules.VENDORS.values() for n in (v.name, *v.aliases)]
    digits = anchored(r"\s*0*(?:" + "|".join(str(c) for c in codes) + r")\s*")
    return ruled(rules.STORAGE_VENDOR, {"anyOf": [
        {"enum": codes},
        {"type": "string", "pattern": _names(names)},
        {"type": "string", "pattern": digits},
    ]})


def region_match(vendor: Vendor, *, wire: bool) -> Schema:
    codes: Schema = {"enum": list(vendor.regions)}
    if wire:
        return codes
    if vendor.any_region:  # any name means region 0 (rules.Vendor.any_region)
        return {"anyOf": [codes, {"type": "string", "pattern": r"\S"}]}
    words = {w for label, vid in vendor.regions.values() for w in (label, vid)}
    words |= set(vendor.extra_region_aliases)
    return {"anyOf": [codes, {"type": "string", "pattern": _names(sorted(words))}]}


def vendor_rules(vendor: Vendor, *, wire: bool) -> Schema:
    """The rules that depend on the vendor, applied when ``vendor`` names this one."""
    then: list[Schema] = [
        ruled(rules.STORAGE_REGION, {"properties": {"region": region_match(vendor, wire=wire)}}),
    ]
    if wire or not vendor.any_region:
        then.append(ruled(rules.STORAGE_REGION, _has("region")))
    if not wire:
        # The wire schema leaves bucket naming to spec.py: it is the vendor's rule, not Agora's,
        # and Agora's own screenshot example sends bucket "b" (docs/agora-api.md section 3.1).
        naming = vendor.bucket
        bucket: Schema = {"pattern": anchored(naming.regex)}
        if naming.max_length is not None:
            bucket["maxLength"] = naming.max_length
        then.append(ruled(rules.BUCKET_NAME, {"properties": {"bucket": bucket}}))
    for item in _refused(rules.EXTENSION, vendor):
        then.append(ruled(item.rule, {"properties": {"extensionParams": _none_of(item.name)}},
                          key=item.name))
    if vendor.code in rules.ENDPOINT_VENDORS:
        then.append(ruled(rules.EXTENSION_ENDPOINT, {
            "required": ["extensionParams"],
            "properties": {"extensionParams": _has("endpoint")},
        }, key="extensionParams"))
    refused = _refused(rules.STORAGE, vendor)
    if refused:  # stsToken and stsExpiration (rule sts_fields)
        then.append(ruled(refused[0].rule, _none_of(*(item.name for item in refused))))
    if not wire and vendor.code not in rules.PROVISION_VENDORS:
        then.append(ruled(rules.PROVISION, {"properties": {"provision": {"const": False}}}))
    match = vendor_match(vendor) if not wire else {"const": vendor.code}
    return {"if": {"required": ["vendor"], "properties": {"vendor": match}}, "then": {"allOf": then}}


def _refused(shape: rules.Shape, vendor: Vendor) -> list[rules.Field]:
    """The fields of ``shape`` this vendor does not take (``rules.Field.vendors``)."""
    return [f for f in shape.fields if f.vendors is not None and vendor.code not in f.vendors]


def storage_schema(*, wire: bool) -> Schema:
    checks: list[Schema] = [
        ruled(rules.STS_FIELDS, {"dependentRequired": {"stsToken": ["stsExpiration"],
                                                       "stsExpiration": ["stsToken"]}}),
        *(vendor_rules(v, wire=wire) for v in rules.VENDORS.values()),
    ]
    if not wire:
        provisioned = {"required": ["provision"], "properties": {"provision": {"const": True}}}
        checks += [
            {"if": provisioned,
             "then": ruled(rules.STORAGE_CREDENTIALS, _none_of("accessKey", "secretKey")),
             "else": ruled(rules.STORAGE_CREDENTIALS, {"required": ["accessKey", "secretKey"]})},
            {"if": {"not": provisioned},
             "then": ruled(rules.RETENTION_DAYS, _none_of("retentionDays"), key="retentionDays")},
        ]
    return object_schema(rules.STORAGE, wire=wire, required_first=True) | {"allOf": checks}


# --------------------------------------------------------------------------------------------------
# Objects and fields, from the tables of rules.py


def field_schema(item: rules.Field, *, wire: bool, secure: bool | None = None) -> Schema:
    """One field's schema, by its kind; ``wire``: as sent to Agora, ``secure``: a secret may be
    a stack file's ``{secure: ...}`` value (default: not on the wire).  The rules across fields
    are the object's (``recording_schema``, ``storage_schema`` ...)."""
    secure = not wire if secure is None else secure
    rule, kind = item.rule, item.kind
    if kind is Kind.INTEGER:
        return int_schema(cast(IntRange | Choice, rule), default=not wire and item.default is not None)
    if kind is Kind.STORAGE:  # the target itself on the wire, the name of an entry in a stack file
        if wire:
            return ruled(rules.MAPPING, storage_schema(wire=True))
        return ruled(rule, {"type": "string", "minLength": 1})
    if kind is Kind.STRING:
        if item.secret and isinstance(rule, Pattern):
            return ruled(rule, {"anyOf": [{"type": "string", "pattern": anchored(rule.regex)},
                                          *([{"$ref": "#/$defs/secure"}] if secure else [])]})
        if item.secret:
            return secret_string(rule, secure=secure)
        if isinstance(rule, Pattern):
            return pattern_schema(rule, rule)
        if isinstance(rule, Choice):
            return ruled(rule, {"enum": list(rule.values)})
        return ruled(rule, {"type": "string", "minLength": 1})
    if kind is Kind.OBJECT:
        shape = cast(rules.Shape, item.shape)
        if shape is rules.RECORDING:  # its schema also states the rules across its fields
            return ruled(rule, recording_schema(wire=wire, secure=secure))
        return ruled(rule, object_schema(shape, wire=wire))
    if kind is Kind.BOOLEAN:
        return ruled(rule, {"type": "boolean", "default": item.default})
    if kind is Kind.UID:
        return ruled(rule, uid_schema(wire=wire))
    if kind is Kind.UID_LIST:
        return uid_list_schema(wire=wire)
    if kind is Kind.PREFIX:
        return prefix_schema()
    if kind is Kind.CONST:
        return ruled(rule, {"const": list(cast(Choice, rule).values)})
    if kind is Kind.VENDOR:
        return vendor_schema(wire=wire)
    if kind is Kind.REGION:
        return ruled(rule, {"type": "integer"} if wire else {"type": ["integer", "string"]})
    if kind is Kind.BUCKET:  # the vendor's naming rule is in vendor_rules
        return ruled(rule, {"type": "string", "minLength": 1})
    assert kind is Kind.FORBIDDEN, kind
    return forbidden(rule)


def fields_schema(shape: rules.Shape, *, wire: bool, secure: bool | None = None) -> Schema:
    """``properties`` of ``shape``: every field in table order, on the wire under the key sent
    (and only the inputs), in a stack file also under each other accepted spelling."""
    out: Schema = {}
    for item in shape.fields:
        if not wire:
            out[item.name] = field_schema(item, wire=False, secure=secure)
        elif item.input:
            out[item.wire_name] = field_schema(item, wire=True, secure=secure)
    if not wire:  # a stack file may use either blacklist spelling, one at a time
        out |= {item.sent_as: field_schema(item, wire=False, secure=secure)
                for item in shape.fields if item.sent_as is not None}
    return out


def _required(shape: rules.Shape, *, wire: bool) -> Schema:
    """``required`` of ``shape``: what the user must give, and on the wire what is always sent."""
    keys = [f.name for f in shape.fields if f.required]
    if wire:
        keys += [f.wire_name for f in shape.fields if f.sent and not f.required]
    return {"required": keys} if keys else {}


def object_schema(shape: rules.Shape, *, wire: bool, required_first: bool = False) -> Schema:
    """An object of ``shape``'s fields, no other key; ``required_first`` puts ``required`` before
    ``additionalProperties`` (as the committed schemas have it for sessions and storage)."""
    head: Schema = {"type": "object", "properties": fields_schema(shape, wire=wire)}
    if required_first:
        return head | _required(shape, wire=wire) | {"additionalProperties": False}
    return head | {"additionalProperties": False} | _required(shape, wire=wire)


# --------------------------------------------------------------------------------------------------
# The two documents

_STACK_COMMENT: Final = (
    "Generated by `snapshot-resources schema --write` from snapshot_resources/rules.py; do not "
    "edit. Checked only by `snapshot-resources validate`: a session's storage must be declared, no "
    "two sessions may share channel and uid (S7 code 53), fileNamePrefix joined with the storage "
    "prefix is at most 128 characters, subscribeUidGroup covers the union of audio and video uids."
)


def stack_schema() -> Schema:
    """The stack config: a plain document with storage + sessions, or a Pulumi stack file whose
    ``config`` holds ``storage`` and ``sessions`` with or without a project's namespace
    (``<project>:storage``; a JSON Schema cannot know the project's name, ``validate`` does)."""
    storage = ruled(rules.MAPPING, {"type": "object",
                                    "additionalProperties": {"$ref": "#/$defs/storage"}})
    sessions = ruled(rules.MAPPING, {"type": "object",
                                     "additionalProperties": {"$ref": "#/$defs/session"}})
    return {
        "$schema": DIALECT,
        "title": "agora-snapshots stack config (storage targets and snapshot sessions)",
        "description": (
            "A Pulumi.<stack>.yaml (config: storage and sessions, or <project>:storage and "
            "<project>:sessions) or a plain document with storage and sessions. In an "
            "editor: put '# yaml-language-server: $schema=<path>/snapshot-stack.schema.json' on "
            "the first line. In CI: snapshot-resources validate FILE (all rules) or "
            "check-jsonschema --schemafile <path>/snapshot-stack.schema.json FILE."
        ),
        "$comment": _STACK_COMMENT,
        "type": "object",
        "if": _has("config"),
        "then": {
            "properties": {"config": {
                "type": "object",
                "properties": {
                    "storage": storage,
                    "sessions": sessions,
                    "agora:appId": {"anyOf": [pattern_schema(rules.APP_ID, rules.APP_ID),
                                              {"$ref": "#/$defs/secure"}]},
                },
                "patternProperties": {
                    "^[^:]+:storage$": storage,
                    "^[^:]+:sessions$": sessions,
                },
            }},
        },
        "else": {
            "properties": {"storage": storage, "sessions": sessions},
            "additionalProperties": False,
        },
        "$defs": {
            "storage": storage_schema(wire=False),
            "session": session_schema(),
            "secure": SECURE_DEF,
        },
    }


def start_schema() -> Schema:
    """The body of ``start`` in individual mode with ``snapshotConfig`` (docs/agora-api.md section 3)."""
    session = rules.SESSION
    return {
        "$schema": DIALECT,
        "title": "Agora Cloud Recording start body: individual mode, snapshots only",
        "$comment": (
            "Generated by `snapshot-resources schema --write` from snapshot_resources/rules.py; do "
            "not edit. The URL's mode must be individual (S3, S8); it is not part of the body."
        ),
        "type": "object",
        "properties": {
            "cname": field_schema(session["cname"], wire=True),
            "uid": field_schema(session["uid"], wire=True),
            "clientRequest": ruled(rules.MAPPING, {
                "type": "object",
                "properties": {
                    "token": field_schema(session["token"], wire=True),
                    "recordingConfig": field_schema(session["recordingConfig"], wire=True),
                    "snapshotConfig": field_schema(session["snapshotConfig"], wire=True),
                    "storageConfig": field_schema(session["storage"], wire=True),
                    "recordingFileConfig": field_schema(session["recordingFileConfig"], wire=True),
                },
                "required": ["recordingConfig", "snapshotConfig", "storageConfig"],
                "additionalProperties": False,
            }),
        },
        "required": ["cname", "uid", "clientRequest"],
        "additionalProperties": False,
    }


SCHEMAS: Final[Mapping[str, Callable[[], Schema]]] = {
    STACK_SCHEMA_FILE: stack_schema,
    START_SCHEMA_FILE: start_schema,
}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"
"""Where the committed schemas live: inside the package, so that the wheel carries them."""


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in SCHEMAS.items():
        path = directory / name
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------------
# Validation with problems named by path and rule


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    schema = SCHEMAS[name]()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def start_body_problems(body: object) -> list[Problem]:
    """Every way ``body`` breaks the start schema, as Problems (no secret value in a message)."""
    return _problems(_validator(START_SCHEMA_FILE), body)


def stack_schema_problems(document: object) -> list[Problem]:
    return _problems(_validator(STACK_SCHEMA_FILE), document)


def _problems(validator: Draft202012Validator, instance: object) -> list[Problem]:
    seen: dict[tuple[tuple[str | int, ...], str, str], Problem] = {}
    for error in validator.iter_errors(_printable(instance)):
        for problem in _translate(validator.schema, error):
            seen.setdefault((problem.path, problem.rule_id, problem.message), problem)
    return sorted(seen.values(), key=lambda p: [str(x) for x in p.path])


def _annotations(root: Schema, error: ValidationError) -> tuple[Rule, str | None]:
    """The deepest ``x-rule`` (and its ``x-path``) on the way to the failing keyword."""
    rule, key = rules.MAPPING, None
    node: Any = root
    for step in error.absolute_schema_path:
        if isinstance(node, dict) and "x-rule" in node:
            rule, key = rules.RULES_BY_ID[node["x-rule"]], node.get("x-path")
        if isinstance(node, dict) and step not in node and str(node.get("$ref", "")).startswith("#/"):
            node = _pointer(root, node["$ref"])  # the path runs on inside the referenced schema
            if "x-rule" in node:
                rule, key = rules.RULES_BY_ID[node["x-rule"]], node.get("x-path")
        in_dict = isinstance(node, dict) and isinstance(step, str) and step in node
        if not (in_dict or (isinstance(node, list) and isinstance(step, int))):
            break
        node = node[step]
        if step == "$ref" and isinstance(node, str) and node.startswith("#/"):
            node = _pointer(root, node)
    if isinstance(node, dict) and "x-rule" in node:
        rule, key = rules.RULES_BY_ID[node["x-rule"]], node.get("x-path")
    return rule, key


def _pointer(root: Schema, ref: str) -> Any:
    """A local ``$ref`` ("#/$defs/session") resolved in ``root``."""
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _missing(schema: Schema, rule: Rule, path: tuple[str | int, ...], key: str) -> Problem:
    """A required key is missing: the key's own rule where the schema declares the key, else the
    rule of the cross-field branch that requires it."""
    own = schema.get("properties", {}).get(key, {})
    if isinstance(own, dict) and "x-rule" in own:
        rule = rules.RULES_BY_ID[own["x-rule"]]
    return Problem((*path, key), f"is required; {rule.text}", rule.id)


def _translate(root: Schema, error: ValidationError) -> list[Problem]:
    rule, key = _annotations(root, error)
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    instance = error.instance
    keyword = error.validator
    if keyword == "additionalProperties" and isinstance(instance, dict):
        declared = error.schema.get("properties", {})
        # Suggest only keys one may write, not the ones declared to be refused ({"not": {}}).
        known = [k for k, v in declared.items() if not (isinstance(v, dict) and v.get("not") == {})]
        return [Problem((*path, str(k)), unknown_key_message(k, known), rules.UNKNOWN_KEY.id)
                for k in instance if k not in declared]
    if keyword == "required" and isinstance(instance, dict):
        return [_missing(error.schema, rule, path, k)
                for k in error.validator_value if k not in instance]
    if keyword == "dependentRequired" and isinstance(instance, dict):
        return [Problem((*path, k), f"is set without {', '.join(needs)}; {rule.text}", rule.id)
                for k, needs in error.validator_value.items()
                if k in instance and any(n not in instance for n in needs)]
    if key is not None:
        return [Problem((*path, key), f"breaks the rule; {rule.text}", rule.id)]
    if keyword == "not" and error.validator_value == {}:
        return [Problem(path, f"must not be set; {rule.text}" if not rule.text.startswith("must")
                        else rule.text, rule.id)]
    last = path[-1] if path else ""
    shown = "a secret value" if last in rules.SECRET_FIELDS else show_value(last, instance)
    return [Problem(path, f"is {shown}; {rule.text}", rule.id)]


# Python 3.11 refuses to print an int of more than sys.get_int_max_str_digits() digits, and
# jsonschema puts repr(instance) into its messages. A bit length beyond this bound has too many
# digits for the default limit (4300 digits is about 14284 bits).
_MAX_PRINTABLE_BITS: Final = int((sys.get_int_max_str_digits() or 4300) * 3.3219) - 8


def _printable(value: object) -> object:
    """``value`` with integers too long to print replaced by a marker string: no such number is
    a valid value anywhere, and the schema then reports it at its path instead of crashing."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "<integer too large>" if abs(value).bit_length() > _MAX_PRINTABLE_BITS else value
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value
