"""The engine tests skip with one line on a laptop without the Pulumi CLI and without Go, and fail
instead of skipping when ``CI`` is set, so that a green CI run always means the engine ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A plugin for the inner pytest run: no CLI next to the interpreter, on PATH or in the cache.
NO_CLI_PLUGIN = """
import snapshot_resources.engine as engine
engine.find_cli = lambda repo=None: None
"""


def _run_engine_test(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "no_cli_plugin.py").write_text(NO_CLI_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path / "empty-bin")  # neither `pulumi` nor `go`
    env["PYTHONPATH"] = str(tmp_path)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no_cli_plugin", "-p", "no:cacheprovider",
         "tests/engine/test_engine_up.py::test_destroy_leaves_no_task_and_no_process"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_without_cli_and_go_the_engine_tests_skip_saying_how_to_enable_them(
    tmp_path: Path,
) -> None:
    run = _run_engine_test(tmp_path, ci=False)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    skip_lines = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skip_lines) == 1, run.stdout
    assert "make pulumi" in skip_lines[0]


def test_with_ci_set_the_engine_tests_fail_instead_of_skipping(tmp_path: Path) -> None:
    run = _run_engine_test(tmp_path, ci=True)

    assert run.returncode != 0
    assert "skipped" not in run.stdout.splitlines()[-1]
    assert "CI is set: engine tests may not skip" in run.stdout
