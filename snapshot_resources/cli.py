"""The ``snapshot-resources`` command: a thin dispatcher over ``snapshot_resources.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

# Subcommand name -> module under snapshot_resources.commands.
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "schema": "schema",
    "snapshots": "snapshots",
    "emulator": "emulator",
    "plan": "plan",
}


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"snapshot_resources.commands.{COMMANDS[name]}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapshot-resources",
        description="Agora Cloud Recording snapshot sessions as Pulumi resources.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        command = _load(name)
        command.add_arguments(sub.add_parser(name, help=command.HELP, description=command.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _load(args.command).run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
