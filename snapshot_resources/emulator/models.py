"""The emulator's backend: a plain state machine of resources, tasks and channels.

Like a moto backend it knows nothing of HTTP.  The HTTP layer calls ``acquire``, ``start``,
``query``, ``update`` and ``stop`` with decoded bodies and serializes what comes back; errors are
``EmulatorError`` subclasses carrying Agora's status and code.  Time comes from an injected
``Clock``; nothing here sleeps except ``stop``, which waits for in-flight uploads as a synchronous
stop does (S6).

One lock guards all state.  Work that takes time (drawing and uploading a JPG, posting a webhook)
never runs under it: ``_advance`` queues ``CaptureJob``s that the capture worker takes, and events
go to a notifier that only enqueues.

Lifecycle of a task (S3, S4, S6, S7, S8, S12), all on the emulated clock:

* start -> status 1, 2, 3 during ``READY_SECONDS``, then 4 ("all components ready", NCS 40), then 5
  once the first snapshot is uploaded (S4, S12).
* every subscribed uid that publishes video gets a series: one capture at once, then one every
  ``captureInterval`` (S3, S8); a publisher who stops sending video pauses its series (S8, NCS 44).
* failover: query/update/stop answer 404 for ``failover_seconds``, then NCS 12 and the files carry
  ``bak<n>_`` (S7 FAQ, S8, S12).
* exit (stop, or no users for ``maxIdleTime``): NCS 41, status 6, 7, 8 over ``exit_seconds`` while
  stop answers 49 (S7), then NCS 11 and the task is gone: 404 "failed to find worker" (S4-S7).
* RTC token expiry: Cloud Recording cannot renew a token, so the task leaves the channel when the
  token given to start expires (S3).  The expiry is read from an AccessToken2 (``007...``; the
  smaller of the token's and the join privilege's expiry, ``agora.token.token_expires_at``);
  other tokens, or none, never expire here.  At that moment (emulated clock) the emulator sends
  NCS 1 ``cloud_recording_error`` with ``errorCode`` 109 "token expired" (S18) and
  ``errorLevel`` 5, then 41 with ``leaveCode`` 0 (no documented bit names this cause, S12) and
  exits as above.  Which events Agora sends on a token expiry is UNCONFIRMED; this is the
  emulator's reading, and ``snapshot-resources reconcile`` does not depend on the codes.
  ``token_lifetime`` (tests, ``--token-lifetime``): a task started with a token leaves at most
  that many emulated seconds after its start, whatever the token says, so that expiry and
  rotation can be tested on a fast clock with the provider's 24-hour tokens.

RTC channel events (productId 1: 101 create, 102 destroy, 103 broadcaster join, 104 broadcaster
leave) go to the same notifier when ``channel_events`` is on; ``channel_events.py`` describes them.

The recorder's uid taken by a user.  The recorder's uid must not duplicate any uid in the channel
(S2 acquire).  Users who broke that rule report this symptom: start succeeds, query stays at
status 4, nothing is captured, and stop answers 206 code 435 "no recorded data" (S7).  The
emulator's reading of it: while a user in the channel holds the task's uid (the user joined with
it, or was there when the task started), the task captures nothing; its other behaviour (status,
idle timer, stop) is unchanged, and when that user leaves, capturing resumes.  The admin task
description says so in ``recorderUidTaken``.  Nothing is refused: Agora answered acquire and start
with 200 in those reports.

One bad task never takes the service down: an exception while advancing a task is logged (type
and place only: a message could hold a key), counted in ``taskErrors`` and shown in the task's
``fault``; that task captures nothing more, and if it fails again it is dropped.  Every other task,
and every request, carries on.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from snapshot_resources.agora.token import token_expires_at
from snapshot_resources.emulator import channel_events, validation
from snapshot_resources.emulator.clock import Clock
from snapshot_resources.emulator.errors import (
    EmulatorError,
    ServiceError,
    describe_exception,
    invalid_parameter,
    worker_not_found,
)
from snapshot_resources.emulator.resource_ids import ResourceIdCodec, ResourceToken
from snapshot_resources.emulator.validation import StartRequest, StorageConfig, Subscription
from snapshot_resources.events import (
    TOKEN_EXPIRED_ERROR_CODE,
    ChannelEvent,
    LeaveCode,
    RecordingEvent,
    build_event,
)
from snapshot_resources.naming import format_snapshot_name
from snapshot_resources.rules import is_ascii_digits

RESOURCE_ID_SECONDS: Final = 300.0  # a resource id is valid for five minutes (S1, S2, S3, S23)
READY_SECONDS: Final = 2.0  # emulated start-up before status 4; S10 asks for a query after ~5 s
STATUS_STEPS: Final = ((0.5, 1), (1.0, 2), (READY_SECONDS, 3))  # status 1, 2, 3 (S4)
FAILOVER_SECONDS: Final = 30.0  # "a killed process is replaced within 30 s" (S7 FAQ, S18)
EXIT_SECONDS: Final = 6.0  # status 6, 7, 8 each a third of it, then gone (S4, S7)
STOP_UPLOAD_WAIT: Final = 20.0  # a synchronous stop waits about 20 s for uploads (S6)
HISTORY: Final = 256  # finished tasks kept for the admin API; bounded so memory stays flat
RECENT_EVENTS: Final = 2000

_VIDEO_STATE: Final = RecordingEvent.RECORDER_VIDEO_STREAM_STATE_CHANGED
# The serviceType of each NCS event type the emulator sends (S12, docs/agora-api.md 7.2).
_SERVICE_TYPE: Final = {RecordingEvent.CLOUD_RECORDING_ERROR: 0, RecordingEvent.SESSION_EXIT: 0,
                        RecordingEvent.SESSION_FAILOVER: 0, RecordingEvent.RECORDER_STARTED: 1,
                        RecordingEvent.RECORDER_LEAVE: 1,
                        _VIDEO_STATE: 1,
                        RecordingEvent.RECORDER_SNAPSHOT_FILE: 1}
LEAVE_TOKEN_EXPIRED: Final = 0  # no leaveCode bit names it (S12): the module docstring's reading

Notifier = Callable[[dict[str, Any]], None]
_log = logging.getLogger(__name__)


@dataclass
class User:
    """A user the admin API put in a channel.  Every such user is a host (broadcaster), so a
    channel with users is never idle (S3, S19)."""

    uid: str
    video: bool
    audio: bool


@dataclass
class Channel:
    app_id: str
    cname: str
    users: dict[str, User] = field(default_factory=dict)
    empty_since: float | None = None


@dataclass
class Resource:
    resource_id: str
    token: ResourceToken
    start_parameter: Mapping[str, Any] | None
    expired_hours: int
    sid: str | None = None  # set by start: one resource id, one session (S1, S2)


@dataclass
class Task:
    sid: str
    resource_id: str
    app_id: str
    cname: str
    uid: str
    request: StartRequest
    subscription: Subscription
    storage: StorageConfig
    started_at: float
    calls_until: float  # query/update/stop callable until then (resourceExpiredHour, S2)
    phase: str = "running"  # running | failover | exiting
    announced: bool = False  # NCS 40 sent
    failovers: int = 0
    back_at: float = 0.0
    exit_at: float = 0.0
    exit_status: int = 0
    series: dict[str, float] = field(default_factory=dict)  # publisher uid -> next capture time
    captures: int = 0
    files: int = 0
    upload_failures: int = 0
    inflight: int = 0
    first_upload_at: float | None = None
    sequence: int = 0
    reported_errors: set[int] = field(default_factory=set)
    fault: str | None = None  # an internal error stopped its captures (module docstring)
    token_expires_at: float | None = None  # Unix seconds; None: no readable expiry (docstring)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.app_id, self.cname, self.uid)

    def ready_at(self) -> float:
        return self.started_at + READY_SECONDS


@dataclass(frozen=True)
class CaptureJob:
    """One snapshot to draw and upload, outside the backend lock."""

    sid: str
    app_id: str
    cname: str
    publisher_uid: str
    taken_at: float  # emulated Unix seconds: the scheduled time, so series are exact (S8)
    key: str  # the object key, named by the rule of S8
    storage: StorageConfig


@dataclass(frozen=True)
class UploadFailure:
    """Why an upload failed, without any secret: an NCS uploader error code (S12)."""

    code: int  # 32 storage configuration error, 47 upload failed (S12)
    message: str


class Backend:
    """Resources, tasks and channels of one emulated Cloud Recording service."""

    def __init__(
        self,
        *,
        clock: Clock,
        app_ids: Iterable[str],
        max_tasks: int = 50,
        failover_seconds: float = FAILOVER_SECONDS,
        exit_seconds: float = EXIT_SECONDS,
        notifier: Notifier | None = None,
        channel_events: bool = False,
        token_lifetime: float | None = None,
    ) -> None:
        self.clock = clock
        self.channel_events = channel_events
        self.token_lifetime = None if token_lifetime is None \
            else _seconds(token_lifetime, "token_lifetime")
        self._client_seq = 0
        self.app_ids = frozenset(app_ids)
        self.max_tasks = max_tasks
        self.failover_seconds = failover_seconds
        self.exit_seconds = exit_seconds
        self._notifier = notifier
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.work_ready = threading.Event()  # set when jobs or deadlines change
        self._codec = ResourceIdCodec()
        self._resources: dict[str, Resource] = {}
        self._tasks: dict[str, Task] = {}
        self._by_key: dict[tuple[str, str, str], str] = {}
        self._channels: dict[tuple[str, str], Channel] = {}
        self._jobs: deque[CaptureJob] = deque()
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self.counters: dict[str, int] = dict.fromkeys(
            ("tasksStarted", "tasksStopped", "tasksExited", "idleExits", "failovers",
             "captures", "uploads", "uploadFailures", "events", "tokenExpiries", "channelEvents",
             # Internal errors, by where they happened (module docstring, capture.py).
             "taskErrors", "captureErrors", "workerErrors"), 0)

    # ----------------------------------------------------------------------------------------------
    # The REST operations (S2-S7)

    def acquire(self, app_id: str, body: object) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            self._check_app(app_id)
            request = validation.check_acquire(body)
            reserved = sum(1 for r in self._resources.values()
                           if r.sid is None and r.token.app_id == app_id)
            live = sum(1 for t in self._tasks.values() if t.app_id == app_id)
            if live + reserved >= self.max_tasks:
                # PCW quota, 50 per App ID (S10, W3): 400 code 406 on acquire (S7).
                raise ServiceError(400, 406, "vendor_over_load")
            token = ResourceToken(app_id, request.cname, request.uid, now)
            resource_id = self._codec.issue(token)
            self._resources[resource_id] = Resource(resource_id, token, request.start_parameter,
                                                    request.resource_expired_hour)
            return {"cname": request.cname, "uid": request.uid, "resourceId": resource_id}

    def start(self, app_id: str, resource_id: str, mode: str, body: object) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            token = self._token(app_id, resource_id)
            resource = self._resources.get(resource_id)
            if resource is not None and resource.sid is not None:
                # A repeated start with the same resource id (S7, S18).
                raise ServiceError(201, 7, "already started")
            if resource is None or now - token.issued_at > RESOURCE_ID_SECONDS:
                raise ServiceError(400, 433, "resource ID has expired (valid for 5 minutes "
                                   "after acquire), call acquire again (S2, S18)")
            request = validation.check_start(mode, body)
            if (request.cname, request.uid) != (token.cname, token.uid):
                raise ServiceError(400, 432, "cname and uid must be the ones sent to acquire "
                                   "for this resource ID (S3, S18)")
            if resource.start_parameter is not None \
                    and resource.start_parameter != request.client_request:
                raise invalid_parameter("clientRequest: differs from the startParameter sent "
                                        "to acquire; they must be identical (S2, S3)")
            key = (app_id, request.cname, request.uid)
            if key in self._by_key:
                raise ServiceError(400, 53, "task conflict: a task with this cname and uid "
                                   "already exists (S7)")
            sid = uuid.uuid4().hex
            resource.sid = sid
            task = self._begin_task(app_id, resource_id, sid, request, resource.expired_hours, now)
            return {"cname": task.cname, "uid": task.uid, "resourceId": resource_id, "sid": sid}

    def restore_task(self, app_id: str, resource_id: str, sid: str, body: object, *,
                     resource_expired_hour: int = 720) -> dict[str, Any]:
        """Take over a running task with the ids another server gave it, as if this service had
        kept it: ``body`` is the start body it was started with (``cname``, ``uid``,
        ``clientRequest``), checked as start checks it. From now on query, update and stop of
        ``resource_id`` and ``sid`` reach it. For a state written against an earlier emulator
        (tests/engine/test_engine_state_upgrade.py); ``ValueError`` when the sid or the channel and
        uid are already taken here."""
        with self._lock:
            now = self._advance()
            if app_id not in self.app_ids:
                raise ValueError(f"appId: not an App ID of this emulator: {app_id!r}")
            if not (isinstance(resource_id, str) and resource_id
                    and isinstance(sid, str) and sid):
                raise ValueError("resourceId and sid: non-empty strings")
            try:
                request = validation.check_start("individual", body)
            except EmulatorError as error:  # the admin API's 400, with start's reason
                raise ValueError(f"not a valid start body: {error}") from None
            key = (app_id, request.cname, request.uid)
            if sid in self._tasks or key in self._by_key:
                raise ValueError(f"sid {sid} or channel {request.cname!r} uid {request.uid} "
                                 "already has a task here")
            self._codec.restore(resource_id, ResourceToken(app_id, request.cname, request.uid,
                                                           now))
            self._resources[resource_id] = Resource(resource_id, self._codec.parse(resource_id),
                                                    None, resource_expired_hour, sid=sid)
            task = self._begin_task(app_id, resource_id, sid, request, resource_expired_hour,
                                    now)
            return self._describe(task, now)

    def _begin_task(self, app_id: str, resource_id: str, sid: str, request: StartRequest,
                    expired_hours: float, now: float) -> Task:
        """A running task under ``sid`` (a start, or a restored task), its channel and timers;
        called with the lock held."""
        task = Task(sid=sid, resource_id=resource_id, app_id=app_id, cname=request.cname,
                    uid=request.uid, request=request, subscription=request.subscription,
                    storage=request.storage, started_at=now,
                    calls_until=now + expired_hours * 3600.0,
                    token_expires_at=_token_expiry(request.client_request.get("token"), now,
                                                   self.token_lifetime))
        self._tasks[sid] = task
        self._by_key[(app_id, request.cname, request.uid)] = sid
        self._channel(app_id, request.cname, now)
        self.counters["tasksStarted"] += 1
        self._guarded(task, now, self._refresh_series)
        self._wake()
        return task

    def query(self, app_id: str, resource_id: str, sid: str, mode: str) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            task = self._find(app_id, resource_id, sid, mode, now)
            # Screenshot tasks get only status and sliceStartTime, no file list (S4, S17, S19).
            started = task.ready_at() if now >= task.ready_at() else 0.0
            return {**self._ids(task), "serverResponse": {
                "status": self._status(task, now), "sliceStartTime": _ms(started)}}

    def update(self, app_id: str, resource_id: str, sid: str, mode: str,
               body: object) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            task = self._find(app_id, resource_id, sid, mode, now)
            if task.phase == "exiting":
                raise worker_not_found()  # update works only while the task is alive (S5)
            request = validation.check_update(body, stream_types=task.request.stream_types)
            self._check_same_task(task, request.cname, request.uid)
            subscription = task.subscription
            if request.video is not None:
                subscription = Subscription(request.video[0], request.video[1],
                                            subscription.audio_include,
                                            subscription.audio_exclude)
            if request.audio is not None:
                subscription = Subscription(subscription.video_include,
                                            subscription.video_exclude, *request.audio)
            task.subscription = subscription
            if request.storage is not None:
                task.storage = request.storage  # e.g. a fresh stsToken (S5)
            self._guarded(task, now, self._refresh_series)
            self._wake()
            return self._ids(task)

    def stop(self, app_id: str, resource_id: str, sid: str, mode: str,
             body: object) -> tuple[int, dict[str, Any]]:
        with self._lock:
            now = self._advance()
            task = self._find(app_id, resource_id, sid, mode, now)
            async_stop = _check_stop_body(body, task)
            if task.phase == "exiting":
                raise ServiceError(400, 49, "invalid operation: the task is already exiting (S7)")
            self._begin_exit(task, now, LeaveCode.CLIENT_LEFT)
            self.counters["tasksStopped"] += 1
            self._wake()
            if not async_stop:
                # A synchronous stop returns once every file is uploaded (S6).
                # Emulated 20 s, but never under 2 real seconds so a slow test machine is not
                # mistaken for a slow upload.
                wait = max(STOP_UPLOAD_WAIT / self.clock.time_scale, 2.0)
                deadline = self.clock.monotonic() + wait
                while task.inflight and self._changed.wait(
                        timeout=max(0.0, deadline - self.clock.monotonic()) or 0.001):
                    if self.clock.monotonic() >= deadline:
                        break
            if task.captures == 0:
                # Nothing was captured because nobody published (S7, S18).
                raise ServiceError(206, 435, "no recorded data")
            # uploadingStatus for individual mode with screenshots (S6, S17): files that failed
            # to reach the customer's storage are kept aside by the emulator, as Agora's backup
            # cloud keeps them, hence "backuped"; uploads still running give "unknown".
            if task.inflight:
                status = "unknown"
            elif task.upload_failures:
                status = "backuped"
            else:
                status = "uploaded"
            return 200, {**self._ids(task), "serverResponse": {"uploadingStatus": status}}

    # ----------------------------------------------------------------------------------------------
    # Channel users (the admin API)

    def join(self, app_id: str, cname: str, uid: str, *, video: bool, audio: bool) -> None:
        _check_user(cname, uid)
        with self._lock:
            now = self._advance()
            channel = self._channel(app_id, cname, now)
            if not channel.users:
                self._emit_channel(ChannelEvent.CHANNEL_CREATE, cname, None, now)
            if uid not in channel.users:
                self._emit_channel(ChannelEvent.BROADCASTER_JOIN, cname, uid, now)
            channel.users[uid] = User(uid, video, audio)
            channel.empty_since = None
            self._refresh_channel(app_id, cname, now)

    def set_publishing(self, app_id: str, cname: str, uid: str, *, video: bool) -> None:
        with self._lock:
            now = self._advance()
            user = self._user(app_id, cname, uid)
            user.video = video
            self._refresh_channel(app_id, cname, now)

    def leave(self, app_id: str, cname: str, uid: str) -> None:
        with self._lock:
            now = self._advance()
            self._user(app_id, cname, uid)
            channel = self._channels[(app_id, cname)]
            del channel.users[uid]
            self._emit_channel(ChannelEvent.BROADCASTER_LEAVE, cname, uid, now,
                               reason=channel_events.LEAVE_REASON_QUIT)
            if not channel.users:
                channel.empty_since = now
                self._emit_channel(ChannelEvent.CHANNEL_DESTROY, cname, None, now)
            self._refresh_channel(app_id, cname, now)
            self._drop_channel_if_unused(app_id, cname)

    def failover(self, sid: str, *, downtime: float | None = None) -> dict[str, Any]:
        """Move a task to a new recording server: 404s for a while, then ``bak<n>_`` files
        (S7 FAQ, S8, S18)."""
        with self._lock:
            now = self._advance()
            seconds = self.failover_seconds if downtime is None \
                else _seconds(downtime, "downtimeSeconds")
            task = self._tasks.get(sid)
            if task is None or task.phase == "exiting":
                raise KeyError(sid)
            task.phase = "failover"
            task.failovers += 1
            task.back_at = now + seconds
            for uid in task.series:
                self._emit(task, _VIDEO_STATE, {"streamUid": int(uid), "state": 1,
                                                     "UtcMs": _ms(now)}, now)
            task.series.clear()
            self.counters["failovers"] += 1
            self._wake()
            return self._describe(task, now)

    # ----------------------------------------------------------------------------------------------
    # For the capture worker

    def tick(self) -> float | None:
        """Advance to now; return the next emulated deadline, or None when nothing is pending."""
        with self._lock:
            now = self._advance()
            return self._next_deadline(now)

    def take_jobs(self, limit: int) -> list[CaptureJob]:
        with self._lock:
            jobs: list[CaptureJob] = []
            while self._jobs and len(jobs) < limit:
                jobs.append(self._jobs.popleft())
            if not self._jobs:
                self.work_ready.clear()
            return jobs

    def record_error(self, counter: str, where: str, error: BaseException) -> None:
        """Log and count an internal error of a worker (``captureErrors``, ``workerErrors``)."""
        with self._lock:
            self.counters[counter] += 1
        _log.error("emulator: %s failed: %s", where, describe_exception(error))

    def capture_done(self, job: CaptureJob, failure: UploadFailure | None) -> None:
        with self._lock:
            now = self.clock.now()
            task = self._tasks.get(job.sid)
            if failure is None:
                self.counters["uploads"] += 1
            else:
                self.counters["uploadFailures"] += 1
            if task is None:
                return
            task.inflight -= 1
            if failure is None:
                task.files += 1
                if task.first_upload_at is None:
                    task.first_upload_at = now
                # "Captured and uploaded" (S12): fileName is "<fileNamePrefix>/<jpg name>".
                self._emit(task, RecordingEvent.RECORDER_SNAPSHOT_FILE, {"fileName": job.key}, now)
            else:
                task.upload_failures += 1
                if failure.code not in task.reported_errors:
                    # Reported once per error code and task, so a bad key does not flood the hook.
                    task.reported_errors.add(failure.code)
                    self._emit(task, RecordingEvent.CLOUD_RECORDING_ERROR, {
                        "module": 1, "errorLevel": 3, "errorCode": failure.code, "stat": 0,
                        "errorMsg": failure.message}, now)
            self._changed.notify_all()
            self._wake()

    # ----------------------------------------------------------------------------------------------
    # Reading state (admin API, tests)

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._advance()
            return [*self._history, *(self._describe(t, now) for t in self._tasks.values())]

    def task(self, sid: str) -> Task | None:
        with self._lock:
            self._advance()
            return self._tasks.get(sid)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def channels(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"appId": c.app_id, "cname": c.cname,
                     "users": [{"uid": u.uid, "video": u.video, "audio": u.audio}
                               for u in c.users.values()]}
                    for c in self._channels.values()]

    def snapshot_counters(self) -> dict[str, int]:
        with self._lock:
            self._advance()
            return {**self.counters, "tasksRunning": len(self._tasks),
                    "resourcesHeld": len(self._resources), "jobsQueued": len(self._jobs)}

    # ----------------------------------------------------------------------------------------------
    # The state machine

    def _advance(self) -> float:
        """Bring every task up to the emulated now; return now."""
        now = self.clock.now()
        for task in list(self._tasks.values()):
            self._guarded(task, now, self._advance_task)
        self._purge_resources(now)
        return now

    def _guarded(self, task: Task, now: float, step: Callable[[Task, float], None]) -> None:
        """Run one task's ``step``; an exception stops that task only (module docstring)."""
        try:
            step(task, now)
        except Exception as error:
            self.counters["taskErrors"] += 1
            where = describe_exception(error)
            if task.fault is None and task.sid in self._tasks:
                _log.error("emulator task %s: %s; it captures nothing more", task.sid, where)
                task.fault = where
                task.series.clear()
            else:
                _log.error("emulator task %s failed again: %s; dropped", task.sid, where)
                self._drop(task, now)

    def _advance_task(self, task: Task, now: float) -> None:
        if task.phase == "failover" and now >= task.back_at:
            task.phase = "running"
            # The bot rejoins under a random new uid (S12 session_failover newUid).
            self._emit(task, RecordingEvent.SESSION_FAILOVER,
                       {"newUid": secrets.randbelow(2**31 - 1) + 1},
                       task.back_at)
            self._refresh_series(task, task.back_at)
        if task.phase == "running":
            if not task.announced and now >= task.ready_at():
                task.announced = True
                self._emit(task, RecordingEvent.RECORDER_STARTED, {"status": 0}, task.ready_at())
            idle_at = self._idle_deadline(task)
            expires_at = task.token_expires_at
            ends_at = min((t for t in (idle_at, expires_at) if t is not None), default=None)
            until = now if ends_at is None else min(now, ends_at)
            self._schedule_captures(task, until)
            if ends_at is not None and now >= ends_at:
                if ends_at == expires_at:
                    self._expire_token(task, ends_at)
                else:
                    self.counters["idleExits"] += 1
                    self._begin_exit(task, ends_at, LeaveCode.NO_USERS)
        if task.phase == "exiting" and now >= task.exit_at + self.exit_seconds \
                and task.inflight == 0:
            self._finish(task, task.exit_at + self.exit_seconds)

    def _schedule_captures(self, task: Task, until: float) -> None:
        interval = float(task.request.capture_interval)
        for uid, due in task.series.items():
            while due <= until:
                self._jobs.append(CaptureJob(
                    sid=task.sid, app_id=task.app_id, cname=task.cname, publisher_uid=uid,
                    taken_at=due, storage=task.storage,
                    key=format_snapshot_name(
                        sid=task.sid, cname=task.cname, uid=uid, taken_at=_utc(due),
                        failover_index=task.failovers - 1 if task.failovers else None,
                        prefix=task.storage.file_name_prefix),
                ))
                task.captures += 1
                task.inflight += 1
                self.counters["captures"] += 1
                self.work_ready.set()
                due += interval
            task.series[uid] = due

    def _idle_deadline(self, task: Task) -> float | None:
        """When the task leaves for want of users: idle for maxIdleTime (S3, S8, S12)."""
        channel = self._channels.get((task.app_id, task.cname))
        if channel is not None and channel.users:
            return None
        empty_since = channel.empty_since if channel and channel.empty_since else task.started_at
        return max(empty_since, task.started_at) + task.request.max_idle_time

    def _refresh_series(self, task: Task, now: float) -> None:
        """Start or pause series to match who publishes video and is subscribed (S8, S15)."""
        if task.phase != "running" or task.fault is not None:
            return
        channel = self._channels.get((task.app_id, task.cname))
        users = channel.users.values() if channel else ()
        # A user holding the recorder's uid stops all captures (module docstring, S2).
        wanted = set() if self._uid_taken(task) else {
            u.uid for u in users if u.video and task.subscription.captures_video_of(u.uid)}
        for uid in [uid for uid in task.series if uid not in wanted]:
            del task.series[uid]
            # The stream paused: no snapshots until it resumes (S8); NCS 44 state 1 (S12).
            self._emit(task, _VIDEO_STATE, {"streamUid": int(uid), "state": 1,
                                                 "UtcMs": _ms(now)}, now)
        first = max(now, task.ready_at())
        for uid in sorted(wanted - task.series.keys(), key=int):
            task.series[uid] = first
            self._emit(task, _VIDEO_STATE, {"streamUid": int(uid), "state": 0,
                                                 "UtcMs": _ms(now)}, now)

    def _refresh_channel(self, app_id: str, cname: str, now: float) -> None:
        for task in list(self._tasks.values()):
            if task.app_id == app_id and task.cname == cname:
                self._guarded(task, now, self._refresh_series)
        self._wake()

    def _uid_taken(self, task: Task) -> bool:
        """Whether a user in the channel holds the recorder's uid (S2 acquire)."""
        channel = self._channels.get((task.app_id, task.cname))
        return channel is not None and task.uid in channel.users

    def _expire_token(self, task: Task, at: float) -> None:
        """The task's RTC token expired: it leaves the channel (S3; events: module docstring)."""
        self.counters["tokenExpiries"] += 1
        self._emit(task, RecordingEvent.CLOUD_RECORDING_ERROR, {"module": 0, "errorLevel": 5,
                                       "errorCode": TOKEN_EXPIRED_ERROR_CODE, "stat": 0,
                                       "errorMsg": "token expired"}, at)
        self._begin_exit(task, at, LEAVE_TOKEN_EXPIRED)

    def _begin_exit(self, task: Task, at: float, leave_code: LeaveCode | int) -> None:
        task.phase = "exiting"
        task.exit_at = at
        task.series.clear()
        self._emit(task, RecordingEvent.RECORDER_LEAVE, {"leaveCode": int(leave_code)}, at)

    def _finish(self, task: Task, at: float) -> None:
        # exitStatus 0: finished and uploaded (S12).
        self._emit(task, RecordingEvent.SESSION_EXIT, {"exitStatus": task.exit_status}, at)
        self._history.append({**self._describe(task, at), "status": 8, "state": "gone"})
        del self._tasks[task.sid]
        del self._by_key[task.key]
        self.counters["tasksExited"] += 1
        self._drop_channel_if_unused(task.app_id, task.cname)
        self._changed.notify_all()

    def _drop(self, task: Task, at: float) -> None:
        """Forget a task that keeps failing, with plain dictionary work only (nothing that could
        fail the same way): queries answer 404 "failed to find worker" as for a lost worker (S7)."""
        self._tasks.pop(task.sid, None)
        self._by_key.pop(task.key, None)
        self._history.append({**self._ids(task), "appId": task.app_id, "status": 8,
                              "state": "gone", "fault": task.fault, "stoppedAtMs": _ms(at)})
        self._drop_channel_if_unused(task.app_id, task.cname)
        self._changed.notify_all()

    def _status(self, task: Task, now: float) -> int:
        """serverResponse.status (S4, S17, S12)."""
        if task.phase == "exiting":
            third = max(now - task.exit_at, 0.0) / self.exit_seconds * 3
            return 6 + min(int(third), 2)  # 6 stop requested, 7 stopped, 8 exited
        elapsed = now - task.started_at
        for limit, status in STATUS_STEPS:
            if elapsed < limit:
                return status
        return 5 if task.first_upload_at is not None else 4

    def _next_deadline(self, now: float) -> float | None:
        deadlines: list[float] = []
        for task in self._tasks.values():
            if task.phase == "failover":
                deadlines.append(task.back_at)
            elif task.phase == "exiting":
                deadlines.append(task.exit_at + self.exit_seconds)
            else:
                if not task.announced:
                    deadlines.append(task.ready_at())
                deadlines.extend(task.series.values())
                idle = self._idle_deadline(task)
                if idle is not None:
                    deadlines.append(idle)
                if task.token_expires_at is not None:
                    deadlines.append(task.token_expires_at)
        return min(deadlines) if deadlines else None

    # ----------------------------------------------------------------------------------------------
    # Helpers

    def _wake(self) -> None:
        self.work_ready.set()

    def _check_app(self, app_id: str) -> None:
        if app_id not in self.app_ids:
            # Cloud Recording not enabled for this App ID, or a bad one (S7).
            raise ServiceError(400, 400, "invalid_appid")

    def _token(self, app_id: str, resource_id: str) -> ResourceToken:
        self._check_app(app_id)
        token = self._codec.parse(resource_id)
        if token.app_id != app_id:
            raise ServiceError(400, 1003, "the App ID does not match the resource ID (S18)")
        return token

    def _find(self, app_id: str, resource_id: str, sid: str, mode: str, now: float) -> Task:
        self._token(app_id, resource_id)
        task = self._tasks.get(sid)
        if task is None or task.phase == "failover":
            # Gone, never started, or moving to a new server (S4-S7, S7 FAQ).
            raise worker_not_found()
        if task.resource_id != resource_id:
            raise ServiceError(400, 1003, "the sid does not match the resource ID (S18)")
        if mode != "individual":
            raise invalid_parameter(f"mode: the task runs in 'individual' mode, not {mode!r}; "
                                    "a started task cannot change mode (S3, S8)")
        if now > task.calls_until:
            raise ServiceError(400, 433, "resource ID has expired (resourceExpiredHour); query, "
                               "update and stop can no longer be called (S2, S18)")
        return task

    def _check_same_task(self, task: Task, cname: str, uid: str) -> None:
        if (cname, uid) != (task.cname, task.uid):
            raise ServiceError(400, 432, "cname and uid do not match the resource ID (S18)")

    def _channel(self, app_id: str, cname: str, now: float) -> Channel:
        channel = self._channels.get((app_id, cname))
        if channel is None:
            channel = self._channels[(app_id, cname)] = Channel(app_id, cname, empty_since=now)
        return channel

    def _user(self, app_id: str, cname: str, uid: str) -> User:
        channel = self._channels.get((app_id, cname))
        if channel is None or uid not in channel.users:
            raise KeyError(f"uid {uid} is not in channel {cname!r}")
        return channel.users[uid]

    def _drop_channel_if_unused(self, app_id: str, cname: str) -> None:
        channel = self._channels.get((app_id, cname))
        if channel is not None and not channel.users and not any(
                t.app_id == app_id and t.cname == cname for t in self._tasks.values()):
            del self._channels[(app_id, cname)]

    def _purge_resources(self, now: float) -> None:
        # A resource id is useless 5 minutes after acquire (433): forget it, keep memory flat.
        stale = [rid for rid, r in self._resources.items()
                 if now - r.token.issued_at > RESOURCE_ID_SECONDS
                 and (r.sid is None or r.sid not in self._tasks)]
        for rid in stale:
            del self._resources[rid]

    def _ids(self, task: Task) -> dict[str, Any]:
        return {"cname": task.cname, "uid": task.uid, "resourceId": task.resource_id,
                "sid": task.sid}

    def _describe(self, task: Task, now: float) -> dict[str, Any]:
        return {
            **self._ids(task), "appId": task.app_id, "status": self._status(task, now),
            "state": task.phase, "files": task.files, "captures": task.captures,
            "uploadFailures": task.upload_failures, "failovers": task.failovers,
            "publishers": sorted(task.series, key=int), "startedAtMs": _ms(task.started_at),
            "recorderUidTaken": self._uid_taken(task), "fault": task.fault,
            "captureInterval": task.request.capture_interval,
            "maxIdleTime": task.request.max_idle_time,
            "tokenExpiresAtMs": (_ms(task.token_expires_at)
                                 if task.token_expires_at is not None else None),
            "storage": {"vendor": task.storage.vendor, "bucket": task.storage.bucket,
                        "fileNamePrefix": list(task.storage.file_name_prefix)},
        }

    def _emit(self, task: Task, event_type: RecordingEvent, details: dict[str, Any],
              at: float) -> None:
        payload = {"cname": task.cname, "uid": task.uid, "sid": task.sid,
                   "sequence": task.sequence, "sendts": _ms(at),
                   "serviceType": _SERVICE_TYPE[event_type], "details": details}
        task.sequence += 1
        event = build_event(int(event_type), payload, notice_id=uuid.uuid4().hex,
                            notify_ms=_ms(at))
        self._events.append(event)
        self.counters["events"] += 1
        if self._notifier is not None:
            self._notifier(event)

    def _emit_channel(self, event_type: ChannelEvent, cname: str, uid: str | None, at: float, *,
                      reason: int | None = None) -> None:
        """An RTC channel event (``channel_events``), when they are switched on."""
        if not self.channel_events:
            return
        self._client_seq += 1
        event = channel_events.channel_event(event_type, cname, uid, at=at,
                                             client_seq=self._client_seq, reason=reason)
        self._events.append(event)
        self.counters["channelEvents"] += 1
        if self._notifier is not None:
            self._notifier(event)


