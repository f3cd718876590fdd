"""A state written by this version refreshes and destroys from a freshly created venv.

The provider is pickled by reference (``snapshot_resources.provider.SnapshotSessionProvider``), so
the state holds a module path, not code: any environment where the package is installed can load
it. Here the package comes from a wheel installed into a new venv (not this checkout's editable
install), and the engine starts the dynamic provider with that venv's interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support.engine_stack import REPO, ExampleStack, running_tasks

from snapshot_resources.testing.offline import OfflinePulumi


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A new venv with this package installed from a wheel; its dependencies (pulumi, pydantic
    ...) are reached through a ``.pth`` line to this venv's site-packages, which adds the
    directory but runs none of its ``.pth`` files, so the editable install stays out of sight."""
    root = tmp_path_factory.mktemp("fresh")
    # Built from a copy of the checkout's files (tracked and new, not ignored): a build writes
    # build/ and *.egg-info into its source tree, which must not be this work tree.
    source = root / "source"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        check=True, capture_output=True, timeout=60,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(root / "dist"), str(source)], check=True, timeout=300,
    )
    wheel = next((root / "dist").glob("snapshot_resources-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Each start of this interpreter appends its command line to a log (a .pth "import" line runs
    # at start-up), so the test can see that the engine really used it.
    Path(site, "started.pth").write_text(
        f"import pathlib; pathlib.Path({str(root / 'started.log')!r}).open('a').write("
        "pathlib.Path('/proc/self/cmdline').read_bytes().replace(bytes(1), b' ').decode() + '\\n')\n"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         str(wheel)], check=True, timeout=300,
    )
    return python


def test_the_fresh_venv_imports_the_package_from_its_own_wheel(
    fresh_python: str, tmp_path: Path
) -> None:
    where = subprocess.run(
        [fresh_python, "-c", "import snapshot_resources.provider as p; print(p.__file__)"],
        check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(str(Path(fresh_python).parents[1]))
    assert not where.startswith(str(REPO))


def test_state_written_here_refreshes_and_destroys_from_a_fresh_venv(
    example: ExampleStack, offline: OfflinePulumi, fresh_python: str
) -> None:
    example.publish()
    example.apply()
    assert example.up().ok
    sids = example.sids_in_state()

    offline.env["PULUMI_PYTHON_CMD"] = fresh_python  # the engine starts the provider with it
    stack = offline.stack(example.project_dir, example.stack.name, create=False)
    example.stack = stack
    refresh = example.refresh()

    assert refresh.ok, refresh.terminal
    assert "-m pulumi.dynamic" in (Path(fresh_python).parents[2] / "started.log").read_text()
    assert example.sids_in_state() == sids  # both still running, both still known

    destroy = example.destroy()

    assert destroy.ok, destroy.terminal
    assert example.sessions_in_state() == {}
    assert not {t["sid"] for t in running_tasks(example.agora)} & set(sids.values())
