"""One engine operation in a process group of its own, as a CI job or a terminal runs
``pulumi up``: ``python tests/support/engine_run.py REQUEST``.

REQUEST (JSON): ``operation`` (``up``, ``destroy`` or ``refresh``), ``cli`` (the directory holding
``pulumi``), ``cwd`` (the project directory), ``stack``, ``env`` (variables for the CLI), ``log``
(a file that gets the CLI's output). The exit status is 0 when the operation succeeded, 1 when it
failed. The interruption tests kill this process, its CLI, or both, at their worst moment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    from pulumi import automation as auto

    from snapshot_resources import engine

    request = json.loads(Path(sys.argv[1]).read_text())
    cli = engine.PulumiCli(Path(request["cli"]), "", "test")
    env = {str(k): str(v) for k, v in request["env"].items()}
    with Path(request["log"]).open("w", buffering=1) as log:
        stack = engine.select_stack(cli, Path(request["cwd"]), request["stack"], env,
                                    create=False)
        try:
            getattr(stack, request["operation"])(
                color="never", on_output=lambda line: log.write(line + "\n"))
        except auto.errors.CommandError as error:
            log.write(f"FAILED: {error}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
