"""A stack file's YAML as the Pulumi CLI reads it, so that ``validate`` sees what the program gets.

The CLI reads ``Pulumi.<stack>.yaml`` with ``gopkg.in/yaml.v3`` (YAML 1.2: only ``true``/``false``
are booleans), writes the document out again and reads it back (``LoadProjectStackBytes``), and
hands the program each object as JSON in which numbers pass through Go's ``float64`` above the
``int64`` range.  PyYAML reads YAML 1.1 (``yes`` and ``on`` are booleans, ``1:30`` is 90), so the
same file read by PyYAML's resolvers would be judged on other values than the deploy sees.
Measured with the CLI this project builds (3.274.1) on every kind of scalar below
(``tests/engine/test_engine_stack_files.py`` compares ``validate`` and ``pulumi preview`` on whole
stack files); the reading follows yaml.v3's ``resolve.go`` and Pulumi's
``sdk/go/common/resource/config/object.go``:

* a plain (unquoted, untagged) scalar is ``true``/``True``/``TRUE`` (and ``false`` likewise), null
  (empty, ``~``, ``null``, ``Null``, ``NULL``), an integer in Go's syntax after dropping ``_``
  (``010`` is octal 8, ``0x1F``, ``0o17``, ``0b101``, ``+5``), a float (``1e3``, ``.5``), a
  timestamp (``2024-01-02``: the program gets Go's ``2024-01-02 00:00:00 +0000 UTC``), and
  otherwise the string as written (``yes``, ``on``, ``1:30``, ``1e400``);
* a float that is a whole number under 1e21 reaches the program as an integer (``5.0`` is 5), an
  integer above 2**63 - 1 as a double (its last digits lost);
* ``.inf`` and ``.nan`` cannot be passed at all (Go's JSON has no such numbers): preview fails.

``plain_value`` gives a plain scalar's value inside a config object, ``plain_key`` a mapping key,
``top_level_text`` what ``pulumi.Config().get`` returns for a top-level key, and ``surprise`` says
when the value is not what the text suggests (for a "quote it" warning).  ``PulumiLoader`` is a
PyYAML loader that leaves plain scalars to these functions (tag ``PLAIN_TAG``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import yaml

PLAIN_TAG: Final = "tag:agora-snapshots,2026:plain"
"""The tag ``PulumiLoader`` gives a plain scalar: its value is ``plain_value(node.value)``."""
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"

_INT64: Final = 2**63
_UINT64: Final = 2**64
_JSON_EXPONENT_FROM: Final = 1e21  # Go's encoding/json writes 'f' below, 'e' from here on


class UnpassableScalarError(ValueError):
    """A plain scalar the CLI reads but cannot hand to a program (``.inf``, ``.nan``)."""


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class PulumiLoader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's safe loader with one change: a plain scalar is tagged ``PLAIN_TAG`` (``<<``
    stays a merge key), so that its value is read as the Pulumi CLI reads it, not by YAML 1.1's
    resolvers.  Quoted and explicitly tagged scalars are read as before."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE_TAG if value == "<<" else PLAIN_TAG
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        """A mapping whose plain keys are keyed as the CLI keys them (``plain_key``)."""
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # "<<" merges, as the safe constructor does
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == PLAIN_TAG:
                key = plain_key(key_node.value)
            else:
                key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found unhashable key", key_node.start_mark) from None
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _construct_plain(loader: Any, node: yaml.ScalarNode) -> Any:
    return plain_value(node.value)


PulumiLoader.add_constructor(PLAIN_TAG, _construct_plain)

_TRUE: Final = frozenset({"true", "True", "TRUE"})
_FALSE: Final = frozenset({"false", "False", "FALSE"})
_NULL: Final = frozenset({"", "~", "null", "Null", "NULL"})
_UNPASSABLE: Final = frozenset({".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
                                "+.INF", "-.inf", "-.Inf", "-.INF"})
# yaml.v3's yamlStyleFloat, and its float for a scalar that starts with '.'.
_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_DIGITS: Final = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789"),
                  16: frozenset("0123456789abcdefABCDEF")}
# yaml.v3's allowedTimestampFormats, as Go's time.Parse reads them (1- or 2-digit fields).
_TIMESTAMP: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?")
_STARTS: Final = frozenset("+-0123456789.tTfFnN~")  # what may be anything but a string
_YAML11_BOOLS: Final = frozenset(
    word for base in ("y", "yes", "n", "no", "on", "off") for word in (base, base.title(),
                                                                       base.upper()))
_SEXAGESIMAL: Final = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")


def _go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``, else ``ParseUint(text, 0, 64)`` (no sign), as yaml.v3
    tries them; None when neither reads it."""
    body = text.lstrip("+-") if text[:1] in "+-" else text
    if len(text) - len(body) > 1 or not body:
        return None
    base, digits = 10, body
    if body[0] == "0" and len(body) > 1:
        prefix = body[1]
        base, digits = {"x": (16, body[2:]), "X": (16, body[2:]), "o": (8, body[2:]),
                        "O": (8, body[2:]), "b": (2, body[2:]), "B": (2, body[2:])}.get(
                            prefix, (8, body[1:]))
    if not digits or not set(digits) <= _DIGITS[base]:
        return None
    value = int(digits, base) * (-1 if text[0] == "-" else 1)
    if -_INT64 <= value < _INT64 or (text[0] not in "+-" and value < _UINT64):
        return value
    return None


