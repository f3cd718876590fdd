"""Subcommands of the ``snapshot-resources`` command, one module each.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; the
dispatcher in ``snapshot_resources.cli`` lists them.
"""
