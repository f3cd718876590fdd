"""docs/reconcile.md's decision table ("Causes and actions") and ``restart_rule.restart_action``
are one rule: the table is parsed here and the function checked against it over every
combination of inputs, so that neither can change without the other."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from snapshot_resources.reconcile.decisions import Cause, IdlePolicy
from snapshot_resources.reconcile.restart_rule import Action, AgoraSays, Facts, restart_action

DOC = Path(__file__).resolve().parents[1] / "docs" / "reconcile.md"
SECTION = "### Causes and actions"

BOOL = {"yes": True, "no": False}
# Each column of the table: the Facts field it sets and the value of each word.
COLUMNS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "cause": ("cause", {c.value: c for c in Cause}),
    "replaced": ("replaced", BOOL),
    "ours": ("ours", BOOL),
    "declared": ("declared", BOOL),
    "agora": ("agora", {a.value: a for a in AgoraSays}),
    "idle policy": ("idle_policy", {p.value: p for p in IdlePolicy}),
    "channel events seen": ("channel_events_seen", BOOL),
    "broadcaster": ("broadcaster", {**BOOL, "unknown": None}),
}


@dataclass(frozen=True)
class Row:
    line: int
    allowed: Mapping[str, frozenset[Any]]  # Facts field -> the values the row matches
    action: Action

    def matches(self, facts: Facts) -> bool:
        return all(getattr(facts, name) in values for name, values in self.allowed.items())


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_table(text: str) -> list[Row]:
    """The rows of the decision table in ``text`` (the first table after ``SECTION`` whose
    header starts with ``cause | replaced``), in order."""
    lines = text.splitlines()
    start = lines.index(SECTION)
    header_at = next(i for i in range(start, len(lines))
                     if _cells(lines[i])[:2] == ["cause", "replaced"])
    header = _cells(lines[header_at])
    rows: list[Row] = []
    for number in range(header_at + 2, len(lines)):
        line = lines[number]
        if not line.startswith("|"):
            break
        cells = dict(zip(header, _cells(line), strict=True))
        allowed: dict[str, frozenset[Any]] = {}
        for column, (field, words) in COLUMNS.items():
            cell = cells[column]
            if cell == "any":
                allowed[field] = frozenset(words.values())
                continue
            values = [word.strip().strip("`") for word in cell.split(",")]
            unknown = [v for v in values if v not in words]
            assert not unknown, f"docs/reconcile.md:{number + 1}: {column}: {unknown}"
            allowed[field] = frozenset(words[v] for v in values)
        rows.append(Row(number + 1, allowed, Action(cells["action"].strip("`"))))
    return rows


def every_facts() -> Iterator[Facts]:
    fields = [field for field, _ in COLUMNS.values()]
    domains: Sequence[Sequence[Any]] = [list(words.values()) if field != "broadcaster"
                                        else [True, False, None]
                                        for field, words in COLUMNS.values()]
    for combination in itertools.product(*domains):
        yield Facts(**dict(zip(fields, combination, strict=True)))


ROWS = parse_table(DOC.read_text(encoding="utf-8"))


def test_the_table_has_a_row_for_each_action() -> None:
    assert {row.action for row in ROWS} == set(Action)


def test_the_function_is_the_table_row_by_row() -> None:
    """For every combination of inputs, the first row that matches gives the function's
    answer, and some row matches; every row decides at least one combination."""
    deciding: set[int] = set()
    disagreements = []
    for facts in every_facts():
        row = next((r for r in ROWS if r.matches(facts)), None)
        assert row is not None, f"no row of docs/reconcile.md matches {facts}"
        deciding.add(row.line)
        if restart_action(facts) is not row.action:
            disagreements.append((row.line, row.action.value, restart_action(facts).value, facts))
    assert disagreements == [], disagreements[:5]
    assert deciding == {row.line for row in ROWS}, "a row no combination reaches"


def test_a_changed_table_is_noticed() -> None:
    """The check can fail: a table whose idle row holds instead of restarting disagrees."""
    text = DOC.read_text(encoding="utf-8").replace(
        "| `idle` | no | no | yes | `-` | `immediately` | any | any | `restart` |",
        "| `idle` | no | no | yes | `-` | `immediately` | any | any | `hold` |")
    rows = parse_table(text)
    facts = Facts(Cause.IDLE, idle_policy=IdlePolicy.IMMEDIATELY)
    first = next(r for r in rows if r.matches(facts))
    assert first.action is Action.HOLD
    assert restart_action(facts) is Action.RESTART


@pytest.mark.parametrize(("facts", "expected"), [
    (Facts(Cause.EXITED), Action.RESTART),
    (Facts(Cause.STOPPED), Action.CHECK),
    (Facts(Cause.IDLE, idle_policy=IdlePolicy.ON_JOIN), Action.HOLD),
    (Facts(Cause.IDLE, idle_policy=IdlePolicy.ON_JOIN, broadcaster=True), Action.RESTART),
    (Facts(Cause.IDLE, channel_events_seen=True, broadcaster=False), Action.HOLD),
    (Facts(Cause.IDLE), Action.RESTART),
    (Facts(Cause.IDLE, ours=True), Action.IGNORE),
    (Facts(Cause.TOKEN_EXPIRED, declared=False), Action.IGNORE),
    (Facts(Cause.STOPPED, agora=AgoraSays.GONE), Action.RESTART),
    (Facts(Cause.TOKEN_CHECK, agora=AgoraSays.RUNNING), Action.KEEP),
    (Facts(Cause.IDLE, idle_policy=IdlePolicy.ON_JOIN, agora=AgoraSays.NO_ANSWER), Action.CHECK),
])
def test_named_cases(facts: Facts, expected: Action) -> None:
    assert restart_action(facts) is expected
