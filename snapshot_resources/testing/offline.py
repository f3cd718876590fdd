"""The real Pulumi engine, offline: one environment for the engine tests, the demo and benchmarks.

``OfflinePulumi`` gives every run its own ``PULUMI_HOME`` and a ``file://`` backend in a
directory it owns, a passphrase secrets provider, no update check and no plugin download, and the
running interpreter for the dynamic provider. Nothing it starts talks to anything but loopback.

Typical use::

    from snapshot_resources.engine import find_cli
    from snapshot_resources.testing.offline import OfflinePulumi

    with OfflinePulumi(find_cli(), root=tmp_path) as engine:
        stack = engine.stack(Path("."), "test")          # this repository's Pulumi.yaml
        stack.set_config("agora:endpoint", auto.ConfigValue(emulator.url))
        stack.up(color="never")
        engine.state_text()                               # every byte the backend holds
        stack.destroy(color="never")

On exit it destroys nothing (tests decide that), removes its stacks' locks by ending, and checks
that no dynamic-provider process it started is still alive (:meth:`OfflinePulumi.live_providers`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import yaml

from snapshot_resources import engine

if TYPE_CHECKING:
    from pulumi import automation as auto

__all__ = ["OfflinePulumi", "ProviderProcess"]

_PASSPHRASE_BYTES: Final = 16


class ProviderProcess:
    """A process started for this environment (found by its ``PULUMI_HOME``)."""

    def __init__(self, pid: int, cmdline: str) -> None:
        self.pid = pid
        self.cmdline = cmdline

    def __repr__(self) -> str:
        return f"ProviderProcess(pid={self.pid}, cmdline={self.cmdline!r})"


class OfflinePulumi:
    """A private ``PULUMI_HOME`` + ``file://`` backend + passphrase for one run of the engine.

    ``root`` is where it keeps ``home/``, ``state/`` and ``projects/`` (a fresh temporary
    directory, removed on exit, when not given). ``python`` is the interpreter the engine starts
    for the dynamic provider (default: this one). ``env`` adds variables (e.g. ``AGORA_*``).
    """

    def __init__(
        self,
        cli: engine.PulumiCli,
        *,
        root: Path | None = None,
        python: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cli = cli
        self._owned_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="pulumi-offline-")) if root is None else root
        self.home = self.root / "home"
        self.backend_dir = self.root / "state"
        self.projects_dir = self.root / "projects"
        for directory in (self.home, self.backend_dir, self.projects_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # A fresh passphrase per environment: the state is encrypted with it, never reused.
        self.passphrase = secrets.token_urlsafe(_PASSPHRASE_BYTES)
        self.env: dict[str, str] = {
            **engine.engine_env(cli, python),
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": self.backend_dir.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            **(env or {}),
        }

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> OfflinePulumi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- stacks -------------------------------------------------------------------------------

    def project(self, source: Path, name: str = "project") -> Path:
        """A copy of the project in ``source`` (``Pulumi.yaml`` + ``__main__.py``) under this
        environment, so stack files never land in the source tree."""
        return engine.copy_project(source, self.projects_dir / name)

    def stack(self, project_dir: Path, stack_name: str, *, create: bool = True) -> auto.Stack:
        """The stack ``stack_name`` of the project in ``project_dir``, its ``__main__.py`` run
        inline (see :mod:`snapshot_resources.engine`)."""
        return engine.select_stack(self.cli, project_dir, stack_name, self.env, create=create)

    @staticmethod
    def write_config(
        stack: auto.Stack,
        config: Mapping[str, Any],
        secrets: Mapping[str, str] | None = None,
    ) -> Path:
        """Write ``stack``'s ``Pulumi.<stack>.yaml`` as a user would: ``config`` as the plain
        ``config:`` mapping (namespaced keys, nested objects as YAML), then each of ``secrets``
        (``"namespace:key.path.to.leaf": value``) with ``pulumi config set --path --secret``, which
        encrypts it with the stack's passphrase. The file's ``encryptionsalt`` is kept."""
        from pulumi import automation as auto

        path = Path(stack.workspace.work_dir) / f"Pulumi.{stack.name}.yaml"
        current = yaml.safe_load(path.read_text()) if path.exists() else None
        document = dict(current or {})
        document["config"] = dict(config)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        for key, value in (secrets or {}).items():
            stack.set_config(key, auto.ConfigValue(value, secret=True), path=True)
        return path

    def run(self, *args: str, cwd: Path) -> str:
        """Run the CLI itself (``pulumi stack export ...``) in this environment; its stdout.
        Raises ``subprocess.CalledProcessError`` with stderr on failure."""
        import subprocess

        result = subprocess.run(  # noqa: S603 - the CLI we resolved, our own arguments
            [str(self.cli.executable), *args, "--non-interactive"],
            cwd=cwd, env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=600, check=True,
        )
        return result.stdout

    def export(self, stack: auto.Stack) -> dict[str, Any]:
        """``pulumi stack export`` of ``stack`` as a user runs it: secrets stay ciphertext. (The
        Automation API's ``export_stack`` adds ``--show-secrets``.)"""
        text = self.run("stack", "export", "--stack", stack.name, cwd=Path(stack.workspace.work_dir))
        exported: dict[str, Any] = json.loads(text)
        return exported

    def backend_files(self) -> Iterator[Path]:
        """Every file under the ``file://`` backend (checkpoints, history, backups, locks)."""
        for path in sorted(self.backend_dir.rglob("*")):
            if path.is_file():
                yield path

    def state_text(self, stack: auto.Stack | None = None) -> str:
        """Everything the backend holds, as one text (and ``stack``'s export, when given): what a
        secret must never appear in."""
        parts = [path.read_text(errors="replace") for path in self.backend_files()]
        if stack is not None:
            parts.append(json.dumps(self.export(stack)))
        return "\n".join(parts)

    def resources(self, stack: auto.Stack, type_token: str | None = None) -> list[dict[str, Any]]:
        """The resources in ``stack``'s state (optionally only of ``type_token``)."""
        found = self.export(stack)["deployment"].get("resources") or []
        return [r for r in found if type_token is None or r.get("type") == type_token]

    # -- processes ----------------------------------------------------------------------------

    def live_providers(self) -> list[ProviderProcess]:
        """Processes still running with this environment's ``PULUMI_HOME`` (dynamic providers,
        the CLI), read from ``/proc``; empty where ``/proc`` does not exist."""
        proc = Path("/proc")
        if not proc.is_dir():
            return []
        marker = f"PULUMI_HOME={self.home}".encode()
        found: list[ProviderProcess] = []
        for entry in proc.iterdir():
            if not entry.name.isdecimal() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(ProviderProcess(int(entry.name), cmdline.strip()))
        return found
