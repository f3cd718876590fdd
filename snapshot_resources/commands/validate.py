"""``snapshot-resources validate FILE...``: check stack config files before they are deployed.

Public API: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int`` (the CLI contract), and
``validate_text(text, name) -> list[Located]`` / ``validate_file(path) -> list[Located]`` for
programs and tests.  ``load_text`` / ``load_file`` return the same problems together with the
document they were found in (a ``StackFile``), for commands that go on to use a valid file
(``snapshot-resources plan``): one reader, so every command accepts exactly the same files.
``read_limited(path)`` is that reader's first step (the bytes, or the one problem: not a regular
file, larger than ``MAX_FILE_BYTES``, unreadable); ``size_text(n)`` spells a size for messages.

A FILE is either a Pulumi stack file (``Pulumi.<stack>.yaml``: this project's keys under
``config:`` as ``agora-snapshots:storage`` and ``agora-snapshots:sessions``, with ``agora:appId``
as the default App ID) or a plain YAML/JSON document with ``storage`` and ``sessions``.  Every
problem is printed as ``FILE:LINE:COL: dotted.path: message (rule <id>; <sources>)``, pointing at
the offending key; a file without problems gets one line saying what was checked
(``FILE: 2 sessions, 1 storage target: ok``); ``--format json`` prints the same for bots (per
file its problems and the counts ``sessions`` and ``storageTargets``, null for a file that holds no
stack).  Exit status 1 if there is any problem, else 0.  Pulumi secrets (``secure: ...``) are
accepted as opaque values.

Only regular files of at most ``MAX_FILE_BYTES`` are read: a device (``/dev/zero``), a FIFO or a
directory is refused without reading from it, and so is a larger file, each with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import gc
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import yaml

from snapshot_resources import rules
from snapshot_resources.spec import (
    PROJECT,
    STACK_KEYS,
    Problem,
    dotted,
    is_secure_marker,
    stack_problems,
    unknown_key_message,
)

HELP = "Check stack config files (Pulumi.<stack>.yaml or storage+sessions YAML/JSON) offline."

APP_ID_KEY: Final = "agora:appId"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"  # "<<": may repeat, merges rather than repeats
_VALUE_TAG: Final = "tag:yaml.org,2002:value"  # "=": the constructor reads it as the string "="

# Bounds on a document's shape, checked before it is built.  A stack file nests fewer than 10
# levels; aliases (``*anchor``) in one add a few hundred values at most, so MAX_VALUES bounds only
# what aliases expand to, not the values written out (those are bounded by MAX_FILE_BYTES).
MAX_DEPTH: Final = 100
MAX_VALUES: Final = 100_000
# Values written out: a list longer than MAX_ITEMS (a stack file's longest lists hold 32 uids),
# or more than MAX_NODES values in all (a 10,000-session stack file holds about 405,000), is
# refused from the parser's events, before the document is built: a 1,000,000-item uid list
# took 1.15 GB.  Files with fewer than _COUNT_BELOW commas and lines together are not counted
# (they cannot reach either bound's memory).
MAX_ITEMS: Final = 10_000
MAX_NODES: Final = 2_000_000
_COUNT_BELOW: Final = 300_000

# The most a command reads of one file.  A 10,000-session stack file is about 5 MiB; the bound
# keeps ``validate /dev/zero``-like mistakes and runaway generated files from eating memory.
MAX_FILE_BYTES: Final = 16 * 1024 * 1024


# Per mapping node (by id), its scalar keys' first entries: locating one problem per session of a
# large file would otherwise scan the sessions mapping once per problem (quadratic).
_KeyIndex: TypeAlias = dict[int, dict[str, tuple[yaml.Node, yaml.Node]]]


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
    _index: _KeyIndex = field(default_factory=dict, repr=False, compare=False)

    @property
    def counts(self) -> tuple[int, int] | None:
        """(sessions, storage targets) as written, or None when the file held no stack."""
        if self.document is None:
            return None
        return (_count(self.document.get("sessions")), _count(self.document.get("storage")))

    def summary(self) -> str:
        """What was checked, for a file without problems: ``FILE: 2 sessions, 1 storage
        target: ok``."""
        sessions, targets = self.counts or (0, 0)
        return (f"{self.name}: {_plural(sessions, 'session')}, "
                f"{_plural(targets, 'storage target')}: ok")

    def locate(self, problem: Problem) -> Located:
        """``problem`` (a path in ``document``) at its place in this file."""
        if self.root is None:
            return Located(self.name, 1, 1, problem.dotted_path, problem.message, problem.rule_id)
        return _locate(self.root, self.name, problem, self.prefix, index=self._index)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"{HELP} Prints FILE:LINE:COL: path: message per problem (exit 1), or one line per file "
        "saying what was checked (exit 0). Only regular files of at most "
        f"{size_text(MAX_FILE_BYTES)} are read."
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="Pulumi.<stack>.yaml, or a YAML/JSON document with storage and "
                             f"sessions (a regular file of at most {size_text(MAX_FILE_BYTES)})")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: FILE:LINE:COL: path: message (default); json: for bots")
    parser.add_argument("--explain", metavar="RULE",
                        help="print the rule RULE (the id at the end of a problem message) with "
                             "its decision and its sources (title, address, date read), and exit")


def run(args: argparse.Namespace) -> int:
    if args.explain is not None:
        from snapshot_resources.explain import UnknownRuleError, explain

        try:
            print(explain(args.explain))
        except UnknownRuleError as exc:
            print(f"snapshot-resources validate: {exc}", file=sys.stderr)
            return 2
        return 0
    if not args.files:
        print("snapshot-resources validate: give at least one FILE (or --explain RULE)",
              file=sys.stderr)
        return 2
    # One file at a time in text mode, so that each file's lines appear as soon as it is checked.
    if args.format == "json":
        files = [load_file(path) for path in args.files]
        report = {
            "files": [{"file": f.name, "problems": [p.as_json() for p in f.problems],
                       "sessions": f.counts[0] if f.counts else None,
                       "storageTargets": f.counts[1] if f.counts else None} for f in files],
            "problemCount": sum(len(f.problems) for f in files),
        }
        print(json.dumps(report, indent=2))
        return 1 if any(f.problems for f in files) else 0
    total = bad_files = 0
    for path in args.files:
        file = load_file(path)
        for located in file.problems:
            print(located)
        if not file.problems:
            print(file.summary())
        total += len(file.problems)
        bad_files += bool(file.problems)
    if total:
        print(f"{total} problem{'s' if total != 1 else ''} in {bad_files} file(s)",
              file=sys.stderr)
    return 1 if total else 0


def validate_file(path: Path) -> list[Located]:
    return load_file(path).problems


def validate_text(text: str, name: str) -> list[Located]:
    """Every problem in one document's text; ``name`` is the file name shown."""
    return load_text(text, name).problems


