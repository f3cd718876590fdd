"""Every public name documents itself: ``help()`` on it shows this package's own text, naming each
parameter of its signature.

Public names are ``snapshot_resources.__all__``, ``snapshot_resources.testing.__all__`` and
``snapshot_resources.reconcile.__all__``.  A
docstring counts only when this package wrote it: not inherited from Pulumi or ``object``, and not
the signature line that ``dataclasses`` puts in ``__doc__`` when a class has none.  For a callable,
every parameter name except ``self``/``cls`` and ``*args``/``**kwargs`` must appear as a word in
the docstring of the function, or of the class or its ``__init__``; for a ``TypedDict`` every
key, for an ``Enum`` every member.  Rule ids cited as ``rule <id>`` must exist in
``rules.RULES_BY_ID``.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pydoc
import re
from collections.abc import Callable
from typing import Any, is_typeddict

import pulumi.dynamic
import pytest

import snapshot_resources
import snapshot_resources.reconcile
import snapshot_resources.testing
from snapshot_resources import rules

PACKAGE = "snapshot_resources"
PUBLIC: list[tuple[str, str]] = [
    *((PACKAGE, name) for name in snapshot_resources.__all__),
    *((f"{PACKAGE}.testing", name) for name in snapshot_resources.testing.__all__),
    *((f"{PACKAGE}.reconcile", name) for name in snapshot_resources.reconcile.__all__),
]

# A rule cited in prose as "rule capture_interval" (the form of problem messages); ids with an
# underscore only, so that prose such as "the rule of S8" is not taken for a citation.
_RULE_CITATION = re.compile(r"\brule ``?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)``?")


def _resolve(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _ours(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "") or "").split(".")[0] == PACKAGE


def _own_doc(obj: Any) -> str:
    """The docstring this package wrote for ``obj``, or ``""``."""
    if inspect.ismodule(obj):
        return obj.__doc__ or ""
    if inspect.isclass(obj):
        if not _ours(obj):
            return ""
        doc = obj.__dict__.get("__doc__") or ""
        # dataclasses set __doc__ to "Name(field: type, ...)" when the class has no docstring.
        return "" if doc.startswith(f"{obj.__name__}(") else doc
    return (obj.__doc__ or "") if _ours(obj) else ""


def _init_doc(cls: type) -> str:
    """The docstring of ``cls.__init__`` when this package defines that ``__init__``."""
    init = cls.__dict__.get("__init__") or getattr(cls, "__init__", None)
    if init is None or not _ours(init):
        return ""
    # Its own __doc__: inspect.getdoc would fall back to the docstring of the overridden method.
    return inspect.cleandoc(init.__doc__ or "")


def _documented_names(obj: Any) -> list[str]:
    """What the docstring must name: parameters of the signature this package defines, the keys
    of a TypedDict, the members of an Enum."""
    if inspect.ismodule(obj):
        return []
    if inspect.isclass(obj):
        if is_typeddict(obj):
            return list(obj.__annotations__)
        if issubclass(obj, enum.Enum):
            return [member.name for member in obj]
        constructor_ours = any(
            _ours(klass) and ("__init__" in klass.__dict__ or "__new__" in klass.__dict__
                              or "__dataclass_fields__" in klass.__dict__
                              or "__pydantic_fields__" in klass.__dict__)
            for klass in obj.__mro__
        )
        if not constructor_ours:
            return []  # the constructor is Exception's, object's or Pulumi's: nothing of ours
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [
        p.name for p in signature.parameters.values()
        if p.name not in ("self", "cls")
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _full_doc(obj: Any) -> str:
    doc = _own_doc(obj)
    if inspect.isclass(obj):
        doc += "\n" + _init_doc(obj)
    return doc


def _missing(obj: Any) -> list[str]:
    """Names of ``obj``'s signature that its docstrings never mention."""
    doc = _full_doc(obj)
    return [
        name for name in _documented_names(obj)
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", doc) is None
    ]


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_name_has_its_own_docstring(module: str, name: str) -> None:
    obj = _resolve(module, name)
    doc = _own_doc(obj)
    assert doc.strip(), f"{module}.{name} has no docstring of its own"


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_docstring_names_every_parameter(module: str, name: str) -> None:
    obj = _resolve(module, name)
    assert _missing(obj) == [], f"{module}.{name}: docstring does not name {_missing(obj)}"


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_cited_rule_ids_exist(module: str, name: str) -> None:
    cited = set(_RULE_CITATION.findall(_full_doc(_resolve(module, name))))
    assert cited - set(rules.RULES_BY_ID) == set()


def test_snapshot_session_help_is_ours_not_pulumis() -> None:
    # What help() prints, without the overstrike bold of a terminal.
    text = pydoc.plain(pydoc.render_doc(snapshot_resources.SnapshotSession))
    pulumi_init = inspect.getdoc(pulumi.dynamic.Resource.__init__) or ""
    inherited = [line.strip() for line in pulumi_init.splitlines() if line.strip()]
    assert inherited, "Pulumi's dynamic.Resource.__init__ docstring changed; update this test"
    assert [line for line in inherited if line in text] == []
    assert ":param str name:" not in text
    assert "props" not in text.split("Method resolution order")[0]


def test_snapshot_session_documents_every_output() -> None:
    from snapshot_resources.provider import OUTPUT_KEYS
    from snapshot_resources.session import PYTHON_NAMES

    doc = _own_doc(snapshot_resources.SnapshotSession)
    assert [key for key in OUTPUT_KEYS if f"``{key}``" not in doc] == []
    # ... and the Python attribute each is read by (snake_case, Pulumi's convention).
    assert [key for key in OUTPUT_KEYS if f"``{PYTHON_NAMES[key]}``" not in doc] == []


def test_snapshot_session_docs_cite_known_sources() -> None:
    session = snapshot_resources.SnapshotSession
    args = snapshot_resources.SnapshotSessionArgs
    text = _full_doc(session) + _full_doc(args)
    cited = set(re.findall(r"\b(?:S[0-9]+|G[0-9]+|J1|N1|P1|GH19)\b", text))
    assert cited, "the session docstrings cite no source"
    assert cited - set(rules.SOURCES) == set()


def _sample(a: int, b: str, *args: object, flag: bool = False, **kwargs: object) -> None:
    """Uses ``a`` and ``flag``."""


class _Sample:
    """Takes ``first``."""

    def __init__(self, first: int, second: int) -> None:
        """Nothing about the other one."""


@pytest.mark.parametrize(("obj", "expected"), [(_sample, ["b"]), (_Sample, ["second"])])
def test_the_check_catches_a_dropped_parameter(
    obj: Callable[..., object], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixtures live in this test module, which is not the package: pretend they are ours.
    monkeypatch.setattr(obj, "__module__", PACKAGE)
    if inspect.isclass(obj):
        monkeypatch.setattr(obj.__init__, "__module__", PACKAGE)
    assert _missing(obj) == expected
