"""``snapshot-resources validate FILE...``: check stack config files before they are deployed.

Public API: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int`` (the CLI contract), and
``validate_text(text, name) -> list[Located]`` / ``validate_file(path) -> list[Located]`` for
programs and tests.  ``load_text`` / ``load_file`` return the same problems together with the
document they were found in (a ``StackFile``), for commands that go on to use a valid file
(``snapshot-resources plan``): one reader, so every command accepts exactly the same files.

A FILE is either a Pulumi stack file (``Pulumi.<stack>.yaml``: this project's keys under
``config:`` as ``agora-snapshots:storage`` and ``agora-snapshots:sessions``, with ``agora:appId``
as the default App ID) or a plain YAML/JSON document with ``storage`` and ``sessions``.  Every
problem is printed as ``FILE:LINE:COL: dotted.path: message (rule <id>; <sources>)``, pointing at
the offending key; ``--format json`` prints the same for bots.  Exit status 1 if there is any
problem, else 0.  Pulumi secrets (``secure: ...``) are accepted as opaque values.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from snapshot_resources import rules
from snapshot_resources.spec import (
    STACK_KEYS,
    Problem,
    dotted,
    is_secure_marker,
    stack_problems,
    unknown_key_message,
)

HELP = "Check stack config files (Pulumi.<stack>.yaml or storage+sessions YAML/JSON) offline."

PROJECT: Final = "agora-snapshots"  # the Pulumi project name: config keys are "<project>:<key>"
APP_ID_KEY: Final = "agora:appId"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"  # "<<": may repeat, merges rather than repeats

# Bounds on a document's shape, checked before it is built: a stack file nests fewer than 10
# levels and holds a few thousand values at most.
MAX_DEPTH: Final = 100
MAX_VALUES: Final = 100_000


@dataclass(frozen=True)
class Located:
    """A problem with the file position of the key it is about (1-based line and column)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    rule_id: str | None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.rule_id is None:
            return f"{where}: {self.message}"
        cite = rules.RULES_BY_ID[self.rule_id].cite() or "this tool's rule"
        return f"{where}: {self.path}: {self.message} (rule {self.rule_id}; {cite})"

    def as_json(self) -> dict[str, object]:
        rule = rules.RULES_BY_ID.get(self.rule_id or "")
        return {
            "file": self.file, "line": self.line, "column": self.column, "path": self.path,
            "message": self.message, "rule": self.rule_id,
            "sources": list(rule.sources) if rule else [],
        }


@dataclass(frozen=True)
class StackFile:
    """One file as read: its stack document, default App ID and every problem found in it.

    ``document`` is the ``storage``/``sessions`` mapping exactly as written (``secure:`` values
    left in place): the file itself for a plain document, the project's keys under ``config:``
    for a Pulumi stack file (``{}`` when it has none), None when the file is not a mapping.
    ``app_id`` is ``agora:appId`` as written (None for a plain document).
    """

    name: str
    document: Mapping[str, Any] | None
    app_id: object
    problems: list[Located]
    root: yaml.Node | None = field(default=None, repr=False, compare=False)
    prefix: tuple[str, ...] = ()

    def locate(self, problem: Problem) -> Located:
        """``problem`` (a path in ``document``) at its place in this file."""
        if self.root is None:
            return Located(self.name, 1, 1, problem.dotted_path, problem.message, problem.rule_id)
        return _locate(self.root, self.name, problem, self.prefix)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="Pulumi.<stack>.yaml, or a YAML/JSON document with storage and sessions")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: FILE:LINE:COL: path: message (default); json: for bots")


def run(args: argparse.Namespace) -> int:
    results = {str(path): validate_file(path) for path in args.files}
    if args.format == "json":
        report = {
            "files": [{"file": f, "problems": [p.as_json() for p in found]}
                      for f, found in results.items()],
            "problemCount": sum(len(found) for found in results.values()),
        }
        print(json.dumps(report, indent=2))
    else:
        for found in results.values():
            for located in found:
                print(located)
        total = sum(len(found) for found in results.values())
        if total:
            print(f"{total} problem{'s' if total != 1 else ''} in "
                  f"{sum(1 for f in results.values() if f)} file(s)", file=sys.stderr)
    return 1 if any(results.values()) else 0


def validate_file(path: Path) -> list[Located]:
    return load_file(path).problems


def validate_text(text: str, name: str) -> list[Located]:
    """Every problem in one document's text; ``name`` is the file name shown."""
    return load_text(text, name).problems


