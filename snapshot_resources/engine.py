"""Run the real Pulumi engine on a project's own program, through the Automation API.

Used by ``make demo``, the engine tests (``tests/engine/``), ``benchmarks/engine.py`` and the
offline kit :mod:`snapshot_resources.testing.offline`.

**Inline programs.** Pulumi's Python language host (``pulumi-language-python``) is a Go module of
its own that Pulumi publishes without tags; the Go module proxy this project builds from does not
serve it (measured 2026-11-30: 403 "This module version is not available" for every pseudo-version
tried). So the engine runs the project's ``__main__.py`` as an Automation API *inline* program: the
calling Python process serves Pulumi's LanguageRuntime over gRPC on loopback and the CLI is started
with ``--client=<address>`` (supported since CLI 3.181). The program runs exactly as the language
host's executor runs it (``runpy.run_path(<project dir>, run_name="__main__")``, which puts the
project directory first on ``sys.path``). Only the CLI and the dynamic-provider launcher
``pulumi-resource-pulumi-python`` are needed (docs/engine.md).

One consequence, measured against the CLI: with ``--client`` the engine replaces the project's
``runtime`` by ``client``, so ``runtime.options`` of ``Pulumi.yaml`` (``virtualenv``) do not reach
the dynamic provider, which then runs ``$PULUMI_PYTHON_CMD`` (else ``python3``). Every environment
built here sets ``PULUMI_PYTHON_CMD`` to the interpreter that has this package installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pulumi import automation as auto

BUILD_SCRIPT: Final = Path("tools") / "pulumi-cli" / "build.sh"
"""The Go build of the CLI, relative to a checkout of this repository."""

MIN_CLI_VERSION: Final = (3, 181)
"""``--client`` (inline programs for refresh and destroy too) arrived in Pulumi 3.181."""

PREVIEW_ENV: Final = {"PULUMI_SKIP_CHECKPOINTS": "true"}
"""Variables for a ``pulumi preview`` (never for ``up``, ``refresh`` or ``destroy``). On the
``file://`` backend, Pulumi 3.274 integrity-checks and rewrites the whole checkpoint after every
step even in a preview, so a preview of N sessions costs N x the state's size (measured: 1,000
sessions 48.0 s, 11.8 s with this; docs/engine.md). A preview persists nothing, so skipping its
intermediate checkpoints loses nothing; an ``up`` or ``destroy`` that skipped them would leave a
stale state behind a crash, which is why this is only ever set for previews."""

PROJECT_FILES: Final = ("Pulumi.yaml", "__main__.py")
"""What makes up this repository's Pulumi project (the program imports the installed package)."""


class CliNotFoundError(RuntimeError):
    """No usable Pulumi CLI; the message says how to get one."""


@dataclass(frozen=True)
class PulumiCli:
    """A Pulumi CLI found on this machine.

    ``bin_dir`` holds ``pulumi`` (possibly a symlink; the engine finds the dynamic-provider
    launcher next to the real binary, or on ``PATH``); ``version`` is what ``pulumi version``
    printed, without the ``v``; ``source`` says how it was found: ``"venv"``, ``"PATH"``,
    ``"build cache"``, ``"built"`` or ``"installed"``.
    """

    bin_dir: Path
    version: str
    source: str

    @property
    def executable(self) -> Path:
        return self.bin_dir / "pulumi"

    def command(self, home: Path | None = None) -> auto.PulumiCommand:
        """The Automation API's handle on this CLI (it expects ``<root>/bin/pulumi``). Making it
        runs ``pulumi version``, which writes a log under ``PULUMI_HOME``: ``home`` (default a
        throwaway directory) keeps the user's ``~/.pulumi`` out of it."""
        from pulumi import automation as auto

        with _pulumi_home(home):
            return auto.PulumiCommand(root=str(self.bin_dir.parent))


@contextlib.contextmanager
def _pulumi_home(home: Path | None) -> Iterator[str]:
    """``PULUMI_HOME`` set to ``home`` (or a temporary directory) for the duration: the SDK reads
    it from the process environment when it runs the CLI on its own."""
    with contextlib.ExitStack() as stack:
        path = str(home) if home is not None else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pulumi-home-"))
        saved = os.environ.get("PULUMI_HOME")
        os.environ["PULUMI_HOME"] = path
        try:
            yield path
        finally:
            if saved is None:
                os.environ.pop("PULUMI_HOME", None)
            else:
                os.environ["PULUMI_HOME"] = saved


