"""The real Pulumi engine, offline: one environment for the engine tests, the demo and benchmarks.

``OfflinePulumi`` gives every run its own ``PULUMI_HOME`` and a ``file://`` backend in a
directory it owns, a passphrase secrets provider, no update check and no plugin download, and the
running interpreter for the dynamic provider. Nothing it starts talks to anything but loopback.

Typical use::

    from snapshot_resources.engine import find_cli
    from snapshot_resources.testing.offline import OfflinePulumi

    cli = find_cli(repo)                                   # None: no CLI (see engine.build_cli)
    with OfflinePulumi(cli, root=tmp_path) as engine:
        stack = engine.stack(engine.project(repo), "test")  # a copy of repo's Pulumi project
        engine.write_config(stack, {"agora:endpoint": emulator.url, ...},
                            {"agora:customerSecret": "..."})
        stack.up(color="never")
        engine.state_text()                                # every byte the backend holds
        stack.destroy(color="never")

On exit it stops any process it started that is still running (a dynamic provider left behind by
an interrupted run; :meth:`OfflinePulumi.live_providers` lists them) and removes its directory
when it made one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from snapshot_resources import engine

if TYPE_CHECKING:
    from pulumi import automation as auto

__all__ = ["OfflinePulumi", "ProviderProcess", "processes_with_home", "stop_processes"]

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
        # Absolute: the CLI runs in the project directory, where a relative path means another.
        self.root = (Path(tempfile.mkdtemp(prefix="pulumi-offline-")) if root is None
                     else root).resolve()
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

    def __exit__(self, *exc_info: object) -> None:
        stop_processes(self.home)
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

    def write_config(
        self,
        stack: auto.Stack,
        config: Mapping[str, Any],
        secrets: Mapping[str, str] | None = None,
    ) -> Path:
        """Write ``stack``'s ``Pulumi.<stack>.yaml`` as a user would: ``config`` as the plain
        ``config:`` mapping (namespaced keys, nested objects as YAML), then each of ``secrets``
        (``"namespace:key.path.to.leaf": value``) with ``pulumi config set --path --secret``, which
        encrypts it with the stack's passphrase. The file's ``encryptionsalt`` is kept. Each
        secret reaches the CLI on its standard input, never its command line (which other users
        of the machine can read in ``/proc``)."""
        project = Path(stack.workspace.work_dir)
        path = project / f"Pulumi.{stack.name}.yaml"
        current = yaml.safe_load(path.read_text()) if path.exists() else None
        document = dict(current or {})
        document["config"] = dict(config)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        for key, value in (secrets or {}).items():
            self.run("config", "set", "--path", "--secret", key, "--stack", stack.name,
                     cwd=project, stdin=value)
        return path

    def run(self, *args: str, cwd: Path, stdin: str | None = None) -> str:
        """Run the CLI itself (``pulumi stack export ...``) in this environment; its stdout.
        Raises ``subprocess.CalledProcessError`` with stderr on failure."""
        import subprocess

        result = subprocess.run(  # noqa: S603 - the CLI we resolved, our own arguments
            [str(self.cli.executable), *args, "--non-interactive"],
            cwd=cwd, env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=600, check=True, input=stdin,
        )
        return result.stdout

    def export(self, stack: auto.Stack, *, attempts: int = 3) -> dict[str, Any]:
        """``pulumi stack export`` of ``stack`` as a user runs it: secrets stay ciphertext. (The
        Automation API's ``export_stack`` adds ``--show-secrets``.)  A read that fails while
        another process (a test's reconciler) writes the stack is tried again, ``attempts`` (int)
        times in all, 0.5 s apart; the last failure raises ``subprocess.CalledProcessError``,
        its ``stderr`` in the message."""
        import subprocess

        for attempt in range(1, attempts + 1):
            try:
                text = self.run("stack", "export", "--stack", stack.name,
                                cwd=Path(stack.workspace.work_dir))
                break
            except subprocess.CalledProcessError as error:
                if attempt == attempts:
                    raise subprocess.CalledProcessError(
                        error.returncode, [*error.cmd, f"(stderr: {error.stderr.strip()[-500:]})"],
                        error.output, error.stderr) from None
                time.sleep(0.5)
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
        return processes_with_home(self.home)


def processes_with_home(home: Path) -> list[ProviderProcess]:
    """Processes whose environment has ``PULUMI_HOME=home`` (this user's, from ``/proc``)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    marker = f"PULUMI_HOME={home}".encode()
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


def stop_processes(home: Path, grace: float = 10.0) -> list[ProviderProcess]:
    """Wait up to ``grace`` seconds for the processes of ``home`` to end (an interrupted CLI
    finishes cancelling), then kill what is left; returns what had to be killed."""
    deadline = time.monotonic() + grace
    while processes_with_home(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_with_home(home)
    for process in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)
    return left
