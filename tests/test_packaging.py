"""Honest packaging (issue 25): the metadata claims only what was tested, declares what the code
imports, ships its license and schemas, keeps the dev tools out of the published extras, and the
emulator without its extra says so at start."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any, Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from snapshot_resources import schema_gen
from snapshot_resources.emulator import server

REPO: Final = Path(__file__).resolve().parent.parent
PYPROJECT: Final[dict[str, Any]] = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT: Final = PYPROJECT["project"]
BIN: Final = Path(sys.executable).parent


def locked() -> dict[str, Version]:
    """Every pin of requirements-lock.txt."""
    pins: dict[str, Version] = {}
    for line in (REPO / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins[canonicalize_name(name)] = Version(rest.split()[0])
    return pins


def declared() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the dependencies, every extra and the dev group."""
    found = [("dependencies", Requirement(r)) for r in PROJECT["dependencies"]]
    for extra, requirements in PROJECT["optional-dependencies"].items():
        found += [(f"extra {extra}", Requirement(r)) for r in requirements]
    found += [("group dev", Requirement(r)) for r in PYPROJECT["dependency-groups"]["dev"]]
    return [(where, r) for where, r in found if canonicalize_name(r.name) != PROJECT["name"]]


@pytest.mark.parametrize(("where", "requirement"), declared(), ids=lambda v: str(v))
def test_every_floor_is_the_version_the_suite_runs_with(
    where: str, requirement: Requirement
) -> None:
    # The issue: at the floors the metadata allowed (urllib3 1.26, Pillow 10) 45 tests failed.
    # Every floor is now the locked version, so the lowest version a user can get was tested.
    pins = locked()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement} ({where}) is not in requirements-lock.txt: make lock"
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    if not floors:
        assert name.startswith("types-"), f"{requirement} ({where}) has no floor"
        return
    assert floors == [pins[name]], (
        f"{requirement} ({where}): the suite runs with {pins[name]}; raise the floor with the "
        "lock (make lock), or run the suite at the floor")
    assert pins[name] in requirement.specifier


def test_the_dev_tools_are_a_dependency_group_not_a_published_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    assert "test" not in extras
    tools = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependency-groups"]["dev"]}
    assert {"mypy", "ruff", "deptry", "hypothesis", "pytest-xdist"} <= tools
    published = {canonicalize_name(Requirement(r).name) for rs in extras.values() for r in rs}
    assert not {"mypy", "ruff", "deptry", "hypothesis", "pytest-xdist"} & published


def test_deptry_finds_every_import_declared() -> None:
    result = subprocess.run([str(BIN / "deptry"), "."], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deptry_catches_an_undeclared_import(tmp_path: Path) -> None:
    # The reproducer: urllib3 was imported (NameResolutionError, 2.x only) but not declared.
    shutil.copytree(REPO / "snapshot_resources", tmp_path / "snapshot_resources",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = (REPO / "pyproject.toml").read_text()
    assert '    "urllib3>=' in text
    (tmp_path / "pyproject.toml").write_text(
        "\n".join(line for line in text.splitlines() if '"urllib3>=' not in line))
    result = subprocess.run([str(BIN / "deptry"), "."], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "'urllib3' imported but it is a transitive dependency" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--quiet", "-w", str(out), str(REPO)],
                   check=True, timeout=300, capture_output=True)
    (built,) = out.glob("snapshot_resources-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_the_license_and_the_schemas(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    licenses = [n for n in names if n.endswith("/licenses/LICENSE")]
    assert len(licenses) == 1, names
    text = wheel.read(licenses[0]).decode()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert text == (REPO / "LICENSE").read_text()
    for schema in schema_gen.SCHEMAS:
        assert wheel.read(f"snapshot_resources/schemas/{schema}").decode() == (
            schema_gen.SCHEMA_DIR / schema).read_text()


def test_the_wheel_metadata_publishes_no_dev_tools(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(wheel.read(metadata_name))
    assert metadata["License-Expression"] == "Apache-2.0"
    assert set(metadata.get_all("Provides-Extra") or []) == set(PROJECT["optional-dependencies"])
    requires = " ".join(metadata.get_all("Requires-Dist") or [])
    for tool in ("mypy", "ruff", "deptry", "hypothesis"):
        assert tool not in requires
    assert "urllib3>=" in requires


# --------------------------------------------------------------------------------------------------
# The emulator without its extra


def test_the_emulator_extra_names_what_the_emulator_imports() -> None:
    extra = {canonicalize_name(Requirement(r).name)
             for r in PROJECT["optional-dependencies"][server.EXTRA]}
    assert {canonicalize_name(d) for d in server.EXTRA_MODULES.values()} <= extra


@pytest.mark.parametrize("blocked", sorted(server.EXTRA_MODULES))
def test_the_emulator_without_its_extra_fails_at_start_naming_it(blocked: str) -> None:
    # The reproducer: without Pillow the emulator started and never captured (the walkthrough
    # looped at status 4, ModuleNotFoundError in its log).
    program = (f"import sys; sys.modules[{blocked!r}] = None\n"
               "from snapshot_resources import cli\n"
               "sys.exit(cli.main(['emulator', '--port', '0']))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "listening on" not in result.stdout
    message = result.stderr.strip()
    assert message.startswith("snapshot-resources emulator: the emulator needs ")
    assert server.EXTRA_MODULES[blocked] in message.split(", which")[0]  # (boto3 needs botocore)
    assert message.endswith("not installed: add the extra, pip install "
                            "'snapshot-resources[emulator]'")


def test_run_emulator_raises_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from snapshot_resources.testing.emulator import run_emulator

    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(server.EmulatorExtraError, match=r"pip install 'snapshot-resources\["
                                                        r"emulator\]'"), run_emulator():
        pass


# --------------------------------------------------------------------------------------------------
# make test says what runs during long steps


def test_a_test_running_longer_than_the_bound_is_named_while_it_runs() -> None:
    # tests/support/long_probe.py is no test file of the suite (its name is not test_*.py): it
    # runs only when named, here.
    probe = "tests/support/long_probe.py::test_sleeps"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", probe],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PROBE_SLEEP": "3", "LONG_TEST_SECONDS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"... still running after 1 s: {probe}" in result.stdout, result.stdout


def test_heartbeat_says_a_long_command_still_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "heartbeat.py"), "a nap", "sleep", "2.5"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "HEARTBEAT_SECONDS": "1"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == ["==> a nap: still running (1 s)", "==> a nap: still running (2 s)"]
    assert lines[-1].startswith("==> a nap: done in ")
    failed = subprocess.run([sys.executable, str(REPO / "tools" / "heartbeat.py"), "f", "false"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 1
    assert failed.stdout.strip().startswith("==> f: failed (1) in ")
