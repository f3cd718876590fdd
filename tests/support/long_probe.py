"""A test that runs as long as ``PROBE_SLEEP`` says, for the test of the suite's long-test
report (``tests/test_packaging.py``); not collected by the suite (no ``test_`` file name)."""

from __future__ import annotations

import os
import time


def test_sleeps() -> None:
    time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
