"""Which sessions a project declares: the ``SnapshotSession`` resources its program registers.

A session is declared when the program registers it, whatever the program reads: this
repository's ``__main__.py`` makes one per entry of the stack file's ``sessions``; a program
written with the Python API (the README's "From Python") makes them in code, under any parent.
So the reconciler asks the program itself: ``pulumi preview`` runs it and the engine's events
name every resource it registers (``reconcile.worker``, operation ``preview``); the ones of the
session type, by URN, are the declared sessions, keyed by the name part of their URN
(``inventory.urn_name``).

A preview runs the program and the provider's checks (about a second or two), so its answer is
kept until something may have changed it: ``ProgramSessions`` previews again when the project's
files change (``Pulumi.yaml``, ``Pulumi.<stack>.yaml``, any ``*.py`` under the project
directory), and when the controller asks for it (``invalidate``: at every sweep and after a
failed round).  Kept answers are safe: a targeted ``pulumi up`` creates only what the program
registers, so an out-of-date list can make a round fail, never create a session the program no
longer declares.

Two sessions of one name under different parents cannot be told apart by the reconciler, which
names sessions by their resource name: that preview fails with a message naming them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from snapshot_resources.reconcile.inventory import stack_short_name, urn_name
from snapshot_resources.reconcile.stack_ops import StackOperationError

__all__ = ["Invalidatable", "ProgramSessions", "project_fingerprint"]

_SKIPPED_DIRECTORIES: Final = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})
_MAX_FILES: Final = 5_000  # beyond this many files the project is not watched (sweeps still are)


@runtime_checkable
class Invalidatable(Protocol):
    """A source of declared sessions that can be told its answer may be out of date."""

    def invalidate(self) -> None: ...


class ProgramSessions:
    """The sessions the program of ``project_dir`` declares for ``stack`` (module docstring).

    ``preview`` (callable -> sequence of URNs): runs the program and returns the URNs of the
    sessions it registers (``AutomationStackOps.preview``).  ``project_dir`` (Path) and
    ``stack`` (str): whose files are watched.  Calling the instance returns ``{name: urn}``;
    it raises ``StackOperationError`` when the preview fails (``StackBusyError`` when the stack is
    locked) or two sessions share a name.
    """

    def __init__(self, preview: Callable[[], Sequence[str]], project_dir: Path, stack: str
                 ) -> None:
        self._preview = preview
        self._project_dir = project_dir
        self._stack = stack
        self._lock = threading.Lock()
        self._answer: dict[str, str] | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self.previews = 0  # how many previews ran (for tests and the log)

    def invalidate(self) -> None:
        """Preview again at the next call."""
        with self._lock:
            self._answer = None

    def __call__(self) -> dict[str, str]:
        fingerprint = project_fingerprint(self._project_dir, self._stack)
        with self._lock:
            if self._answer is not None and fingerprint is not None \
                    and fingerprint == self._fingerprint:
                return dict(self._answer)
        urns = list(self._preview())
        answer = _by_name(urns)
        with self._lock:
            self.previews += 1
            self._answer, self._fingerprint = answer, fingerprint
        return dict(answer)


def _by_name(urns: Sequence[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for urn in urns:
        found.setdefault(urn_name(urn), []).append(urn)
    twice = {name: sorted(set(u)) for name, u in found.items() if len(set(u)) > 1}
    if twice:
        named = "; ".join(f"{name!r}: {', '.join(urns)}" for name, urns in sorted(twice.items()))
        raise StackOperationError(
            "the program declares sessions of the same name under different parents, which the "
            f"reconciler cannot tell apart (it names sessions by resource name): {named}")
    return {name: urns[0] for name, urns in found.items()}


def project_fingerprint(project_dir: Path, stack: str) -> tuple[tuple[str, int, int], ...] | None:
    """(path, size, mtime in ns) of the files that can change what the program declares:
    ``Pulumi.yaml``, ``Pulumi.<stack>.yaml`` and every ``*.py`` under ``project_dir`` (hidden
    directories, virtual environments and caches skipped).  None when there are more than
    5,000 such files: then only ``invalidate`` makes it preview again."""
    wanted = {"Pulumi.yaml", f"Pulumi.{stack_short_name(stack)}.yaml"}
    found: list[tuple[str, int, int]] = []
    for root, directories, files in os.walk(project_dir):
        directories[:] = sorted(d for d in directories
                                if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES)
        for name in sorted(files):
            if name.endswith(".py") or (name in wanted and root == str(project_dir)):
                path = os.path.join(root, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                found.append((path, stat.st_size, stat.st_mtime_ns))
                if len(found) > _MAX_FILES:
                    return None
    return tuple(found)
