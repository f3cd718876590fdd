"""The capture worker: drives the backend on the emulated clock and does the slow work.

One scheduler thread asks the backend to advance (``tick``), takes the captures that came due and
hands them to a small pool that draws each JPG and uploads it, then reports the result back
(``capture_done``), which is what NCS event 45 and ``uploadingStatus`` are made from.  Between
rounds it sleeps until the backend's next deadline, converted to real time by the clock's scale,
or until the backend signals new work (a start, a join, a stop).

Nothing one task does can stop the worker: an unexpected exception while drawing or uploading one
snapshot is logged and counted (``captureErrors``) and reported as upload failure 47 (S12); one
anywhere else in a round (``workerErrors``) is logged and counted, and the next round comes after
``IDLE_WAIT``, so an error that repeats cannot spin a core either.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Final

from snapshot_resources.emulator.models import Backend, CaptureJob, UploadFailure
from snapshot_resources.emulator.testcard import render_jpg
from snapshot_resources.emulator.uploads import UPLOAD_FAILED, SnapshotStore, UploadError

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
        while not self._stop.is_set():
            try:
                wait = self._round()
            except Exception as error:
                self._backend.record_error("workerErrors", "a capture round", error)
                wait = IDLE_WAIT
            if wait > 0:
                self._backend.work_ready.wait(wait)
                self._backend.work_ready.clear()

    def _round(self) -> float:
        """Advance, capture what came due; return the real seconds to wait before the next."""
        clock = self._backend.clock
        deadline = self._backend.tick()
        jobs = self._backend.take_jobs(BATCH)
        if jobs:
            # Wait for the batch so that a backlog stays in the backend (small job records)
            # and never as queued images.
            list(self._pool.map(self.capture, jobs))
            return 0.0
        if deadline is None or not math.isfinite(deadline):
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.0, (deadline - clock.now()) / clock.time_scale))

    def capture(self, job: CaptureJob) -> None:
        """Draw and upload one snapshot, then tell the backend how it went.  Never raises."""
        try:
            failure = self._upload(job)
        except Exception as error:
            self._backend.record_error("captureErrors", f"a capture of task {job.sid}", error)
            failure = UploadFailure(UPLOAD_FAILED, "upload failed: internal error")
        try:
            self._backend.capture_done(job, failure)
        except Exception as error:
            self._backend.record_error("workerErrors", f"reporting a capture of task {job.sid}",
                                       error)

    def _upload(self, job: CaptureJob) -> UploadFailure | None:
        data = render_jpg(cname=job.cname, uid=job.publisher_uid,
                          taken_at=datetime.fromtimestamp(job.taken_at, UTC))
        try:
            self._store.put(job.storage, job.key, data)
        except UploadError as error:
            self._store.keep_backup(job.storage, job.key, data)
            return error.failure
        return None
