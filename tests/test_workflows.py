"""The GitHub workflow examples (issue 25): current action majors (Node 24), the Pulumi CLI pinned
to the version this project is tested with, no file the user's repository does not have, and the
review steps run as written in a project of another name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

REPO: Final = Path(__file__).resolve().parent.parent
WORKFLOWS: Final = sorted((REPO / "examples" / "github").glob("*.yml"))
# Majors whose action.yml runs on Node 24 (GitHub removes Node 20 from its runners in 2026).
CURRENT: Final = {"actions/checkout": "v6", "actions/setup-python": "v6", "pulumi/actions": "v7"}


def cli_version() -> str:
    """The Pulumi CLI version this project builds and tests with, declared once in go.mod."""
    go_mod = (REPO / "tools" / "pulumi-cli" / "go.mod").read_text()
    match = re.search(r"github\.com/pulumi/pulumi/pkg/v3 v(\S+)", go_mod)
    assert match is not None
    return match.group(1)


def steps(path: Path) -> list[dict[str, Any]]:
    workflow = yaml.safe_load(path.read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_current_majors_and_the_cli_is_pinned(path: Path) -> None:
    used = [step for step in steps(path) if "uses" in step]
    assert used
    for step in used:
        action, _, version = step["uses"].partition("@")
        assert CURRENT.get(action) == version, step["uses"]
        if action == "pulumi/actions":
            assert str(step["with"]["pulumi-version"]) == cli_version()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_step_needs_a_file_the_users_repository_lacks(path: Path) -> None:
    text = path.read_text()
    assert "requirements.txt" not in text
    installs = [step["run"] for step in steps(path) if "pip install" in step.get("run", "")]
    assert installs == ['python -m venv .venv && .venv/bin/pip install '
                        '"${{ vars.SNAPSHOT_RESOURCES }}"']
    assert "SNAPSHOT_RESOURCES" in text.split("name:", 1)[0]  # the header says how to set it


def test_the_review_steps_run_as_written(tmp_path: Path) -> None:
    """validate and plan, in a project named media-infra whose stack file is the example, on a
    pull request whose base branch has no stack file yet (a new stack: everything is created)."""
    project = tmp_path / "media-infra"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: media-infra\nruntime: python\n")
    (project / "Pulumi.prod.yaml").write_text((REPO / "Pulumi.example.yaml").read_text())
    (project / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    review = {step.get("name"): step["run"] for step in steps(
        REPO / "examples" / "github" / "pull-request.yml") if "run" in step}
    script = "set -euo pipefail\n" + review["validate"] + "\n" + review["plan"]
    script = script.replace("${{ github.base_ref }}", "main")
    result = subprocess.run(["bash", "-c", script], cwd=project, capture_output=True, text=True,
                            timeout=120, check=False, env={**os.environ, "STACK": "prod"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Pulumi.prod.yaml: 2 sessions, 1 storage target: ok"
    assert lines[-1] == "Plan: 3 to create, 0 to update in place, 0 to replace, 0 to delete " \
                        "(0 unchanged)."


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_preview_skips_intermediate_checkpoints_and_nothing_else_does(path: Path) -> None:
    """The variables the product sets for previews (engine.PREVIEW_ENV), and for previews only:
    for `up` or `destroy` they would risk the state."""
    from snapshot_resources.engine import PREVIEW_ENV

    for step in steps(path):
        if not str(step.get("uses", "")).startswith("pulumi/actions"):
            continue
        env = {str(k): str(v) for k, v in (step.get("env") or {}).items()}
        if step["with"]["command"] == "preview":
            assert PREVIEW_ENV.items() <= env.items()
        else:
            assert not PREVIEW_ENV.keys() & env.keys()
