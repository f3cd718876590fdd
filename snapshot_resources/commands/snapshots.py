"""``snapshot-resources snapshots ls``: list a session's snapshot files, oldest first.

Sources:

* ``--dir DIR``: DIR is a bucket directory (object keys are paths below it).  With ``--bucket B``
  the bucket is ``DIR/B`` instead, which fits the emulator's layout ``<storage_dir>/<bucket>/<key>``.
* ``--s3-endpoint URL --bucket B``: an S3-compatible bucket.  The keys come from the environment
  variables ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` only, never from flags, so they do
  not end up in shell history or in ``ps`` output.

Each file is shown with the fields parsed from its name (S8): time (UTC), publisher uid, failover
index (``bak<n>_``), sid, cname, and the object key, with control and other invisible
characters escaped (``printable``: ``\\x1b`` for ESC); ``--format json`` escapes them as JSON
does.  Files whose names do not follow the rule are skipped and counted on stderr.

Listing a large bucket takes one request per 1,000 keys (and a slow or unreachable endpoint up to
three attempts of 10 s): when stderr is a terminal and the listing has run ``PROGRESS_SECONDS``,
one progress line there says what is being listed and how many keys have come so far, rewritten
in place and cleared before the table.  Nothing is added when stderr is not a terminal (scripts,
CI logs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from snapshot_resources.naming import (
    LocalDirectory,
    S3Bucket,
    SnapshotListing,
    SnapshotName,
    SnapshotSource,
    SnapshotSourceError,
    scan_snapshots,
)

HELP = "List the snapshot files of a session from a local directory or an S3-compatible bucket."

_PROG = "snapshot-resources snapshots ls"

PROGRESS_SECONDS: Final = 2.0
"""How long a listing runs before the first progress line, and how often it is updated."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="snapshots_action", metavar="ACTION", required=True)
    ls = actions.add_parser(
        "ls",
        help="list snapshot files sorted by time, with uid and failover index",
        description=(
            "List snapshot files sorted by time then uid. Use --dir for a local bucket directory "
            "(or, with --bucket, a directory holding buckets, as the emulator writes), or "
            "--s3-endpoint with --bucket for an S3-compatible bucket; the S3 keys are read from "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ),
    )
    source = ls.add_mutually_exclusive_group(required=True)
    source.add_argument("--dir", type=Path, metavar="DIR",
                        help="a bucket directory; with --bucket, the directory holding it")
    source.add_argument("--s3-endpoint", metavar="URL",
                        help="endpoint of an S3-compatible service (needs --bucket)")
    ls.add_argument("--bucket", metavar="BUCKET", help="bucket name")
    ls.add_argument("--region", default="us-east-1",
                    help="region for S3 request signing (default: %(default)s)")
    ls.add_argument("--sid", help="only files of this recording id")
    ls.add_argument("--cname", help="only files of this channel")
    ls.add_argument("--prefix", metavar="A/B",
                    help="only files under this fileNamePrefix (segments joined with '/')")
    ls.add_argument("--format", choices=("table", "json"), default="table",
                    help="output format (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    if args.snapshots_action == "ls":
        return _ls(args)
    raise AssertionError(f"unknown action {args.snapshots_action!r}")  # argparse guarantees it


def _ls(args: argparse.Namespace) -> int:
    try:
        source = _source(args)
        prefix = _prefix(args.prefix)
        with _Progress(source, _describe(args)) as counted:
            listing = scan_snapshots(counted, sid=args.sid, cname=args.cname, prefix=prefix)
    except (SnapshotSourceError, _UsageError) as error:
        print(f"{_PROG}: error: {printable(str(error))}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"snapshots": [n.to_dict() for n in listing.snapshots],
                          "skipped": listing.skipped}, indent=2))
    else:
        _print_table(listing)
    return 0


class _UsageError(Exception):
    pass


def _source(args: argparse.Namespace) -> SnapshotSource:
    if args.dir is not None:
        path: Path = args.dir if args.bucket is None else args.dir / args.bucket
        if not path.is_dir():
            raise _UsageError(f"directory not found: {str(path)!r}")
        return LocalDirectory(path)
    if not args.bucket:
        raise _UsageError("--s3-endpoint needs --bucket")
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key:
        raise _UsageError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment "
                          "(keys are never taken from flags)")
    return S3Bucket(args.bucket, args.s3_endpoint, access_key, secret_key, args.region)


def _describe(args: argparse.Namespace) -> str:
    """What is listed, for the progress line (no credentials: they are not in ``args``)."""
    if args.dir is not None:
        return f"directory {str(args.dir if args.bucket is None else args.dir / args.bucket)!r}"
    return f"s3 bucket {args.bucket!r}"


class _Progress:
    """A ``SnapshotSource`` that counts the keys it passes on and, while its ``with`` block runs
    and stderr is a terminal, rewrites one line on stderr every ``PROGRESS_SECONDS``.  A thread
    writes it, so the line also comes while a request is still waiting for its first page."""

    def __init__(self, source: SnapshotSource, what: str) -> None:
        self._source, self._what = source, what
        self.count = 0
        self._done = threading.Event()
        self._shown = 0  # length of the line on screen, to clear it
        self._thread: threading.Thread | None = None

    def keys(self, prefix: Sequence[str] = ()) -> Iterable[str]:
        return self._counted(self._source.keys(prefix))

    def _counted(self, keys: Iterable[str]) -> Iterator[str]:
        for key in keys:
            self.count += 1
            yield key

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            self._thread = threading.Thread(target=self._report, name="ls-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            if self._shown:
                sys.stderr.write("\r" + " " * self._shown + "\r")
                sys.stderr.flush()

    def _report(self) -> None:
        while not self._done.wait(PROGRESS_SECONDS):
            line = f"{_PROG}: listing {self._what}: {self.count} keys so far"
            sys.stderr.write("\r" + line.ljust(self._shown))
            sys.stderr.flush()
            self._shown = max(self._shown, len(line))


def _prefix(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    segments = tuple(text.strip("/").split("/"))
    if any(not s for s in segments):
        raise _UsageError(f"--prefix {text!r} has an empty segment")
    return segments


_COLUMNS = ("TIME (UTC)", "UID", "FAILOVER", "SID", "CNAME", "KEY")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every character of Unicode's "other" categories
    (controls such as ESC, BEL, CR and LF; format characters such as the right-to-left
    override; surrogates) and the line and paragraph separators written as a Python escape
    (``\\x1b``, ``\\u202e``), and a backslash doubled, so that an escape in the output always
    stands for one character of the name.  Object keys and channel names come from whoever wrote
    to the bucket: printed raw, they could move the cursor, rewrite earlier lines or split a
    table row."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def _row(name: SnapshotName) -> tuple[str, ...]:
    return tuple(printable(cell) for cell in (
        name.taken_at.strftime("%Y-%m-%d %H:%M:%S.") + f"{name.taken_at.microsecond // 1000:03d}",
        name.uid,
        "-" if name.failover_index is None else str(name.failover_index),
        name.sid,
        name.cname,
        name.key,
    ))


def _print_table(listing: SnapshotListing) -> None:
    rows = [_COLUMNS, *(_row(n) for n in listing.snapshots)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        # The key is last and not padded, so lines carry no trailing blanks.
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=True))
              + "  " + row[-1])
    note = f"{len(listing.snapshots)} snapshot file(s)"
    if listing.skipped:
        note += f"; {listing.skipped} other file(s) skipped (names not in Agora's snapshot format)"
    print(note, file=sys.stderr)