def load_file(path: Path) -> StackFile:
    """``path`` read (``read_limited``) and checked (see ``load_text``)."""
    raw = read_limited(path)
    if isinstance(raw, Located):
        return _unread(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _unread(Located(str(path), 1, 1, "", "is not UTF-8 text (YAML or JSON expected)",
                               None))
    return load_text(text, str(path))


def read_limited(path: Path, limit: int = MAX_FILE_BYTES) -> bytes | Located:
    """The bytes of ``path``, or the one problem that kept it from being read: not a regular
    file (nothing is read from it), larger than ``limit`` bytes, or an OS error."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; fstat on the
        # opened descriptor (not stat on the name) so the file checked is the file read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return _unreadable(path, f"cannot read the file: {exc.strerror}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _unreadable(path, "is not a regular file (YAML or JSON file expected)")
        if info.st_size > limit:
            return _too_large(path, limit)
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(limit + 1)  # + 1: a file that grew since fstat is still refused
    except OSError as exc:
        return _unreadable(path, f"cannot read the file: {exc.strerror}")
    finally:
        os.close(fd)
    if len(raw) > limit:
        return _too_large(path, limit)
    return raw


def _unreadable(path: Path, message: str) -> Located:
    return Located(str(path), 1, 1, "", message, None)


def _too_large(path: Path, limit: int) -> Located:
    return _unreadable(path, f"is larger than {size_text(limit)}, the most this tool reads of a "
                             "stack file")


def size_text(size: int) -> str:
    """``16 MiB`` for a whole number of MiB, else bytes (for help and messages)."""
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


def _count(entries: object) -> int:
    return len(entries) if isinstance(entries, Mapping) else 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def load_text(text: str, name: str) -> StackFile:
    """One document's text read and checked: its stack document, default App ID and every
    problem, in file order; ``name`` is the file name shown."""
    with _collector_paused():
        return _load_text(text, name)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a document is read.  Composing and constructing
    allocate hundreds of thousands of long-lived objects (nodes, marks, values) and no cycles,
    so each collection finds nothing, yet the collections they trigger cost more than the parse
    itself (10,000 sessions: about 4 s of 6)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # Hand everything allocated meanwhile to the oldest generation without traversing
            # it: otherwise the first collection after enable() walks all of it at once. Only
            # when nothing is frozen already, so as not to undo a caller's gc.freeze().
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _load_text(text: str, name: str) -> StackFile:
    try:
        # Before the parser: PyYAML (since 6.0.4) stops deep flow nesting itself, with its own
        # wording; flow brackets are counted first so the message is this tool's, whatever the
        # version. Then parser events catch deep block nesting before the composer recurses.
        deep = _too_deep_flow(text, name) or _too_deep(text, name) or _too_long(text, name)
        if deep is not None:
            return _unread(deep)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            # An alias is written "*name": without a "*" anywhere there is none to expand.
            shape = _shape_problem(node, name) if node is not None and "*" in text else None
            if shape is not None:
                return _unread(shape)  # before constructing: an alias bomb is never expanded
            # Before constructing: the constructor splices "<<" merge keys into the node, and
            # a key that overrides a merged one is not a repeated key.
            duplicates = _duplicate_keys(node, ()) if node is not None else []
            data = _construct(loader, node, tree="*" not in text) if node is not None else None
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
    index: _KeyIndex = {}
    located = [_locate(node, name, p, prefix, index=index) for p in problems]
    located += [_locate(node, name, p, prefix, mark) for p, mark in duplicates]
    located.sort(key=lambda loc: (loc.line, loc.column))
    return StackFile(name, document, app_id, located, node, prefix, index)


_STR_TAG: Final = "tag:yaml.org,2002:str"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
# Scalar tags whose constructors are plain functions of the node (no state, no generator).
_PLAIN_SCALAR_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp"))


class _NotPlainError(Exception):
    """A node the direct construction leaves to the loader's constructor."""


def _construct(loader: Any, root: yaml.Node, *, tree: bool) -> Any:
    """The document's value, exactly as ``loader.construct_document(root)`` builds it.

    The loader's constructor is generic (aliases, recursive values, deferred generators) and
    was a third of the time of a large file.  A tree (no alias: each node reached once) with
    only plain tags and scalar keys is built here directly, calling the same scalar
    constructors; anything else, or any error, goes to the loader from the start (nothing here
    changes the nodes), so the value and any error are the loader's own."""
    if tree:
        scalars = loader.yaml_constructors

        def build(node: yaml.Node) -> Any:
            tag = node.tag
            if isinstance(node, yaml.ScalarNode):
                if tag == _STR_TAG:
                    return node.value
                if tag in _PLAIN_SCALAR_TAGS:
                    return scalars[tag](loader, node)
            elif isinstance(node, yaml.MappingNode) and tag == _MAP_TAG:
                mapping: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag in (
                        _MERGE_TAG, _VALUE_TAG
                    ):
                        raise _NotPlainError  # "<<" merges and "=" keys: the loader's rules
                    mapping[build(key_node)] = build(value_node)
                return mapping
            elif isinstance(node, yaml.SequenceNode) and tag == _SEQ_TAG:
                return [build(item) for item in node.value]
            raise _NotPlainError

        # Any failure (a tag left to the loader, a bad number): the loader's run below raises
        # its own error, in its own order.
        with contextlib.suppress(Exception):
            return build(root)
    return loader.construct_document(root)


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


# The characters the flow-depth count looks at, the rest skipped in bulk: a quoted scalar (it starts
# a token: at the start or after one of " \t\n[{,:-?"; "it's" in a plain scalar does not), a
# comment (after a blank), a bracket.  An unclosed quote runs to the end of the text; a
# backslash in a double-quoted scalar escapes the character after it, whatever it is.
_FLOW_TOKENS: Final = re.compile(
    r"""(?:(?<=[ \t\n\[{,:?-])|^)(?:"(?:[^"\\]+|\\[\s\S]?)*"?|'[^']*'?)"""
    r"|(?:(?<=[ \t\n])|^)#[^\n]*"
    r"|[\[\]{}]"
)


def _too_deep_flow(text: str, name: str) -> Located | None:
    """Flow collections (``[`` ``{``) nested deeper than MAX_DEPTH, counted on the raw text:
    quoted scalars and comments are skipped; a bracket inside a plain scalar counts too, which
    can only make a file with about a hundred of them look deep."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None  # fewer openers than the bound: no scan needed (the common block style)
    depth = 0
    for match in _FLOW_TOKENS.finditer(text):
        char = match.group()
        if char == "[" or char == "{":
            depth += 1
            if depth > MAX_DEPTH:
                at = match.start()
                line = text.count("\n", 0, at) + 1
                return Located(name, line, at - text.rfind("\n", 0, at), "",
                               _too_deep_message(), None)
        elif char == "]" or char == "}":
            depth = max(depth - 1, 0)
    return None


# Characters libyaml may pass over before the first token of a line that starts a block
# collection: blanks, the indicators "-", "?", ":" (compact nesting: "- - a", "? - a", ": - a")
# and a byte order mark.  Lines end at any of YAML's line breaks, not only "\n".
_LEAD: Final = r"[ \t?:\-\ufeff]"
_BREAK: Final = r"[\r\n\x85\u2028\u2029]"


def _shallow(text: str, max_depth: int) -> bool:
    """True when ``text`` cannot nest deeper than ``max_depth``, by a bound on the raw text.

    Flow collections nest at most as deep as there are ``[`` and ``{`` in the text.  Block
    collections: libyaml opens a block level only at a column greater than the enclosing one
    (its scanner's indentation stack), plus at most one indentless sequence per mapping level,
    and the token that opens a level is preceded on its line only by blanks and indicators
    (after anything else a block collection is refused: "block sequence entries are not
    allowed in this context").  So with no line starting with ``k`` such characters, block
    levels are fewer than ``2 * k``; flow collections nest inside block ones, never around."""
    room = max_depth - text.count("[") - text.count("{")
    if room < 2:
        return False
    lead = f"{_LEAD}{{{room // 2}}}"
    # The first line apart: a search for "^" or a break is three times slower than for a break.
    return re.match(lead, text) is None and re.search(_BREAK + lead, text) is None


def _too_deep(text: str, name: str) -> Located | None:
    """Nesting deeper than MAX_DEPTH, found from parser events (an iterative state machine):
    composing such a document overflows the C stack in libyaml's composer (a crash, not an
    exception) or the recursion limit in PyYAML's."""
    if _shallow(text, MAX_DEPTH):
        return None  # the parse is a third of validate's time on a large file: skip it if we can
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


def _too_long(text: str, name: str) -> Located | None:
    """A list of more than MAX_ITEMS entries, or more than MAX_NODES values, found from parser
    events (constant memory) before anything is built; skipped for texts too short to hold
    either (fewer than _COUNT_BELOW commas and line breaks)."""
    if text.count(",") + text.count("\n") < _COUNT_BELOW:
        return None
    nodes = 0
    # Per open collection: its start event and its entries so far (None: a mapping).
    open_collections: list[tuple[yaml.Event, list[int] | None]] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent | yaml.CollectionStartEvent):
            nodes += 1
            if nodes > MAX_NODES:
                return _at(event, name, f"holds more than {MAX_NODES:,} values (nothing was "
                           "read)")
            if open_collections and open_collections[-1][1] is not None:
                start, count = open_collections[-1]
                assert count is not None
                count[0] += 1
                if count[0] > MAX_ITEMS:
                    return _at(start, name, f"holds a list of more than {MAX_ITEMS:,} entries; "
                               "no list of a stack file is that long (nothing else was read)")
        if isinstance(event, yaml.SequenceStartEvent):
            open_collections.append((event, [0]))
        elif isinstance(event, yaml.MappingStartEvent):
            open_collections.append((event, None))
        elif isinstance(event, yaml.CollectionEndEvent) and open_collections:
            open_collections.pop()
    return None


def _at(event: yaml.Event, name: str, message: str) -> Located:
    mark = event.start_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Located(name, line, col, "", message, None)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _shape_problem(root: yaml.Node, name: str) -> Located | None:
    """A recursive alias, or aliases that expand to more than MAX_VALUES values ("billion
    laughs").

    YAML aliases share one node, so the composed graph stays small while the document it stands
    for can be exponentially large: every walk over the data (checks, messages, the duplicate-key
    scan) would expand it.  Only what aliases add counts: the document's expanded size minus its
    distinct nodes (the values written out once, however many).  Sizes are computed once per
    node, without recursion and without expanding anything; a document without aliases is one
    pass over its nodes."""
    distinct = _distinct_nodes(root)
    if distinct is None:
        return None  # no node is reached twice: no alias, nothing to expand
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            # The expanded document holds at least this node's expansion, so once it exceeds
            # the distinct nodes by MAX_VALUES, aliases add more than MAX_VALUES: refuse here,
            # at the smallest part that shows it.
            if sizes[key] - distinct > MAX_VALUES:
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


def _distinct_nodes(root: yaml.Node) -> int | None:
    """How many distinct nodes the graph has, or None when none is reached twice (no alias)."""
    seen: set[int] = {id(root)}
    stack: list[yaml.Node] = [root]
    shared = False
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        for child in _children(node):
            key = id(child)
            if key in seen:
                shared = True
            else:
                seen.add(key)
                stack.append(child)
    return len(seen) if shared else None


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
    *,
    index: _KeyIndex | None = None,
) -> Located:
    path = _yaml_path(problem, prefix)
    mark = mark if mark is not None else _mark(root, path, {} if index is None else index)
    shown = dotted(path[1:]) if prefix and path[:1] == ("config",) else problem.dotted_path
    return Located(name, mark.line + 1, mark.column + 1, shown, problem.message, problem.rule_id)


def _keys_of(node: yaml.MappingNode, index: _KeyIndex) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    keys = index.get(id(node))
    if keys is None:
        keys = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                keys.setdefault(key_node.value, (key_node, value_node))  # the first, as written
        index[id(node)] = keys
    return keys


def _mark(node: yaml.Node, path: Iterable[str | int], index: _KeyIndex) -> yaml.Mark:
    """Where ``path`` points in the YAML: the key of a mapping entry, the item of a sequence;
    for a missing key, the deepest part of the path that exists."""
    mark = node.start_mark
    for step in path:
        if isinstance(node, yaml.MappingNode):
            entry = _keys_of(node, index).get(str(step))
            if entry is None:
                return mark
            mark, node = entry[0].start_mark, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and (
            0 <= step < len(node.value)
        ):
            node = node.value[step]
            mark = node.start_mark
        else:
            return mark
    return mark
