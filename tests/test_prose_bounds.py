"""Prose that states a bound agrees with the rule that keeps it (CONTRIBUTING.md, "Change a bound").

A bound is written once, in ``rules.py``.  The docstrings that state one fill it from the rule
(``rules.stated``: ``help(SnapshotSessionArgs)`` follows a changed bound by itself); every other
text that states it (the README, the project's own docs, any string in the package) is read here:
each "``captureInterval`` ... 5 to 3600" or "... default 10" next to a field's name or rule id
must say what the rule says, so changing a bound in ``rules.py`` fails this test until the prose
follows.  Not read: the emulator (it keeps its own reading of the reference on purpose) and the
reference notes that quote what each source says (``docs/agora-api.md``, ``docs/peers.md``,
``docs/pulumi-dynamic.md``, ``docs/storage.md``, the generated ``docs/sources.md``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapshot_resources
from snapshot_resources import rules

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_NOTES = {"agora-api.md", "peers.md", "pulumi-dynamic.md", "storage.md", "sources.md"}
STATED = ("SnapshotSessionArgs", "SnapshotConfigArgsDict", "SessionSpec", "StorageSpec")
RANGES = tuple(r for r in rules.ALL_RULES if isinstance(r, rules.IntRange))
NUMBER = r"(\d[\d,]*)"
WINDOW = r"[^.;`]{0,90}?"  # the rest of the clause after the name


def _texts() -> dict[str, str]:
    """Where the prose is: each document, each module's string literals, each filled docstring."""
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in
             (ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")))
             if p.name not in REFERENCE_NOTES}
    for path in sorted((ROOT / "snapshot_resources").rglob("*.py")):
        if "emulator" in path.relative_to(ROOT / "snapshot_resources").parts:
            continue
        tree = ast.parse(path.read_text())
        texts[str(path.relative_to(ROOT))] = "\n".join(
            node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str))
    for name in STATED:
        texts[f"help({name})"] = getattr(snapshot_resources, name).__doc__ or ""
    return {where: re.sub(r"\s+", " ", text) for where, text in texts.items()}


TEXTS = _texts()


def _statements(
    rule: rules.IntRange, texts: dict[str, str] = TEXTS
) -> Iterator[tuple[str, str, tuple[int, ...], tuple[int, ...]]]:
    """(where, the words, what they state, what the rule says) for each statement of ``rule``."""
    names = "|".join(re.escape(n) for n in (rule.path.rsplit(".", 1)[-1], rule.id))
    head = rf"\b(?:{names})\b`*{WINDOW}"
    shapes = (
        (rf"{head}\b{NUMBER} ?(?:to|-|–) ?{NUMBER}\b", (rule.minimum, rule.maximum)),
        (rf"{head}\[{NUMBER}, ?{NUMBER}\]", (rule.minimum, rule.maximum)),
        (rf"{head}\bdefaults? (?:to |is )?{NUMBER}\b", (rule.default,)),
    )
    for where, text in texts.items():
        for pattern, truth in shapes:
            for match in re.finditer(pattern, text):
                stated = tuple(int(n.replace(",", "")) for n in match.groups())
                yield where, match.group(0), stated, tuple(t for t in truth if t is not None)


@pytest.mark.parametrize("rule", RANGES, ids=lambda r: r.id)
def test_every_text_states_the_rules_own_bounds(rule: rules.IntRange) -> None:
    wrong = [(where, words) for where, words, stated, truth in _statements(rule) if stated != truth]
    assert wrong == []


def test_the_reader_finds_the_statements_it_checks() -> None:
    # The test above must be able to fail: it reads the README's statement and the help text's.
    found = {(where, stated) for where, _, stated, _ in _statements(rules.CAPTURE_INTERVAL)}
    bounds = (rules.CAPTURE_INTERVAL.minimum, rules.CAPTURE_INTERVAL.maximum)
    assert {("README.md", bounds), ("help(SnapshotSessionArgs)", bounds),
            ("help(SessionSpec)", bounds)} <= found


_LOW, _HIGH, _DEFAULT = (rules.CAPTURE_INTERVAL.minimum, rules.CAPTURE_INTERVAL.maximum,
                         rules.CAPTURE_INTERVAL.default)


@pytest.mark.parametrize("text", [
    f"`captureInterval` is {_LOW}-{_HIGH + 1} s.",
    f"``captureInterval`` seconds between snapshots, an integer from {_LOW} to {_HIGH * 2}",
    f"captureInterval [{_LOW - 1}, {_HIGH}]",
    f"captureInterval {_LOW} to {_HIGH} s, default {(_DEFAULT or 0) + 1}",
])
def test_a_text_that_states_another_bound_is_caught(text: str) -> None:
    stated = _statements(rules.CAPTURE_INTERVAL, {"trial": text})
    assert [where for where, _, said, truth in stated if said != truth] == ["trial"]


@pytest.mark.parametrize("name", STATED)
def test_filled_docstrings_keep_no_placeholder(name: str) -> None:
    doc = getattr(snapshot_resources, name).__doc__ or ""
    assert re.findall(r"\{[a-z_]+\.[a-z]+\}", doc) == []


def test_help_states_the_capture_interval_rule() -> None:
    rule = rules.CAPTURE_INTERVAL
    doc = re.sub(r"\s+", " ", snapshot_resources.SnapshotSessionArgs.__doc__ or "")
    assert f"an integer from {rule.minimum} to {rule.maximum}, default {rule.default}" in doc


def test_stated_fills_a_rules_data_and_refuses_an_unknown_rule() -> None:
    assert rules.stated("{capture_interval.maximum} s") == f"{rules.CAPTURE_INTERVAL.maximum} s"
    with pytest.raises(KeyError):
        rules.stated("{no_such_rule.maximum}")
