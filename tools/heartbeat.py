"""``python tools/heartbeat.py LABEL COMMAND...``: run COMMAND; while it runs, say so every
``HEARTBEAT_SECONDS`` (60 by default), then how long it took, so that ``make test`` is never
silent for minutes (a cold mypy run takes several on 2 cores).  Exits with COMMAND's status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: heartbeat.py LABEL COMMAND...", file=sys.stderr)
        return 2
    label, command = argv[0], argv[1:]
    interval = float(os.environ.get("HEARTBEAT_SECONDS", "60"))
    started = time.monotonic()
    process = subprocess.Popen(command)  # noqa: S603 - the Makefile's own command
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            print(f"==> {label}: still running ({time.monotonic() - started:.0f} s)", flush=True)

    threading.Thread(target=beat, daemon=True).start()
    try:
        status = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        status = process.wait()
    done.set()
    print(f"==> {label}: {'done' if status == 0 else f'failed ({status})'} in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