def _check_stop_body(body: object, task: Task) -> bool:
    """The stop body (S6): cname, uid and an optional ``clientRequest.async_stop``."""
    if not isinstance(body, Mapping):
        raise invalid_parameter("the request body must be a JSON object (S6)")
    if body.get("cname") != task.cname or body.get("uid") != task.uid:
        raise ServiceError(400, 432, "cname and uid do not match the resource ID (S6, S18)")
    request = body.get("clientRequest", {})
    if not isinstance(request, Mapping):
        raise invalid_parameter("clientRequest: must be a JSON object (S6)")
    async_stop = request.get("async_stop", False)
    if not isinstance(async_stop, bool):
        raise invalid_parameter("clientRequest.async_stop: must be true or false (S6)")
    return async_stop


def _check_user(cname: str, uid: str) -> None:
    if not cname or "/" in cname:
        raise ValueError(f"cname: {cname[:80]!r} is not a channel name")
    # ASCII digits only: "１２" passed isdigit() and int(), then failed every snapshot name.
    # The length check comes first so that int() never meets thousands of digits.
    if not (is_ascii_digits(uid) and len(uid) <= _UID_DIGITS
            and 1 <= int(uid) <= validation.UID_MAX):
        raise ValueError(f"uid: {uid[:20]!r} must be an integer in 1..{validation.UID_MAX} "
                         "written with the ASCII digits 0-9 (S2)")


_UID_DIGITS: Final = len(str(validation.UID_MAX))


def _seconds(value: float, name: str) -> float:
    """A finite, non-negative number of seconds, else ``ValueError`` naming ``name``: a NaN
    deadline is never reached and an infinite one never passes."""
    try:
        seconds = float(value)
    except (OverflowError, TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name}: must be a finite, non-negative number of seconds")
    return seconds


def _token_expiry(token: object, now: float, lifetime: float | None = None) -> float | None:
    """When a start body's ``token`` stops letting the recorder stay (module docstring), or None:
    no token, or (without ``lifetime``) another version than AccessToken2 or one that cannot be
    read.  ``lifetime`` (emulated seconds | None): the test setting ``token_lifetime``, which
    caps any token's life at ``now + lifetime``.  A token already expired ends the task at once
    (``now``)."""
    if not isinstance(token, str) or not token:
        return None
    try:
        read = token_expires_at(token)
    except ValueError:
        read = None
    expires = None if read is None else float(read)
    if lifetime is not None:
        expires = now + lifetime if expires is None else min(expires, now + lifetime)
    return None if expires is None else max(expires, now)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


__all__ = ["Backend", "CaptureJob", "EmulatorError", "Task", "UploadFailure"]
