"""``snapshot-resources validate FILE...``: check stack config files before they are deployed.

Public API: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int`` (the CLI contract), and
``validate_text(text, name) -> list[Located]`` / ``validate_file(path) -> list[Located]`` for
programs and tests.  ``load_text`` / ``load_file`` return the same problems together with the
document they were found in (a ``StackFile``), for commands that go on to use a valid file
(``snapshot-resources plan``): one reader, so every command accepts exactly the same files.
``read_limited(path)`` is that reader's first step (the bytes, or the one problem: not a regular
file, larger than ``MAX_FILE_BYTES``, unreadable); ``size_text(n)`` spells a size for messages.

A FILE is either a Pulumi stack file (``Pulumi.<stack>.yaml``: the project's keys under
``config:`` as ``<project>:storage`` and ``<project>:sessions``, or ``storage`` and ``sessions``
without a namespace, with ``agora:appId`` as the default App ID) or a plain YAML/JSON document
with ``storage`` and ``sessions``.  The project is ``--project``, else the ``Pulumi.yaml`` the
stack file belongs to (``find_project``), else the one namespace holding storage or sessions.
The file is read as the Pulumi CLI reads it (``pulumi_yaml``: YAML 1.2, values as the program
gets them), and the config keys are checked as the program checks them (``config_keys``: keys of
another project, unknown ``agora:`` settings, no App ID), so that a file passes ``validate``
exactly when it passes ``pulumi preview``.  Every problem is printed as ``FILE:LINE:COL:
dotted.path: message (rule <id>; <sources>)``, pointing at the offending key, and every warning as
``FILE:LINE:COL: warning: ...`` (a secret in plain text, with the command that encrypts it; a
scalar Pulumi reads otherwise than it looks: "quote it"; nothing to deploy); a file without
problems gets one line saying what was checked (``FILE: 2 sessions, 1 storage target: ok``, or
``nothing to deploy``); ``--format json`` prints the same for bots (per file its problems,
warnings, project and the counts ``sessions`` and ``storageTargets``, null for a file that holds
no stack).  Exit status 1 if there is any problem, else 0.  Pulumi secrets (``secure: ...``) are
accepted as opaque values when Pulumi could decrypt them; a placeholder is a problem.

Only regular files of at most ``MAX_FILE_BYTES`` are read: a device (``/dev/zero``), a FIFO or a
directory is refused without reading from it, and so is a larger file, each with one line.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeAlias, cast

import yaml

from snapshot_resources import config_keys, pulumi_yaml, rules
from snapshot_resources.pulumi_yaml import PLAIN_TAG, PulumiLoader, UnpassableScalarError
from snapshot_resources.spec import (
    STACK_KEYS,
    Problem,
    dotted,
    is_secure_marker,
    stack_problems,
)

HELP = "Check stack config files (Pulumi.<stack>.yaml or storage+sessions YAML/JSON) offline."

APP_ID_KEY: Final = config_keys.APP_ID_KEY

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it

PROJECT_FILES: Final = ("Pulumi.yaml", "Pulumi.yml")

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"  # "<<": may repeat, merges rather than repeats

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
    """A problem (or, with ``severity`` "warning", a warning) with the file position of the key
    it is about (1-based line and column)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    rule_id: str | None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.severity != "error":
            where += f": {self.severity}"
        if self.rule_id is None:
            return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
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
class Project:
    """The Pulumi project a stack file belongs to: its ``name`` and where it came from
    (``source``, for messages: ``Pulumi.yaml``, ``--project``)."""

    name: str
    source: str


