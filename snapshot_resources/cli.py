"""The ``snapshot-resources`` command: a thin dispatcher over ``snapshot_resources.commands``.

``main(argv)`` returns the exit status.  ``--version`` prints the installed package's version.
Output cut short by its reader (``snapshot-resources plan OLD NEW | head -1``) ends the command
quietly with status 141 (128 + SIGPIPE, as a shell reports a command killed by the signal).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Final, NoReturn, Protocol, cast

# Subcommand name -> module under snapshot_resources.commands.
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "schema": "schema",
    "snapshots": "snapshots",
    "emulator": "emulator",
    "plan": "plan",
    "reconcile": "reconcile",
}

DISTRIBUTION: Final = "snapshot-resources"
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE: Final = 141  # 128 + SIGPIPE


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"snapshot_resources.commands.{COMMANDS[name]}"))


def version() -> str:
    """The installed distribution's version (a source tree that is not installed has none)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: argparse's own action, with the version looked up only when asked for
    (reading the installed metadata costs every other run 20 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version of snapshot-resources and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, the other commands are listed without loading their modules
    (plan and emulator import Pulumi and the emulator: half a second before validate could
    start).  Their help appears in ``--help``, which loads them all."""
    parser = argparse.ArgumentParser(
        prog="snapshot-resources",
        description="Agora Cloud Recording snapshot sessions as Pulumi resources.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        command = _load(name)
        command_parser = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(command_parser)
        usage_exit = getattr(command, "USAGE_ERROR_EXIT", None)
        if usage_exit is not None and only == name:
            # A command whose exit 2 means something else (plan --detailed-exitcode: changes)
            # says how its usage errors exit, at both levels of parsing.
            for one in (parser, command_parser):
                one.error = functools.partial(_usage_error, one, usage_exit)  # type: ignore[method-assign]
    return parser


def _usage_error(parser: argparse.ArgumentParser, status: int, message: str) -> NoReturn:
    """argparse's usage error (usage, then one line), exiting with ``status``."""
    parser.print_usage(sys.stderr)
    parser.exit(status, f"{parser.prog}: error: {message}\n")


def _requested(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` when it can be told before parsing: the first argument,
    as the top level has no options that take a value."""
    first = argv[0] if argv else None
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = build_parser(_requested(arguments)).parse_args(arguments)
            return _load(args.command).run(args)
        finally:
            # Inside the try: buffered output meets a closed pipe here, not at interpreter exit
            # (where it would print "Exception ignored ... BrokenPipeError").
            sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _discard_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush of what is still
    buffered for the closed pipe succeeds silently (the Python documentation's recipe for
    SIGPIPE)."""
    # No file descriptor (stdout replaced in-process, as pytest does): nothing to redirect.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
