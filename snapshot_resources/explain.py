"""A rule explained, and the sources behind every rule, from ``rules.py`` alone.

Problem messages end with ``(rule capture_interval; S2, S3, ...)``: the rule id and the tags of its
sources. :func:`explain` turns a rule id into what a user needs to check it (the rule, the
decision where Agora's sources disagree, and each source's title, address and date read);
``snapshot-resources validate --explain RULE`` prints it. :func:`sources_markdown` is
``docs/sources.md`` (``make docs`` writes it; a test keeps the committed file in step).
"""

from __future__ import annotations

import difflib
import textwrap

from snapshot_resources import rules

__all__ = ["UnknownRuleError", "explain", "sources_markdown"]

SOURCES_DOC = "docs/sources.md"


class UnknownRuleError(KeyError):
    """No rule has this id; ``suggestions`` holds the closest ids."""

    def __init__(self, rule_id: str, suggestions: list[str]) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id
        self.suggestions = suggestions

    def __str__(self) -> str:
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"no rule {self.rule_id!r}{hint} (every rule: {SOURCES_DOC} lists the sources)"


def explain(rule_id: str) -> str:
    """The rule ``rule_id`` as text: id, path, rule, decision and sources (title, address, the
    version and the date read). Raises :class:`UnknownRuleError` for an unknown id."""
    rule = rules.RULES_BY_ID.get(rule_id)
    if rule is None:
        close = difflib.get_close_matches(rule_id, list(rules.RULES_BY_ID), n=3, cutoff=0.5)
        raise UnknownRuleError(rule_id, close)
    lines = [f"rule {rule.id}: {rule.path}", *_wrap(rule.text, "  ")]
    if rule.decision:
        lines += ["decision:", *_wrap(rule.decision, "  ")]
    lines.append("sources:" if rule.sources else "sources: none (a rule of this tool, see the decision)")
    for tag in rule.sources:
        source = rules.SOURCES[tag]
        lines += _wrap(f"{tag}: {source.title}", "  ")
        lines += [f"      {source.address}", f"      version {source.version}, read {source.read}"]
    return "\n".join(lines)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, 100, initial_indent=indent, subsequent_indent=indent + "  ")


def sources_markdown() -> str:
    """``docs/sources.md``: every source tag with its title, address, version and date read, and
    the rules that cite it."""
    citing: dict[str, list[str]] = {tag: [] for tag in rules.SOURCES}
    for rule in rules.ALL_RULES:
        for tag in rule.sources:
            citing[tag].append(rule.id)
    lines = [
        "# Sources",
        "",
        "Every source tag that the rules, the code and the docs cite (`S3`, `G1` ...). Generated",
        "from `rules.SOURCES` by `make docs`; do not edit by hand. `snapshot-resources validate",
        "--explain RULE` shows one rule with its sources; `docs/agora-api.md` holds the facts read",
        "from them, section by section.",
        "",
        "| tag | title | address | version | read | rules citing it |",
        "|---|---|---|---|---|---|",
    ]
    for tag, source in rules.SOURCES.items():
        cited = ", ".join(f"`{r}`" for r in citing[tag]) or "(code and docs)"
        lines.append(f"| {tag} | {source.title} | {source.address} | {source.version} "
                     f"| {source.read} | {cited} |")
    return "\n".join(lines) + "\n"