@dataclass(frozen=True)
class StackFile:
    """One file as read: its stack document, default App ID, every problem and warning in it.

    ``document`` is the ``storage``/``sessions`` mapping exactly as the program reads it
    (``secure:`` values left in place): the file itself for a plain document, the project's keys
    under ``config:`` for a Pulumi stack file (``{}`` when it has none), None when the file is not
    a mapping.  ``app_id`` is ``agora:appId`` as the program reads it (None for a plain
    document).  ``project`` is the project whose keys were read (None for a plain document).
    """

    name: str
    document: Mapping[str, Any] | None
    app_id: object
    problems: list[Located]
    root: yaml.Node | None = field(default=None, repr=False, compare=False)
    prefix: tuple[str, ...] = ()
    _index: _KeyIndex = field(default_factory=dict, repr=False, compare=False)
    warnings: list[Located] = field(default_factory=list)
    project: Project | None = None
    written: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def counts(self) -> tuple[int, int] | None:
        """(sessions, storage targets) as written, or None when the file held no stack."""
        if self.document is None:
            return None
        return (_count(self.document.get("sessions")), _count(self.document.get("storage")))

    def summary(self) -> str:
        """What was checked, for a file without problems: ``FILE: 2 sessions, 1 storage
        target: ok``; a stack with neither is not called ok (there is nothing to deploy)."""
        sessions, targets = self.counts or (0, 0)
        counted = f"{self.name}: {_plural(sessions, 'session')}, {_plural(targets, 'storage target')}"
        warned = f" ({_plural(len(self.warnings), 'warning')})" if self.warnings else ""
        if not sessions and not targets:
            return f"{counted}: nothing to deploy{warned}"
        return f"{counted}: ok{warned}"

    def locate(self, problem: Problem) -> Located:
        """``problem`` (a path in ``document``) at its place in this file."""
        if self.root is None:
            return Located(self.name, 1, 1, problem.dotted_path, problem.message, problem.rule_id)
        return _locate(self.root, self.name, problem, self.prefix, index=self._index,
                       written=self.written)


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
    parser.add_argument("--project", metavar="NAME",
                        help="the Pulumi project whose keys to read (<NAME>:storage, "
                             "<NAME>:sessions); default: the name in the Pulumi.yaml beside "
                             "each stack file")
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
    project = args.project
    if args.format == "json":
        files = [load_file(path, project=project) for path in args.files]
        report = {
            "files": [{"file": f.name, "problems": [p.as_json() for p in f.problems],
                       "warnings": [w.as_json() for w in f.warnings],
                       "project": f.project.name if f.project else None,
                       "sessions": f.counts[0] if f.counts else None,
                       "storageTargets": f.counts[1] if f.counts else None} for f in files],
            "problemCount": sum(len(f.problems) for f in files),
            "warningCount": sum(len(f.warnings) for f in files),
        }
        print(json.dumps(report, indent=2))
        return 1 if any(f.problems for f in files) else 0
    total = bad_files = 0
    for path in args.files:
        file = load_file(path, project=project)
        for located in sorted([*file.problems, *file.warnings],
                              key=lambda loc: (loc.line, loc.column)):
            print(located)
        if not file.problems:
            print(file.summary())
        total += len(file.problems)
        bad_files += bool(file.problems)
    if total:
        print(f"{total} problem{'s' if total != 1 else ''} in {bad_files} file(s)",
              file=sys.stderr)
    return 1 if total else 0


def validate_file(path: Path, *, project: str | None = None) -> list[Located]:
    return load_file(path, project=project).problems


def validate_text(text: str, name: str, *, project: str | None = None) -> list[Located]:
    """Every problem in one document's text; ``name`` is the file name shown."""
    return load_text(text, name, project=project).problems


def load_file(path: Path, *, project: str | None = None) -> StackFile:
    """``path`` read (``read_limited``) and checked (see ``load_text``).  The project is
    ``project`` when given, else the one whose ``Pulumi.yaml`` the stack file belongs to
    (``find_project``)."""
    raw = read_limited(path)
    if isinstance(raw, Located):
        return _unread(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _unread(Located(str(path), 1, 1, "", "is not UTF-8 text (YAML or JSON expected)",
                               None))
    found = Project(project, "--project") if project is not None else find_project(path)
    return load_text(text, str(path), project=found, stack=stack_name(path))


def stack_name(path: Path) -> str | None:
    """``prod`` for ``Pulumi.prod.yaml``: the stack a stack file configures (None otherwise)."""
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name)
    return match.group(1) if match else None


