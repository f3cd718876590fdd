"""``snapshot-resources schema``: print, write or check the generated JSON Schemas.

Public API: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int`` (the CLI contract), and
``stale_schemas(directory) -> list[str]`` (names whose committed text differs from the code).

``--write`` regenerates the package's ``schemas/`` (``make schemas``; ``schema_gen.SCHEMA_DIR``,
which the wheel carries); ``--check`` exits 1 when a committed schema has drifted from
``rules.py`` (for CI); with neither, the named schema goes to stdout (e.g. into a user's
repository, for an editor's ``yaml-language-server`` modeline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snapshot_resources import schema_gen

HELP = "Print, write (--write) or check (--check) the JSON Schemas generated from rules.py."

_SHORT = {"stack": schema_gen.STACK_SCHEMA_FILE, "start": schema_gen.START_SCHEMA_FILE}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true",
                        help="write every schema into --dir (default: %(default)s)")
    action.add_argument("--check", action="store_true",
                        help="exit 1 if a schema in --dir differs from the generated one")
    parser.add_argument("--dir", type=Path, default=schema_gen.SCHEMA_DIR, metavar="DIR",
                        help="the schemas directory (default: the package's own, "
                             "snapshot_resources/schemas)")
    parser.add_argument("name", nargs="?", choices=sorted(_SHORT), default="stack",
                        help="schema to print: stack (the config) or start (the wire body)")


def stale_schemas(directory: Path) -> list[str]:
    stale = []
    for name, build in schema_gen.SCHEMAS.items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != schema_gen.render(build()):
            stale.append(name)
    return stale


def run(args: argparse.Namespace) -> int:
    if args.write:
        for path in schema_gen.write_schemas(args.dir):
            print(f"wrote {path}")
        return 0
    if args.check:
        stale = stale_schemas(args.dir)
        for name in stale:
            print(f"{args.dir / name}: differs from the code; run `snapshot-resources schema "
                  "--write`", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(schema_gen.render(schema_gen.SCHEMAS[_SHORT[args.name]]()))
    return 0
