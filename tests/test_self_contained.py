"""The repository stands alone: no file points outside it, every source tag the code cites can be
looked up (docs/sources.md, generated from rules.SOURCES), and `validate --explain RULE` leads
from a problem message to the rule's sources."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from snapshot_resources import cli, rules
from snapshot_resources.explain import UnknownRuleError, explain, sources_markdown

REPO = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".txt", ".json")
# A path into the repository's docs, as comments and documents cite them.
DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_.-]+\.md\b")
# The team's notebook outside the repository, in any of the ways it was cited before.
OUTSIDE = re.compile(
    r"\.\./shared|(?<![\w/.-])reference/(agora-api|pulumi-dynamic|storage|anchors|pulumi-cli-build)"
    r"\.md|(?<![\w/.-])reference/(?=\s|$)"
)
# A source tag as the code cites it: S2, S17, G1, GH19, J1, N1, P1, W3, VENDOR.
TAG = re.compile(r"\b(S[0-9]{1,2}|W[0-9]|GH[0-9]+|[GJNP]1)\b")


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        check=True, capture_output=True, timeout=60,
    ).stdout.decode().split("\0")
    return [REPO / name for name in listed if name.endswith(TEXT_SUFFIXES) and (REPO / name).is_file()]


def test_no_file_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in repository_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line) and path.name != Path(__file__).name
    ]
    assert found == []


def test_every_cited_doc_exists() -> None:
    missing = sorted({
        f"{path.relative_to(REPO)}: {cited}"
        for path in repository_files()
        for cited in DOC_PATH.findall(path.read_text(errors="replace"))
        if not (REPO / cited).is_file()
    })
    assert missing == []


def test_every_source_tag_the_package_cites_can_be_looked_up() -> None:
    cited = {
        tag for path in (REPO / "snapshot_resources").rglob("*.py")
        for tag in TAG.findall(path.read_text())
    }
    assert cited - set(rules.SOURCES) == set()
    for source in rules.SOURCES.values():
        assert source.title
        assert source.address.startswith(("https://", "docs/"))
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.read)


def test_the_committed_sources_page_is_generated_from_the_rules() -> None:
    assert (REPO / "docs" / "sources.md").read_text() == sources_markdown(), "run `make docs`"


def test_explain_leads_from_a_message_to_the_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--explain", "capture_interval"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rule capture_interval: snapshotConfig.captureInterval")
    assert "decision:" in out  # a CONFLICT between sources, decided
    for tag in rules.CAPTURE_INTERVAL.sources:
        assert f"  {tag}: {rules.SOURCES[tag].title}" in out
        assert rules.SOURCES[tag].address in out


def test_explain_names_the_closest_rules_for_a_typo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--explain", "capture_intervall"]) == 2
    assert "did you mean capture_interval?" in capsys.readouterr().err
    with pytest.raises(UnknownRuleError):
        explain("nothing-like-it")


@pytest.mark.parametrize("rule", rules.ALL_RULES, ids=lambda r: r.id)
def test_every_rule_explains(rule: rules.Rule) -> None:
    text = explain(rule.id)
    assert text.startswith(f"rule {rule.id}: ")
    assert all(f"  {tag}: " in text for tag in rule.sources)