def find_project(path: Path) -> Project | None:
    """The project of the stack file ``path``, as the Pulumi CLI finds it: the ``Pulumi.yaml``
    in the file's directory, else the nearest one above whose ``stackConfigDir`` is that
    directory.  None when there is none (or it cannot be read)."""
    directory = path.resolve().parent
    for folder in (directory, *directory.parents):
        for file_name in PROJECT_FILES:
            candidate = folder / file_name
            if not candidate.is_file():
                continue
            project = _read_project(candidate)
            if project is None:
                return None
            name, config_dir = project
            if folder == directory or (
                config_dir is not None and (folder / config_dir).resolve() == directory
            ):
                shown = file_name if folder == directory else str(candidate)
                return Project(name, shown)
            return None  # the nearest project does not keep its stack files here
    return None


def _read_project(path: Path) -> tuple[str, str | None] | None:
    raw = read_limited(path, limit=1024 * 1024)
    if isinstance(raw, Located):
        return None
    try:
        data = yaml.load(raw.decode("utf-8-sig"), Loader=PulumiLoader)  # noqa: S506 - safe loader
    except (yaml.YAMLError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        return None
    config_dir = data.get("stackConfigDir")
    return data["name"], config_dir if isinstance(config_dir, str) else None


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


def load_text(
    text: str, name: str, *, project: Project | str | None = None, stack: str | None = None
) -> StackFile:
    """One document's text read as the Pulumi CLI reads it (``pulumi_yaml``) and checked: its
    stack document, default App ID, every problem and warning, in file order; ``name`` is the
    file name shown.  ``project``: the Pulumi project whose keys a stack file's ``config`` holds
    (a name means ``--project``); None: the one namespace holding storage or sessions.
    ``stack``: the stack's name, for the commands that messages suggest."""
    if isinstance(project, str):
        project = Project(project, "--project")
    with _collector_paused():
        return _load_text(text, name, project, stack)


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


def _load_text(text: str, name: str, project: Project | None, stack: str | None) -> StackFile:
    notes: dict[int, tuple[yaml.Node, str]] = {}
    try:
        # Before the parser: PyYAML (since 6.0.4) stops deep flow nesting itself, with its own
        # wording; flow brackets are counted first so the message is this tool's, whatever the
        # version. Then parser events catch deep block nesting before the composer recurses.
        deep = _too_deep_flow(text, name) or _too_deep(text, name) or _too_long(text, name)
        if deep is not None:
            return _unread(deep)
        loader = PulumiLoader(text)
        try:
            node = loader.get_single_node()
            # An alias is written "*name": without a "*" anywhere there is none to expand.
            shape = _shape_problem(node, name) if node is not None and "*" in text else None
            if shape is not None:
                return _unread(shape)  # before constructing: an alias bomb is never expanded
            # Before constructing: the constructor splices "<<" merge keys into the node, and
            # a key that overrides a merged one is not a repeated key.
            duplicates = _duplicate_keys(node, ()) if node is not None else []
            data = (_construct(loader, node, notes, tree="*" not in text)
                    if node is not None else None)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        reason = getattr(exc, "problem", None) or "cannot be parsed"
        return _unread(Located(name, line, col, "", f"is not valid YAML or JSON: {reason}", None))
    except UnpassableScalarError as exc:
        where = _find_scalar(node, str(exc)) if node is not None else None
        line, col = (where.line + 1, where.column + 1) if where is not None else (1, 1)
        return _unread(Located(name, line, col, "", f"holds {exc} unquoted, which Pulumi reads "
                               "but cannot pass to a program (JSON has no such number): quote "
                               "it", None))
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
    surprises = _note_paths(node, notes) if notes else {}
    if "config" in data and not any(k in data for k in STACK_KEYS):
        return _pulumi_file(name, node, data, duplicates, surprises, project, stack)
    problems = stack_problems(data, is_unknown=is_secure_marker)
    return _assemble(StackFile(name, data, None, [], node), problems, duplicates, [], surprises)


def _assemble(
    file: StackFile,
    problems: list[Problem],
    duplicates: list[tuple[Problem, yaml.Mark]],
    unruled: list[Located],
    surprises: Mapping[tuple[str | int, ...], tuple[yaml.Node, str]],
    warnings: list[Located] = (),  # type: ignore[assignment]
) -> StackFile:
    """``file`` with its problems located and sorted; a surprising scalar's note is added to a
    problem at its place, and is a warning of its own where there is none."""
    assert file.root is not None
    index = file._index
    located = [_locate(file.root, file.name, p, file.prefix, index=index, written=file.written)
               for p in problems]
    located += [_locate(file.root, file.name, p, file.prefix, mark, written=file.written)
                for p, mark in duplicates]
    located += unruled
    noted: dict[tuple[int, int], str] = {}
    for node, note in surprises.values():
        noted[(node.start_mark.line + 1, node.start_mark.column + 1)] = note
    used: set[tuple[int, int]] = set()
    out: list[Located] = []
    for item in located:
        value_at = _value_mark(file, item) if noted else None
        if value_at is not None and value_at in noted:
            used.add(value_at)
            item = replace(item, message=f"{item.message} ({noted[value_at]})")
        out.append(item)
    out.sort(key=lambda loc: (loc.line, loc.column))
    notes = [Located(file.name, node.start_mark.line + 1, node.start_mark.column + 1,
                     _shown_path(file, path), f"{note}: quote it to mean the text as written",
                     None, "warning")
             for path, (node, note) in surprises.items()
             if (node.start_mark.line + 1, node.start_mark.column + 1) not in used]
    all_warnings = sorted([*warnings, *notes], key=lambda loc: (loc.line, loc.column))
    return replace(file, problems=out, warnings=all_warnings)


def _value_mark(file: StackFile, item: Located) -> tuple[int, int] | None:
    """Where the value of the key ``item`` points at starts (a surprising scalar is noted by
    its value's place), or None."""
    assert file.root is not None
    entry = _entry_at(file.root, item.line, item.column)
    if entry is None:
        return None
    return (entry.start_mark.line + 1, entry.start_mark.column + 1)


def _entry_at(root: yaml.Node, line: int, column: int) -> yaml.Node | None:
    """The value node of the mapping key at (line, column), or the sequence item there."""
    for node in _each_node(root):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if (key_node.start_mark.line + 1, key_node.start_mark.column + 1) == (line, column):
                    return cast(yaml.Node, value_node)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                if (item.start_mark.line + 1, item.start_mark.column + 1) == (line, column):
                    return cast(yaml.Node, item)
    return None


def _each_node(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node of a composed document once, however many aliases reach it."""
    stack: list[yaml.Node] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            yield node
            stack.extend(_children(node))


def _shown_path(file: StackFile, path: tuple[str | int, ...]) -> str:
    return dotted(path[1:]) if file.prefix and path[:1] == ("config",) else dotted(path)


def _note_paths(
    root: yaml.Node, notes: Mapping[int, tuple[yaml.Node, str]]
) -> dict[tuple[str | int, ...], tuple[yaml.Node, str]]:
    """The file paths of the noted scalar nodes (keys as written)."""
    found: dict[tuple[str | int, ...], tuple[yaml.Node, str]] = {}
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in notes and id(node) not in seen:
            found[path] = notes[id(node)]
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    stack.append((value_node, (*path, str(key_node.value))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return found


def _find_scalar(root: yaml.Node, text: str) -> yaml.Mark | None:
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode) and node.tag == PLAIN_TAG and node.value == text:
            return node.start_mark
        stack.extend(reversed(_children(node)))
    return None


_STR_TAG: Final = "tag:yaml.org,2002:str"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
# Scalar tags whose constructors are plain functions of the node (no state, no generator).
_PLAIN_SCALAR_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp"))


class _NotPlainError(Exception):
    """A node the direct construction leaves to the loader's constructor."""


# First characters of a plain scalar that may be read as something else than its text (a number,
# a boolean, null, a date), or that YAML 1.1 reads as a boolean (y, n, on, off ...).
_MAYBE_NOT_TEXT: Final = frozenset("+-0123456789.tTfFnN~yYoO")
_SHORT_DECIMAL: Final = 19  # digits: any such decimal integer fits int64, read as written


def _construct(
    loader: Any, root: yaml.Node, notes: dict[int, tuple[yaml.Node, str]], *, tree: bool
) -> Any:
    """The document's value, exactly as ``loader.construct_document(root)`` builds it, with the
    plain scalars whose reading is surprising noted in ``notes`` (by node id).

    The loader's constructor is generic (aliases, recursive values, deferred generators) and
    was a third of the time of a large file.  A tree (no alias: each node reached once) with
    only plain tags and scalar keys is built here directly, calling the same scalar
    constructors; anything else, or any error, goes to the loader from the start (nothing here
    changes the nodes), so the value and any error are the loader's own."""
    if tree:
        scalars = loader.yaml_constructors
        plain_value, plain_key, surprise = (pulumi_yaml.plain_value, pulumi_yaml.plain_key,
                                            pulumi_yaml.surprise)

        def plain(node: yaml.ScalarNode) -> Any:
            text = node.value
            if text and text[0] not in _MAYBE_NOT_TEXT:
                return text
            if len(text) < _SHORT_DECIMAL and rules.is_ascii_digits(text) and (
                    text[0] != "0" or len(text) == 1):
                return int(text)  # a decimal integer as written: the commonest number
            note = surprise(text)
            if note is not None:
                notes[id(node)] = (node, note)
            return plain_value(text)

        def build(node: yaml.Node) -> Any:
            tag = node.tag
            if isinstance(node, yaml.ScalarNode):
                if tag == PLAIN_TAG:
                    return plain(node)
                if tag == _STR_TAG:
                    return node.value
                if tag in _PLAIN_SCALAR_TAGS:
                    return scalars[tag](loader, node)
            elif isinstance(node, yaml.MappingNode) and tag == _MAP_TAG:
                mapping: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                        raise _NotPlainError  # "<<" merges: the loader's rules
                    key = (plain_key(key_node.value) if key_node.tag == PLAIN_TAG
                           else build(key_node))
                    mapping[key] = build(value_node)
                return mapping
            elif isinstance(node, yaml.SequenceNode) and tag == _SEQ_TAG:
                return [build(item) for item in node.value]
            raise _NotPlainError

        # Any failure (a tag left to the loader, a bad number): the loader's run below raises
        # its own error, in its own order.
        with contextlib.suppress(Exception):
            return build(root)
        notes.clear()
    data = loader.construct_document(root)
    notes.update(_surprising(root))
    return data


def _surprising(root: yaml.Node) -> dict[int, tuple[yaml.Node, str]]:
    """The plain scalars of a composed document whose reading is surprising (by node id)."""
    found: dict[int, tuple[yaml.Node, str]] = {}
    for node in _each_node(root):
        if isinstance(node, yaml.ScalarNode) and node.tag == PLAIN_TAG:
            note = pulumi_yaml.surprise(node.value)
            if note is not None:
                found[id(node)] = (node, note)
    return found


def _unread(problem: Located) -> StackFile:
    """A file that could not be read as a mapping: its one problem and no document."""
    return StackFile(problem.file, None, None, [problem])


def _pulumi_file(
    name: str,
    root: yaml.Node,
    data: Mapping[str, Any],
    duplicates: list[tuple[Problem, yaml.Mark]],
    surprises: Mapping[tuple[str | int, ...], tuple[yaml.Node, str]],
    project: Project | None,
    stack: str | None,
) -> StackFile:
    """A Pulumi stack file: the project's ``storage`` and ``sessions`` under ``config`` (keys
    ``<project>:<key>``, or without a namespace), checked as the program checks them, and the
    config keys this product would never read (``config_keys.key_problems``)."""
    config = data["config"]
    base = StackFile(name, {}, None, [], root, ("config",))
    if config is None:  # "config:" with nothing under it: nothing to check, nothing to deploy
        return _assemble(base, [], duplicates, [], surprises, [_nothing(base, project)])
    if not isinstance(config, Mapping):
        problem = Problem(("config",), f"is not a mapping; {rules.MAPPING.text}", rules.MAPPING.id)
        return _assemble(replace(base, document=None), [problem], duplicates, [], surprises)
    keys = [str(key) for key in config]
    if project is None:
        found = sorted({k.partition(":")[0] for k in keys
                        if ":" in k and k.partition(":")[2] in STACK_KEYS})
        if len(found) > 1:
            several = Located(name, root.start_mark.line + 1, 1, "config", (
                "holds storage or sessions under several projects (" + ", ".join(found) + "); the "
                "program reads only its own project's: give --project NAME, or keep the file "
                "beside its Pulumi.yaml"), None)
            return _assemble(replace(base, document=None), [], duplicates, [several], surprises)
        if found:
            project = Project(found[0], "the namespace of its storage and sessions keys; no "
                                        "Pulumi.yaml found")
    full = {config_keys.full_key(k, project.name) if project else k: k for k in keys}
    values = {key: config[written] for key, written in full.items()}
    own = {k: f"{project.name}:{k}" if project else k for k in STACK_KEYS}
    document = {short: values[key] for short, key in own.items() if key in values}
    written = {short: full[key] for short, key in own.items() if key in full} | full
    base = replace(base, document=document, written=written, project=project)
    app_id = _app_id(values.get(APP_ID_KEY))
    problems: list[Problem] = []
    checked_app_id: str | None = None
    if is_secure_marker(app_id):
        checked_app_id = "(secret agora:appId)"  # opaque, but still one App ID for its sessions
    elif app_id is not None and (not isinstance(app_id, str) or not rules.APP_ID.matches(app_id)):
        problems.append(Problem(("config", APP_ID_KEY), f"is not an App ID; {rules.APP_ID.text}",
                                rules.APP_ID.id))
    else:
        checked_app_id = app_id
    if project is not None:
        problems += config_keys.key_problems(full, project.name, source=project.source)
    problems += config_keys.app_id_problems(document.get("sessions"), app_id)
    problems += stack_problems(document, default_app_id=checked_app_id, is_unknown=is_secure_marker)
    base = replace(base, app_id=app_id)
    unruled, warnings = _secret_checks(base, data, values, project, stack)
    if not _count(document.get("sessions")) and not _count(document.get("storage")):
        warnings.append(_nothing(base, project))
    return _assemble(base, problems, duplicates, unruled, surprises, warnings)


def _app_id(value: object) -> object:
    """``agora:appId`` as ``pulumi.Config("agora").get("appId")`` returns it: a scalar as its
    text (``pulumi_yaml.top_level_text``), a secret left as its marker."""
    if isinstance(value, Mapping | list):
        return value
    return pulumi_yaml.top_level_text(value)


def _nothing(file: StackFile, project: Project | None) -> Located:
    assert file.root is not None
    where = f"{project.name}:" if project else "this file's project"
    known = f" ({project.source})" if project else ""
    return Located(file.name, file.root.start_mark.line + 1, 1, "config",
                   f"holds no storage and no sessions under {where}{known}: `pulumi up` would "
                   "deploy nothing", None, "warning")


def _secret_checks(
    file: StackFile,
    data: Mapping[str, Any],
    values: Mapping[str, Any],
    project: Project | None,
    stack: str | None,
) -> tuple[list[Located], list[Located]]:
    """Secrets of a Pulumi stack file: a ``secure:`` value Pulumi cannot decrypt (a placeholder)
    is a problem, a secret in plain text a warning; both say the command that sets it."""
    provider = data.get("secretsprovider")
    salted = data.get("encryptionsalt") is not None
    problems: list[Located] = []
    warnings: list[Located] = []

    def command(key: str, path: tuple[str | int, ...]) -> str:
        namespace, _, short = key.partition(":")
        return config_keys.set_secret_command(
            config_keys.config_path(namespace, [short, *path]) if path else key,
            path=bool(path), stack=stack)

    def located(key: str, path: tuple[str | int, ...]) -> Located:
        return file.locate(Problem(("config", key, *path), "", rules.MAPPING.id))

    for key, path, marker in _secure_markers(values):
        reason = _undecryptable(marker, provider, salted)
        if reason is not None:
            problems.append(replace(located(key, path), rule_id=None, message=(
                f"is not a value Pulumi can decrypt ({reason}; a placeholder?): set it with "
                f"`{command(key, path)}`")))
    for key, path in _plaintext_secrets(values, project):
        warnings.append(replace(located(key, path), rule_id=None, severity="warning", message=(
            "is a secret in plain text in the stack file (and so in your repository); encrypt "
            f"it: `{command(key, path)}` (it asks for the value)")))
    return problems, warnings


def _secure_markers(
    values: Mapping[str, Any],
) -> Iterator[tuple[str, tuple[str | int, ...], str]]:
    """(key, path, ciphertext) of every ``secure:`` value in the config; only containers are
    walked (a large stack has hundreds of thousands of scalars)."""
    for key, value in values.items():
        stack: list[tuple[tuple[str | int, ...], object]] = [((), value)]
        while stack:
            path, item = stack.pop()
            if isinstance(item, Mapping):
                if is_secure_marker(item):
                    yield key, path, str(item["secure"])
                    continue
                stack.extend(((*path, str(k)), v) for k, v in item.items()
                             if isinstance(v, Mapping | list))
            elif isinstance(item, list):
                stack.extend(((*path, i), v) for i, v in enumerate(item)
                             if isinstance(v, Mapping | list))


def _plaintext_secrets(
    values: Mapping[str, Any], project: Project | None
) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """(key, path) of each secret written in plain text: a secret ``agora:`` setting, and the
    secret fields of the project's storage entries and sessions (rules.SECRET_PATHS)."""
    for setting in config_keys.PROVIDER_SETTINGS:
        value = values.get(setting.name)
        if value is not None and not is_secure_marker(value) and setting.holds_secret(value):
            yield setting.name, ()
    if project is None:
        return
    storage_paths = [p[1:] for p in rules.SECRET_PATHS if p[0] == "storage"]
    session_paths = [p for p in rules.SECRET_PATHS if p[0] != "storage"]
    for short, paths in (("storage", storage_paths), ("sessions", session_paths)):
        key = f"{project.name}:{short}"
        entries = values.get(key)
        for name, entry in entries.items() if isinstance(entries, Mapping) else ():
            for path in paths:
                found: object = entry
                for part in path:
                    found = found.get(part) if isinstance(found, Mapping) else None
                if found is not None and not is_secure_marker(found):
                    yield key, (str(name), *path)


_B64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_NONCE_BYTES: Final = 12  # AES-256-GCM's nonce in Pulumi's passphrase ciphertext
_TAG_BYTES: Final = 16  # and its authentication tag, at the end of every ciphertext


def _undecryptable(text: str, provider: object, salted: bool) -> str | None:
    """Why a ``secure:`` value cannot be a ciphertext of the stack's secrets provider, or None.

    The passphrase provider (a stack file with ``encryptionsalt``) writes ``v1:<nonce>:<data>``
    (base64, a 12-byte nonce, data at least the 16-byte tag); the service and cloud providers
    write base64 (Pulumi's ``sdk/go/common/resource/config/crypt.go``).  A value of the right
    form but encrypted for another stack cannot be told from here."""
    passphrase = (provider is None and salted) or (
        isinstance(provider, str) and provider.startswith("passphrase"))
    if text.startswith("v1:") or passphrase:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] != "v1":
            return "a passphrase ciphertext is v1:<nonce>:<data>"
        if not (_B64.fullmatch(parts[1]) and _B64.fullmatch(parts[2])):
            return "its v1: parts are not base64"
        if len(base64.b64decode(parts[1])) != _NONCE_BYTES or len(
                base64.b64decode(parts[2])) < _TAG_BYTES:
            return "its v1: parts are too short for AES-256-GCM"
        return None
    if not text or not _B64.fullmatch(text) or len(base64.b64decode(text)) < _TAG_BYTES:
        return "not base64 of a ciphertext"
    return None


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


def _yaml_path(
    problem: Problem, prefix: tuple[str, ...], written: Mapping[str, str]
) -> tuple[str | int, ...]:
    """Where a problem of the stack document lies in the file: a Pulumi file's project keys are
    under ``config`` as written (``<project>:sessions`` or ``sessions``)."""
    path = problem.path
    if path[:1] == ("config",) and len(path) > 1:
        return ("config", written.get(str(path[1]), str(path[1])), *path[2:])
    if prefix and path and path[0] in STACK_KEYS:
        return (*prefix, written.get(str(path[0]), str(path[0])), *path[1:])
    return path


def _locate(
    root: yaml.Node,
    name: str,
    problem: Problem,
    prefix: tuple[str, ...],
    mark: yaml.Mark | None = None,
    *,
    index: _KeyIndex | None = None,
    written: Mapping[str, str] | None = None,
) -> Located:
    path = _yaml_path(problem, prefix, written or {})
    mark = mark if mark is not None else _mark(root, path, {} if index is None else index)
    shown = (dotted(path[1:]) if prefix and path[:1] == ("config",) and len(path) > 1
             else problem.dotted_path)
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
