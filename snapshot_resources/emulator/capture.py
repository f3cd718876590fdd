"""The capture worker: drives the backend on the emulated clock and does the slow work.

One scheduler thread asks the backend to advance (``tick``), takes the captures that came due and
hands them to a small pool that draws each JPG and uploads it, then reports the result back
(``capture_done``), which is what NCS event 45 and ``uploadingStatus`` are made from.  Between
rounds it sleeps until the backend's next deadline, converted to real time by the clock's scale,
or until the backend signals new work (a start, a join, a stop).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Final

from snapshot_resources.emulator.models import Backend, CaptureJob, UploadFailure
from snapshot_resources.emulator.testcard import render_jpg
from snapshot_resources.emulator.uploads import SnapshotStore, UploadError

BATCH: Final = 256
IDLE_WAIT: Final = 0.5  # real seconds between checks when nothing is scheduled


class CaptureWorker:
    def __init__(self, backend: Backend, store: SnapshotStore, *, threads: int = 4) -> None:
        self._backend = backend
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="emulator-upload")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._backend.work_ready.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        clock = self._backend.clock
        while not self._stop.is_set():
            deadline = self._backend.tick()
            jobs = self._backend.take_jobs(BATCH)
            if jobs:
                # Wait for the batch so that a backlog stays in the backend (small job records)
                # and never as queued images.
                list(self._pool.map(self.capture, jobs))
                continue
            wait = IDLE_WAIT if deadline is None else \
                min(IDLE_WAIT, max(0.0, (deadline - clock.now()) / clock.time_scale))
            if wait > 0:
                self._backend.work_ready.wait(wait)
                self._backend.work_ready.clear()

    def capture(self, job: CaptureJob) -> None:
        """Draw and upload one snapshot, then tell the backend how it went."""
        failure: UploadFailure | None = None
        data = b""
        try:
            data = render_jpg(cname=job.cname, uid=job.publisher_uid,
                              taken_at=datetime.fromtimestamp(job.taken_at, UTC))
            self._store.put(job.storage, job.key, data)
        except UploadError as error:
            failure = error.failure
            self._store.keep_backup(job.storage, job.key, data)
        except Exception:
            failure = UploadFailure(47, "upload failed: internal error")
        self._backend.capture_done(job, failure)
