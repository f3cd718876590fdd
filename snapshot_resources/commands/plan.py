"""``snapshot-resources plan OLD NEW``: what ``pulumi up`` will do when a stack file changes.

Reviews a change without credentials, a Pulumi backend or the network: OLD and NEW are two versions
of a stack file (``Pulumi.<stack>.yaml`` or a plain storage+sessions document, read exactly as
``validate`` reads them, by the same reader, as the Pulumi CLI reads them: the project's keys by
the ``Pulumi.yaml`` beside each file or ``--project``; regular files of at most
``MAX_FILE_BYTES``), and the
output says per storage entry and session whether it is created,
deleted, updated in place or replaced.  A session replacement is a new task with a new sid: its
snapshots restart, with a gap in the series.  The decision is the provider's own
(``snapshot_resources.plan``).

Output (``--format text``, the default): one line per entry that changes (unchanged ones are only
counted), with what a reviewer should know below it; for ``Pulumi.example.yaml`` with a new
captureInterval, an edited speaker list and a longer retention::

     ~ storage main: update in place: retentionDays
          note: in place: the lifecycle rule
    +- session lobby: replace (new sid: snapshots restart, a gap in the series): snapshotConfig.captureInterval
          note: stops the task, then starts a new one (same channel and uid)
     ~ session stage: update in place: recordingConfig.subscribeAudioUids, recordingConfig.subscribeVideoUids
          note: in place through Agora's update API (same sid)
    Plan: 0 to create, 2 to update in place, 1 to replace, 0 to delete (0 unchanged).

``--format json`` prints ``{"changes": [...every entry, unchanged included...], "summary": {...},
"problems": [...]}`` for bots.  Secrets are never printed: a changed secret shows as its path with
"(rotated)" (a ``secure:`` value is compared as ciphertext, so re-encrypting the same value also
shows as rotated).

Exit status: 0 when the plan was made (with or without changes), 1 on any error: a file with a
problem (printed as ``validate`` prints it; no plan is made) or a usage error (a missing file
argument, an unknown flag: one line on stderr).  With ``--detailed-exitcode``, as ``terraform
plan -detailed-exitcode``: 0 no changes, 1 error, 2 changes.  So 2 never means a usage error here,
unlike the other commands (argparse's 2): a job that takes 2 as "changes" cannot mistake a typo
for them.  A plain 0 is the default so that a review job fails only on a broken file, not on
every pull request that changes something.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from snapshot_resources import plan as planning
from snapshot_resources.commands.validate import (
    MAX_FILE_BYTES,
    Located,
    StackFile,
    load_file,
    size_text,
)
from snapshot_resources.spec import Problem, SpecError
from snapshot_resources.stack import StackConfig

HELP = ("Say what `pulumi up` will do when a stack file changes from OLD to NEW (create, delete, "
        "update in place, replace), offline.")

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1  # a broken file, or a usage error
USAGE_ERROR_EXIT: Final = EXIT_INVALID  # not argparse's 2, which means changes here (cli.py)
EXIT_CHANGES: Final = 2  # only with --detailed-exitcode

SYMBOLS: Final = {
    planning.Action.CREATE: "+",
    planning.Action.DELETE: "-",
    planning.Action.UPDATE: "~",
    planning.Action.REPLACE: "+-",
}
"""The markers ``pulumi preview`` uses for the same operations."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    limit = size_text(MAX_FILE_BYTES)
    parser.description = (f"{HELP} OLD and NEW are read as validate reads them: regular files of "
                          f"at most {limit}.")
    parser.add_argument("old", type=Path, metavar="OLD",
                        help="the stack file as deployed (e.g. from the base branch)")
    parser.add_argument("new", type=Path, metavar="NEW", help="the stack file as proposed")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: one line per change and a summary (default); json: for bots")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 2 when there are changes, 0 when there are none (1 = any "
                        "error, usage errors included)")
    parser.add_argument("--project", metavar="NAME",
                        help="the Pulumi project whose keys to read, as validate --project; "
                             "default: the name in the Pulumi.yaml beside each file")


def run(args: argparse.Namespace) -> int:
    old, old_problems = _read(load_file(args.old, project=args.project))
    new, new_problems = _read(load_file(args.new, project=args.project))
    problems = old_problems + new_problems
    if old is None or new is None or problems:
        _print_problems(problems, args.format)
        return EXIT_INVALID
    planned = planning.plan(old, new)
    if args.format == "json":
        print(json.dumps({
            "changes": [c.as_json() for c in planned],
            "summary": planning.summary(planned),
            "problems": [],
        }, indent=2))
    else:
        for line in render(planned):
            print(line)
    if args.detailed_exitcode and planning.has_changes(planned):
        return EXIT_CHANGES
    return EXIT_OK


def _read(file: StackFile) -> tuple[StackConfig | None, list[Located]]:
    """The file as a stack, or its problems: validate's, then any secret plan cannot compare."""
    if file.problems or file.document is None:
        return None, file.problems
    try:
        return planning.stack_config(file.document, file.app_id), []
    except planning.SecretsError as err:
        return None, [_unsupported_secret(file, path) for path in err.paths]
    except SpecError as err:  # pragma: no cover - validate found nothing, so neither does parse
        return None, [file.locate(p) for p in err.problems]


def _unsupported_secret(file: StackFile, path: tuple[str | int, ...]) -> Located:
    # locate() takes a Problem, which names a rule; this is plan's own limit, so the rule is
    # dropped again and the message carries the path (as validate prints rule-less problems).
    located = file.locate(Problem(path, "", "mapping"))
    fields = ", ".join(sorted(planning.COMPARABLE_SECRETS))
    message = (f"{located.path}: is a Pulumi secret (secure:), which plan compares only in "
               f"{fields}; write it in plain text or leave it out of the review")
    return replace(located, message=message, rule_id=None)


def _print_problems(problems: Sequence[Located], output: str) -> None:
    if output == "json":
        print(json.dumps({"changes": [], "summary": None,
                          "problems": [p.as_json() for p in problems]}, indent=2))
        return
    for located in problems:
        print(located)
    files = len({p.file for p in problems})
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {files} file(s); "
          "no plan was made", file=sys.stderr)


def _action_text(change: planning.PlannedChange) -> str:
    if change.action is planning.Action.REPLACE:
        return planning.REPLACE_TEXT if change.kind == "session" else "replace"
    if change.action is planning.Action.UPDATE:
        return "update in place"
    return str(change.action)


def render(planned: Sequence[planning.PlannedChange]) -> list[str]:
    """The text output: changes (unchanged entries left out), notes, and the summary line."""
    lines: list[str] = []
    for change in planned:
        if change.action is planning.Action.UNCHANGED:
            if change.note:  # e.g. its storage is replaced under it: worth a reviewer's look
                lines.append(f"   {change.kind} {change.name}: unchanged")
                lines.append(f"      note: {change.note}")
            continue
        rotated = set(change.rotated)
        details = ", ".join(f"{d} (rotated)" if d in rotated else d for d in change.details)
        line = f"{SYMBOLS[change.action]:>2} {change.kind} {change.name}: {_action_text(change)}"
        lines.append(f"{line}: {details}" if details else line)
        if change.note:
            lines.append(f"      note: {change.note}")
    counts = planning.summary(planned)
    lines.append(
        f"Plan: {counts['create']} to create, {counts['update']} to update in place, "
        f"{counts['replace']} to replace, {counts['delete']} to delete "
        f"({counts['unchanged']} unchanged)."
    )
    return lines