def load_file(path: Path) -> StackFile:
    """``path`` read and checked (see ``load_text``)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return _unread(Located(str(path), 1, 1, "", f"cannot read the file: {exc.strerror}",
                               None))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _unread(Located(str(path), 1, 1, "", "is not UTF-8 text (YAML or JSON expected)",
                               None))
    return load_text(text, str(path))


def load_text(text: str, name: str) -> StackFile:
    """One document's text read and checked: its stack document, default App ID and every
    problem, in file order; ``name`` is the file name shown."""
    try:
        # Before the parser: PyYAML (since 6.0.4) stops deep flow nesting itself, with its own
        # wording; flow brackets are counted first so the message is this tool's, whatever the
        # version. Then parser events catch deep block nesting before the composer recurses.
        deep = _too_deep_flow(text, name) or _too_deep(text, name)
        if deep is not None:
            return _unread(deep)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            shape = _shape_problem(node, name) if node is not None else None
            if shape is not None:
                return _unread(shape)  # before constructing: an alias bomb is never expanded
            # Before constructing: the constructor splices "<<" merge keys into the node, and
            # a key that overrides a merged one is not a repeated key.
            duplicates = _duplicate_keys(node, ()) if node is not None else []
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        reason = getattr(exc, "problem", None) or "cannot be parsed"
        return _unread(Located(name, line, col, "", f"is not valid YAML or JSON: {reason}", None))
    except ValueError:
        # int() of a number over sys.get_int_max_str_digits() digits (Python 3.11) refuses it.
        return _unread(Located(name, 1, 1, "", "is not valid YAML or JSON: holds a number too "
                               "large to read", None))
    if node is None or data is None:
        return _unread(Located(name, 1, 1, "", "is empty: expected storage and sessions, or a "
                               "Pulumi stack file with config", None))
    if not isinstance(data, Mapping):
        return _unread(Located(name, node.start_mark.line + 1, node.start_mark.column + 1, "",
                               "is not a mapping: expected storage and sessions, or a Pulumi "
                               "stack file with config", None))
    document: Mapping[str, Any] | None = data
    app_id: object = None
    if "config" in data and not any(k in data for k in STACK_KEYS):
        problems, prefix = _pulumi_problems(data["config"])
        document, app_id = _pulumi_document(data["config"])
    else:
        problems, prefix = stack_problems(data, is_unknown=is_secure_marker), ()
    located = [_locate(node, name, p, prefix) for p in problems]
    located += [_locate(node, name, p, prefix, mark) for p, mark in duplicates]
    located.sort(key=lambda loc: (loc.line, loc.column))
    return StackFile(name, document, app_id, located, node, prefix)


def _unread(problem: Located) -> StackFile:
    """A file that could not be read as a mapping: its one problem and no document."""
    return StackFile(problem.file, None, None, [problem])


def _pulumi_document(config: object) -> tuple[dict[str, Any] | None, object]:
    """A Pulumi stack file's stack document and ``agora:appId``, as written; an empty stack for
    ``config:`` with nothing under it, no document when ``config`` is not a mapping."""
    if config is None:
        return {}, None
    if not isinstance(config, Mapping):
        return None, None
    document = {key: config[f"{PROJECT}:{key}"] for key in STACK_KEYS if f"{PROJECT}:{key}" in config}
    return document, config.get(APP_ID_KEY)


def _too_deep_message() -> str:
    return f"is nested more than {MAX_DEPTH} levels deep (a stack file needs fewer than 10)"


def _too_deep_flow(text: str, name: str) -> Located | None:
    """Flow collections (``[`` ``{``) nested deeper than MAX_DEPTH, counted on the raw text:
    quoted scalars and comments are skipped; a bracket inside a plain scalar counts too, which
    can only make a file with about a hundred of them look deep."""
    depth = 0
    quote = ""
    line, col = 1, 0
    previous = "\n"
    index = 0
    while index < len(text):
        char = text[index]
        col += 1
        if char == "\n":
            line, col = line + 1, 0
            if quote == "#":
                quote = ""
        elif quote == "#":
            pass
        elif quote == '"':
            if char == "\\":
                index, col = index + 1, col + 1  # the escaped character, whatever it is
            elif char == '"':
                quote = ""
        elif quote == "'":
            if char == "'":
                quote = ""  # '' (an escaped quote) reopens at once on the next character
        elif char in "\"'" and previous in " \t\n[{,:-?":
            quote = char  # a quoted scalar starts a token; "it's" in a plain scalar does not
        elif char == "#" and previous in " \t\n":
            quote = "#"
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return Located(name, line, col, "", _too_deep_message(), None)
        elif char in "]}":
            depth = max(depth - 1, 0)
        previous = char
        index += 1
    return None


def _too_deep(text: str, name: str) -> Located | None:
    """Nesting deeper than MAX_DEPTH, found from parser events (an iterative state machine):
    composing such a document overflows the C stack in libyaml's composer (a crash, not an
    exception) or the recursion limit in PyYAML's."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
                return Located(name, line, col, "", _too_deep_message(), None)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _shape_problem(root: yaml.Node, name: str) -> Located | None:
    """A recursive alias, or aliases that expand past MAX_VALUES values ("billion laughs").

    YAML aliases share one node, so the composed graph stays small while the document it stands
    for can be exponentially large: every walk over the data (checks, messages, the duplicate-key
    scan) would expand it.  The expanded size is computed once per node, without recursion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                mark = node.start_mark
                return Located(name, mark.line + 1, mark.column + 1, "",
                               f"uses YAML aliases that expand to more than {MAX_VALUES} values "
                               "(refused unexpanded)", None)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            mark = node.start_mark
            return Located(name, mark.line + 1, mark.column + 1, "",
                           "has a recursive YAML alias (a value that contains itself)", None)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    return None


def _pulumi_problems(config: object) -> tuple[list[Problem], tuple[str, ...]]:
    """Problems of a Pulumi stack file's ``config``; paths stay relative to the project keys."""
    if config is None:  # "config:" with nothing under it: nothing to check
        return [], ()
    if not isinstance(config, Mapping):
        return [Problem(("config",), f"is not a mapping; {rules.MAPPING.text}", rules.MAPPING.id)], ()
    document, app_id = _pulumi_document(config)
    extra: list[Problem] = []
    if is_secure_marker(app_id):
        app_id = "(secret agora:appId)"  # opaque, but still one App ID shared by its sessions
    elif app_id is not None and (not isinstance(app_id, str) or not rules.APP_ID.matches(app_id)):
        extra.append(Problem(("config", APP_ID_KEY), f"is not an App ID; {rules.APP_ID.text}",
                             rules.APP_ID.id))
        app_id = None
    for key in config:
        # A misspelt project key would silently drop every session: flag near misses.
        namespace, _, short = str(key).partition(":")
        if namespace == PROJECT and short not in STACK_KEYS and difflib.get_close_matches(
            short, STACK_KEYS, n=1, cutoff=0.75
        ):
            known = [f"{PROJECT}:{k}" for k in STACK_KEYS]
            extra.append(Problem(("config", str(key)), unknown_key_message(key, known),
                                 rules.UNKNOWN_KEY.id))
    problems = stack_problems(document, default_app_id=app_id, is_unknown=is_secure_marker)
    return extra + problems, ("config",)


def _duplicate_keys(
    node: yaml.Node, path: tuple[str | int, ...]
) -> list[tuple[Problem, yaml.Mark]]:
    """Keys repeated in one mapping, at the repetition: YAML keeps the last silently, so a
    repeated session name would hide a session from review."""
    found: list[tuple[Problem, yaml.Mark]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) and (
                key_node.tag != _MERGE_TAG) else None
            if key is not None and key in first:
                found.append((Problem(
                    (*path, key), f"repeats the key {key!r} of line {first[key].line + 1} (YAML "
                    f"keeps only the last); {rules.MAPPING.text}", rules.MAPPING.id),
                    key_node.start_mark))
            elif key is not None:
                first[key] = key_node.start_mark
                found += _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*path, i))
    return found