def _timestamp(text: str) -> str | None:
    """yaml.v3's timestamp reading of ``text`` as the program gets it: Go's
    ``time.Time.String()``, ``2006-01-02 15:04:05.999999999 -0700 MST`` (an offset parsed from
    the text has no zone name, so Go prints the offset again); None when it is no timestamp."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    if parts["sep"] == " " and parts["tz"] is not None:
        return None  # "2006-1-2 15:4:5.999999999" has no zone
    try:
        stamp = datetime(int(parts["y"]), int(parts["mo"]), int(parts["d"]),
                         int(parts["h"] or 0), int(parts["mi"] or 0), int(parts["s"] or 0))
    except ValueError:
        return None  # time.Parse refuses month 13, hour 24 ...
    fraction = (parts["frac"] or "")[:9].rstrip("0")
    zone = parts["tz"]
    if zone in (None, "Z"):
        offset, name = "+0000", "UTC"
    else:
        offset = zone.replace(":", "")
        name = offset
    return f"{stamp:%Y-%m-%d %H:%M:%S}" + (f".{fraction}" if fraction else "") + f" {offset} {name}"


def _double(value: float) -> int | float:
    """A number as it arrives after Go's ``float64`` and JSON: whole numbers under 1e21 are
    written without a decimal point, so Python reads them as ``int``."""
    number = float(value)
    if number.is_integer() and abs(number) < _JSON_EXPONENT_FROM:
        # Go writes the shortest digits that read back as the double, then zeros:
        # 12345678901234567890 arrives as 12345678901234567000.
        return int(Decimal(repr(number)))
    return number


def _first_pass(text: str) -> object:
    """yaml.v3's ``resolve("", text)``: the Go value of a plain scalar."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if text in _UNPASSABLE:
        raise UnpassableScalarError(text)
    if not text or text[0] not in _STARTS:
        return text
    first = text[0]
    if first == ".":
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    if first not in "+-0123456789":
        return text  # t, f, n, ~ words other than the above are strings
    stamp = _timestamp(text)
    if stamp is not None:
        return stamp
    plain = text.replace("_", "")
    if plain:
        number = _go_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT.fullmatch(plain):
            value = float(plain)
            if not math.isinf(value):  # strconv.ParseFloat's range error: the text stays
                return value
    return text


def plain_value(text: str) -> object:
    """The value a program gets, inside a config object, for the plain scalar ``text``.

    Raises ``UnpassableScalarError`` for ``.inf`` and ``.nan``."""
    value = _first_pass(text)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return value
    return _double(value)  # type: ignore[arg-type]


def plain_key(text: str) -> str:
    """A plain mapping key as the CLI keys it (Go's ``fmt.Sprintf("%v", key)``)."""
    value = _first_pass(text)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(_double(value)) if isinstance(value, float) else str(value)


def top_level_text(value: object) -> str | None:
    """What ``pulumi.Config(namespace).get(key)`` returns for a top-level config value read as
    ``plain_value`` reads it (None for no value; objects are JSON, not handled here)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        number = _double(value)
        if isinstance(number, int):
            return str(number)
        text = repr(number)
        return re.sub(r"e([-+])0(\d)$", r"e\1\2", text)  # Go writes e-7, Python e-07
    return str(value)


def surprise(text: str) -> str | None:
    """Why the plain scalar ``text`` does not mean what it seems to, for a "quote it" warning:
    Pulumi's reading differs from YAML 1.1's (``yes``, ``1:30``) or from the text itself
    (``010`` is 8, a date becomes Go's time text); None when it reads as written."""
    if text in _YAML11_BOOLS:
        return (f"YAML 1.1 reads {text} as a boolean, Pulumi (YAML 1.2) as the string "
                f"{text!r}")
    if text in _UNPASSABLE:
        return f"Pulumi cannot pass {text} to the program (JSON has no such number)"
    if not text or text[0] not in "+-0123456789.":
        return None
    if _SEXAGESIMAL.fullmatch(text) and not _TIMESTAMP.fullmatch(text):
        return f"YAML 1.1 reads {text} as a base-60 number, Pulumi as the string {text!r}"
    value = _first_pass(text)
    if isinstance(value, str):
        if _TIMESTAMP.fullmatch(text):
            return f"Pulumi reads the date {text} as the text {value!r}"
        return None
    shown = plain_value(text)
    if str(shown) != text and not (isinstance(value, float) and _YAML_FLOAT.fullmatch(text)
                                   and float(str(shown)) == float(text)
                                   and abs(float(text)) < _INT64):
        return f"Pulumi reads {text} as the number {shown}"
    return None