def cli_version(executable: Path) -> str | None:
    """``pulumi version`` without the leading ``v``, or None when it does not run. It runs with a
    throwaway ``PULUMI_HOME``, so nothing is written under the user's ``~/.pulumi``."""
    with tempfile.TemporaryDirectory(prefix="pulumi-home-") as home:
        try:
            out = subprocess.run(  # noqa: S603 - a path we resolved ourselves
                [str(executable), "version"], capture_output=True, text=True, timeout=60,
                check=True,
                env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_HOME": home},
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    return out.removeprefix("v") or None


def _usable(executable: Path) -> str | None:
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        return None
    version = cli_version(executable)
    if version is None:
        return None
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    return version if numbers >= MIN_CLI_VERSION else None


def find_cli(repo: Path | None = None) -> PulumiCli | None:
    """The first usable Pulumi CLI, in this order: next to the running interpreter (``make pulumi``
    links ``.venv/bin/pulumi``), on ``PATH``, then the cached Go build of ``repo`` (a checkout of
    this repository; the cache is never built here, see :func:`build_cli`). None when there is none.
    """
    candidates: list[tuple[Path, str]] = [(Path(sys.executable).parent / "pulumi", "venv")]
    on_path = shutil.which("pulumi")
    if on_path:
        candidates.append((Path(on_path), "PATH"))
    for executable, source in candidates:
        version = _usable(executable)
        if version is not None:
            return PulumiCli(executable.parent, version, source)
    if repo is not None and (repo / BUILD_SCRIPT).is_file():  # needs neither Go nor a network
        cached = _build(repo, check_only=True)
        if cached is not None:
            return cached
    return None


def build_cli(repo: Path, *, progress: Callable[[str], None] | None = None) -> PulumiCli:
    """Build the CLI from Pulumi's Go modules with ``tools/pulumi-cli/build.sh`` (cached by
    version outside the work tree; a cold build takes minutes). Raises :class:`CliNotFoundError`
    when Go is missing or the build fails."""
    if shutil.which("go") is None:
        raise CliNotFoundError(cli_missing_message())
    built = _build(repo, check_only=False, progress=progress)
    if built is None:
        raise CliNotFoundError(f"the Pulumi CLI build failed ({repo / BUILD_SCRIPT})")
    return built


def _build(
    repo: Path, *, check_only: bool, progress: Callable[[str], None] | None = None
) -> PulumiCli | None:
    env = {**os.environ, "PULUMI_CLI_CHECK_ONLY": "1" if check_only else ""}
    process = subprocess.Popen(  # noqa: S603 - this repository's own script, run by path
        [str(repo / BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    for line in process.stderr:
        if progress is not None:
            progress(line.rstrip())
    out = process.stdout.read().strip().splitlines()
    if process.wait() != 0 or not out:
        return None
    bin_dir = Path(out[-1])
    version = _usable(bin_dir / "pulumi")
    if version is None:
        return None
    return PulumiCli(bin_dir, version, "build cache" if check_only else "built")


def cli_missing_message() -> str:
    """One line on how to get the CLI (used by skips, the demo and errors)."""
    return (
        "no Pulumi CLI (>= {}.{}) next to this Python, on PATH or in the build cache; run "
        "`make pulumi` (builds it from Pulumi's Go modules, needs Go >= 1.26) or install it "
        "(https://www.pulumi.com/docs/install/)".format(*MIN_CLI_VERSION)
    )


def project_program(project_dir: Path) -> Callable[[], None]:
    """An inline program that runs ``project_dir/__main__.py`` as Pulumi's Python executor does:
    ``runpy.run_path`` on the directory, as ``__main__``, with the directory first on ``sys.path``
    for the run (runpy restores it)."""
    directory = str(project_dir.resolve())
    if not (project_dir / "__main__.py").is_file():
        raise FileNotFoundError(f"no __main__.py in {directory}")

    def program() -> None:
        runpy.run_path(directory, run_name="__main__")

    return program


def copy_project(source: Path, destination: Path) -> Path:
    """Copy a project's ``Pulumi.yaml`` and ``__main__.py`` (byte for byte) into ``destination``,
    so stacks and their ``Pulumi.<stack>.yaml`` live outside the source tree."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copyfile(source / name, destination / name)
    return destination


def engine_env(cli: PulumiCli, python: str | None = None) -> dict[str, str]:
    """Variables every engine run here needs, whatever the backend: the CLI's directory first on
    ``PATH`` (the engine also finds the launcher next to the real binary), the interpreter for the
    dynamic provider, and no update check or plugin download (nothing leaves the machine)."""
    return {
        "PATH": os.pathsep.join([str(cli.bin_dir), os.environ.get("PATH", "")]),
        "PULUMI_PYTHON_CMD": python or sys.executable,
        # pkg/cmd/pulumi/pulumi.go: the update check would otherwise ask get.pulumi.com.
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # Bundled plugins are never downloaded; anything else missing fails instead of reaching
        # out (engine/plugins.go). Pulumi's booleans accept only "1" or "true".
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # Not PULUMI_SKIP_CONFIRMATIONS: the CLI takes it as --yes, which --preview-only refuses
        # (preview_refresh, preview_destroy); the Automation API passes --yes where it belongs.
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def select_stack(
    cli: PulumiCli,
    project_dir: Path,
    stack_name: str,
    env: Mapping[str, str],
    *,
    create: bool = True,
) -> auto.Stack:
    """The Automation API stack ``stack_name`` of the project in ``project_dir`` (its own
    ``Pulumi.yaml``), with its ``__main__.py`` as the inline program."""
    from pulumi import automation as auto

    home = env.get("PULUMI_HOME")
    workspace = auto.LocalWorkspace(
        work_dir=str(project_dir),
        program=project_program(project_dir),
        pulumi_command=cli.command(Path(home) if home else None),
        env_vars=dict(env),
    )
    if create:
        return auto.Stack.create_or_select(stack_name, workspace)
    return auto.Stack.select(stack_name, workspace)