def _yaml_path(problem: Problem, prefix: tuple[str, ...]) -> tuple[str | int, ...]:
    """Where a problem of the stack document lies in the file (``config`` of a Pulumi file)."""
    path = problem.path
    if path[:1] == ("config",):
        return path  # already a file path (keys of a Pulumi file's config)
    if prefix and path and path[0] in STACK_KEYS:
        return (*prefix, f"{PROJECT}:{path[0]}", *path[1:])
    return path


def _locate(
    root: yaml.Node,
    name: str,
    problem: Problem,
    prefix: tuple[str, ...],
    mark: yaml.Mark | None = None,
) -> Located:
    path = _yaml_path(problem, prefix)
    mark = mark if mark is not None else _mark(root, path)
    shown = dotted(path[1:]) if prefix and path[:1] == ("config",) else problem.dotted_path
    return Located(name, mark.line + 1, mark.column + 1, shown, problem.message, problem.rule_id)


def _mark(node: yaml.Node, path: Iterable[str | int]) -> yaml.Mark:
    """Where ``path`` points in the YAML: the key of a mapping entry, the item of a sequence;
    for a missing key, the deepest part of the path that exists."""
    mark = node.start_mark
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(step):
                    mark, node = key_node.start_mark, value_node
                    break
            else:
                return mark
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and (
            0 <= step < len(node.value)
        ):
            node = node.value[step]
            mark = node.start_mark
        else:
            return mark
    return mark
