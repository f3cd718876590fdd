"""The provider process's pool widening (``provider_process._widen_pool``): calls the server took
before the widening ran get threads too (a destroy's deletes arrive together, and the first of
them is what imports the provider module)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from snapshot_resources import provider_process


def test_calls_queued_before_the_widening_run_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(provider_process.WORKERS, "16")
    pool = ThreadPoolExecutor(max_workers=4)  # the SDK's pool
    calls = 12
    together = threading.Barrier(calls, timeout=10)

    def call() -> None:
        together.wait()  # breaks (BrokenBarrierError) unless all 12 run at once

    try:
        futures = [pool.submit(call) for _ in range(calls)]  # 4 run, 8 wait in the queue
        assert provider_process._widen_pool(SimpleNamespace(thread_pool=pool)) == "workers=16"
        for future in futures:
            future.result(timeout=15)
    finally:
        pool.shutdown(wait=True)


def test_a_pool_of_another_shape_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert provider_process._widen_pool(SimpleNamespace(thread_pool=object())) is None
    assert "serves 4 calls at once" in capsys.readouterr().err
