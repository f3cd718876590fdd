"""``SnapshotSessionProvider``: Pulumi's dynamic-provider protocol mapped onto Agora's task API.

create = acquire + start (+ confirm running), update = the ``update`` API, read = query,
delete = stop.  The provider is a thin, stateless adapter: rules live in ``rules``/``spec``, request
bodies in ``agora.wire``, retries and rate limits in ``agora.client``, the change rule in ``changes``.

Contracts (docs/design.md, docs/pulumi-dynamic.md):
* The class is pickled **by reference** (module path + class name, ~70 bytes, nothing secret), so
  ``snapshot_resources.provider.SnapshotSessionProvider`` is permanent API: old stacks must still
  refresh and destroy after an upgrade.  Instances carry no pickled state.
* Credentials come from ``configure()`` (stack config ``agora:*``, then environment variables), are
  never resource inputs, and never appear in a log line, exception text or output.  ``configure``
  never raises (it runs on every preview, docs/pulumi-dynamic.md section 1, pattern 4); a missing credential
  fails the first operation that needs it, with a message saying how to set it.
* One instance serves up to four engine threads at once, so the lazily built client is guarded.
* Every wait is bounded: the engine sets no deadline and custom timeouts are not honoured for
  dynamic resources (docs/pulumi-dynamic.md section 3, "Timeouts").
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.dynamic.config import Config

from snapshot_resources import (
    changes,
    config_keys,
    naming,
    provider_process,
    recovery,
    rules,
    shared_store,
    spec,
)
from snapshot_resources.agora import errors
from snapshot_resources.journal import (
    FallbackJournal,
    Phase,
    SqliteTaskJournal,
    TaskJournal,
    TaskKey,
    config_digest,
    default_journal_path,
    stack_of,
)
from snapshot_resources.props import is_unknown, plain
from snapshot_resources.target import StorageTarget

if TYPE_CHECKING:
    from snapshot_resources.agora.client import AgoraClient, StartResult
    from snapshot_resources.journal import JournalEntry

# The wire (jsonschema) and the client (requests) are imported where they are used, not here: the
# program imports this module for every SnapshotSession (pickled by reference) but never sends a
# request, and the two cost about half of the package's import time (benchmarks/footprint.py).

log = logging.getLogger("snapshot_resources.provider")

OUTPUT_KEYS: Final = (
    "sid",
    "resourceId",
    "status",
    "startedAt",
    "fileNamePattern",
    "storageLocation",
    "tokenExpiresAt",
    "resourceExpiresAt",
)
"""Outputs the provider computes, on top of the echoed inputs (CONTRIBUTING.md).
``resourceExpiresAt`` (ISO 8601, UTC): when the resource ID stops accepting query, update and
stop (``resourceExpiredHour`` after start, S2)."""

# Top-level inputs whose value holds a secret. The engine prints ``property P value V has a
# problem`` for a check failure naming P (docs/pulumi-dynamic.md section 2, leak path 4), so
# failures under these keys are reported with an empty property and the path in the reason.
_SECRET_BEARING_INPUTS: Final = rules.SECRET_BEARING_INPUTS


# Guards the lazy client of every provider instance: the engine calls one instance from up to four
# threads at once (docs/pulumi-dynamic.md section 1). A module global, so it is never part of a pickle.
_CLIENT_LOCK: Final = threading.Lock()


class ProviderConfigError(RuntimeError):
    """A setting the operation needs is missing or malformed (never carries its value)."""


def _number(raw: Any, name: str, default: float, problems: list[str]) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        problems.append(f"{name} must be a number of seconds")
        return default
    if value <= 0:
        problems.append(f"{name} must be positive")
        return default
    return value


def _store_url(raw: str | None, problems: list[str]) -> str | None:
    """``agora:sharedStore``, checked (redis:// or rediss://); a problem names it redacted."""
    if raw is None:
        return None
    try:
        shared_store.SharedStore.check_url(raw)
    except shared_store.SharedStoreConfigError as error:
        problems.append(str(error))
        return None
    return raw


DEFAULT_START_TIMEOUT: Final = float(rules.START_CONFIRM_SECONDS)  # S10: then "not started"
DEFAULT_POLL_INTERVAL: Final = 2.0
DEFAULT_EXIT_TIMEOUT: Final = 30.0


class _Readiness:
    """How long after start a task becomes ready (status 4/5), learnt per App ID in this provider
    process: the first confirming query is sent then, not at a fixed guess (a fixed 5 s guess
    held each of the engine's 4 provider workers 3 s longer than the emulator needs; a short fixed
    interval spends the request budget). A smoothed estimate of the moment the task became ready,
    between the last query that found it starting and the first that found it ready."""

    INITIAL: Final = 2.0  # seconds, before anything was observed
    WEIGHT: Final = 0.3  # of a new observation in the estimate

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expected: dict[str, float] = {}

    def expected(self, app_id: str, initial: float = INITIAL) -> float:
        """Seconds after start to send the first query; ``initial`` until one start was seen."""
        with self._lock:
            return self._expected.get(app_id, initial)

    def observe(self, app_id: str, ready_within: tuple[float, float]) -> None:
        """The task was ready somewhere in ``(after, by]`` seconds after start."""
        after, by = ready_within
        sample = (after + by) / 2 if after > 0 else by * 0.95  # ready already: probe earlier
        with self._lock:
            old = self._expected.get(app_id, sample)
            self._expected[app_id] = old + self.WEIGHT * (sample - old)


_READINESS: Final = _Readiness()
_CONFLICT_FIRST_RETRY: Final = 0.5  # seconds; then doubling up to the next
_CONFLICT_MAX_RETRY: Final = 4.0


# Cleanup after an interruption must end before the engine kills the provider, 5 s after its
# SIGINT (sdk/go/common/resource/plugin/plugin.go of Pulumi 3.274): one stop, few retries.
_CLEANUP_DEADLINE: Final = 3.5


class _Journals:
    """One task journal per file per provider process (``journal``), built on first use. A file
    that cannot be used (a read-only home, a full disk) gives a journal in memory, said once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, TaskJournal] = {}

    def get(self, path: str) -> TaskJournal:
        with self._lock:
            journal = self._open.get(path)
            if journal is None:
                try:
                    primary: TaskJournal = SqliteTaskJournal(Path(path))
                except (OSError, sqlite3.Error) as exc:
                    recovery.say(f"the task journal {path} cannot be used ({exc}); this run keeps "
                                 "it in memory, so a task a killed run leaves behind is found only "
                                 "by Agora's 53 at its next create")
                    primary = SqliteTaskJournal(None)
                journal = FallbackJournal(primary, SqliteTaskJournal(None), recovery.say)
                self._open[path] = journal
            return journal


    def shared(self, store: shared_store.SharedStore, local: str) -> TaskJournal:
        """The store's journal, with the file at ``local`` for when the store fails."""
        from snapshot_resources.journal_redis import RedisTaskJournal, SharedTaskJournal

        name = f"{store.where} {local}"
        fallback = self.get(local)
        with self._lock:
            journal = self._open.get(name)
            if journal is None:
                journal = SharedTaskJournal(RedisTaskJournal(store), fallback)
                self._open[name] = journal
            return journal


_JOURNALS: Final = _Journals()


def _store(settings: ProviderSettings) -> shared_store.SharedStore | None:
    """The process's store of ``agora:sharedStore`` (None without it); its one warning of a
    failure goes to stderr, which the engine shows."""
    if not settings.shared_store:
        return None
    return shared_store.connect(settings.shared_store, say=recovery.say)


class _StartJournal:
    """Writes each start of one create to the journal before it is sent (``StartObserver``)."""

    def __init__(self, journal: TaskJournal, key: TaskKey, urn: str | None, digest: str) -> None:
        self._journal, self._key, self._urn, self._digest = journal, key, urn, digest
        self.entries: dict[str, int] = {}

    def before_start(self, resource_id: str) -> None:
        self.entries[resource_id] = self._journal.begin(self._key, resource_id, self._urn,
                                                        self._digest)

    def start_failed(self, resource_id: str, error: BaseException) -> None:
        from snapshot_resources.agora.client import may_have_started

        entry = self.entries.pop(resource_id, None)
        if entry is None:
            return
        if may_have_started(error):
            self._journal.release(entry)  # its answer was lost: it may run; kept for recovery
        else:
            self._journal.forget(entry)


_SAW_CHECK = threading.Event()  # set by check(): this process serves an `up` or a preview


@dataclass(frozen=True)
class ProviderSettings:
    """What ``configure()`` read. ``repr`` shows which secrets are set, never their values.

    Each field comes from the stack config ``agora:<key>``, else the environment variable named,
    else the default (``from_config``; seconds are positive numbers):
    ``customer_id``, ``customer_secret`` (str | None): RESTful API credentials, ``agora:customerId``
    / ``AGORA_CUSTOMER_ID`` and ``agora:customerSecret`` / ``AGORA_CUSTOMER_SECRET``; required by
    every operation that calls Agora, never by check or diff.  ``app_certificate`` (str | None):
    ``agora:appCertificate`` / ``AGORA_APP_CERTIFICATE``; when set, create builds the recorder's
    24-hour RTC token.  ``endpoint`` (str | None): ``agora:endpoint`` / ``AGORA_ENDPOINT``, a base
    URL instead of Agora's domains (https, or http to loopback only); None for Agora's domains
    with failover (S11).  ``start_timeout`` (float, s, default 90): how long create waits for
    status 4/5 (S10).  ``poll_interval`` (float, s, default 2): the longest wait between two
    readiness queries; the first query comes when the task is expected to be ready, learnt from
    the starts this process has seen, then the waits grow from 0.5 s (S10: "query with backoff").
    ``failover_grace`` (float, s, default 90): how long a 404 counts as a failover in progress,
    not as gone (S7, S8).  ``qps`` (float, default 10): requests per second per App ID (S10).
    ``retry_delay_scale`` (float, default 1): multiplies the documented retry delays (S10).
    ``exit_timeout`` (float, s, default 30): how long a replacement's create keeps retrying start
    while the task it replaces, stopped moments before, still holds the channel and uid (53 task
    conflict, S7).  ``task_journal`` (str | None): ``agora:taskJournal`` / ``AGORA_TASK_JOURNAL``,
    the task journal's file (default ``$PULUMI_HOME/agora-snapshots/task-journal.sqlite3``,
    ``journal``).  ``shared_store`` (str | None): ``agora:sharedStore`` / ``AGORA_SHARED_STORE``,
    a ``redis://`` or ``rediss://`` URL: one request budget per App ID and one task journal for
    every process that uses it (docs/shared-store.md); never shown (``repr``), since it may hold
    a password.  ``problems`` (tuple of str): what could not be read, e.g. a non-numeric
    ``agora:pollInterval``; any problem fails the first operation that needs the client with
    ``ProviderConfigError``.
    """

    customer_id: str | None = field(default=None, repr=False)
    customer_secret: str | None = field(default=None, repr=False)
    app_certificate: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    # S10: give up on a task not at status 4/5 after about rules.START_CONFIRM_SECONDS.
    start_timeout: float = DEFAULT_START_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    # S8: a failed-over task is back within rules.FAILOVER_SECONDS; 404 meanwhile is not "gone"
    # (S7 FAQ).
    failover_grace: float = float(rules.FAILOVER_SECONDS)
    qps: float = float(rules.QPS_PER_APP_ID)
    # Multiplies every documented retry delay (S10: 1 s, 3 s, 6 s ...); the emulator runs faster.
    retry_delay_scale: float = 1.0
    # A stopped task still holds its cname+uid while it exits, so its replacement's start gets 53
    # task conflict (S7) for a while; a synchronous stop already waited up to 20 s for uploads (S6).
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT
    task_journal: str | None = None
    shared_store: str | None = field(default=None, repr=False)
    problems: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config | None) -> ProviderSettings:
        def get(key: str) -> str | None:
            # The setting's name and environment variable come from its one declaration.
            setting = config_keys.SETTINGS_BY_KEY[key]
            value = config.get(setting.name) if config is not None else None
            if (value is None or value == "") and setting.env is not None:
                value = os.environ.get(setting.env)
            return None if value is None or value == "" else str(value)

        problems: list[str] = []

        def number(key: str, default: float) -> float:
            return _number(get(key), config_keys.SETTINGS_BY_KEY[key].name, default, problems)

        return cls(
            customer_id=get("customerId"),
            customer_secret=get("customerSecret"),
            app_certificate=get("appCertificate"),
            endpoint=get("endpoint"),
            start_timeout=number("startTimeout", DEFAULT_START_TIMEOUT),
            poll_interval=number("pollInterval", DEFAULT_POLL_INTERVAL),
            failover_grace=number("failoverGrace", float(rules.FAILOVER_SECONDS)),
            qps=number("qps", float(rules.QPS_PER_APP_ID)),
            retry_delay_scale=number("retryDelayScale", 1.0),
            exit_timeout=number("exitTimeout", DEFAULT_EXIT_TIMEOUT),
            task_journal=get("taskJournal"),
            shared_store=_store_url(get("sharedStore"), problems),
            problems=tuple(problems),
        )

    def __repr__(self) -> str:
        return (
            f"ProviderSettings(endpoint={self.endpoint!r}, "
            f"customer_id={'set' if self.customer_id else 'missing'}, "
            f"customer_secret={'set' if self.customer_secret else 'missing'}, "
            f"app_certificate={'set' if self.app_certificate else 'missing'}, "
            f"shared_store={shared_store.redact(self.shared_store) if self.shared_store else None})"
        )


@dataclass(frozen=True)
class _Session:
    """A resource's inputs, normalised and validated, ready for the wire."""

    app_id: str
    spec: spec.SessionSpec
    storage: StorageTarget
    token: str | None
    inputs: dict[str, Any]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SnapshotSessionProvider(ResourceProvider):
    """The dynamic provider behind ``SnapshotSession`` (type ``pulumi-python:dynamic/agora:SnapshotSession``).

    Takes no arguments and holds no state of its own: it is pickled by reference into each
    session's state, and its settings come from ``configure`` (``ProviderSettings``).  Operations:
    ``check`` validates every rule offline and returns every failure (rule ids of ``rules.py``);
    ``diff`` classifies a change (``changes.classify``: update in place or replace, always
    delete-before-replace); ``create`` acquires, starts and confirms the task (S2, S3, S10);
    ``update`` calls Agora's update (S5); ``read`` queries (S4) and drops a task that has ended;
    ``delete`` stops (S6) and waits for the exit.  ``help(SnapshotSession)`` says what each does
    for a user.  Errors of an operation (``ProviderConfigError`` for missing credentials,
    ``SpecError``, ``AgoraError`` subclasses, ``CreateFailedError``) are reported by the engine.
    """

    # By reference and stateless: the pickle holds no secret, so it need not be an encrypted blob
    # per resource (docs/pulumi-dynamic.md section 1, pattern 5; pulumi#15538).
    serialize_as_secret_always = False

    # Filled by configure() in the provider process only; never present when the program pickles
    # the provider (Resource.__init__ pickles a fresh instance).
    _settings: ProviderSettings | None = None
    _client: AgoraClient | None = None

    # -- configuration ------------------------------------------------------------------------

    def configure(self, req: ConfigureRequest) -> None:
        # Never raise here (docs/pulumi-dynamic.md section 1, pattern 4): previews must run without credentials.
        try:
            self._settings = ProviderSettings.from_config(req.config)
        except Exception as exc:  # pragma: no cover - defensive: config access should not fail
            self._settings = ProviderSettings(problems=(f"could not read configuration ({type(exc).__name__})",))
        self._client = None

    def settings(self) -> ProviderSettings:
        if self._settings is None:
            self._settings = ProviderSettings.from_config(None)
        return self._settings

    def client(self) -> AgoraClient:
        with _CLIENT_LOCK:
            if self._client is None:
                self._client = self._build_client(self.settings())
            return self._client

    @staticmethod
    def _build_client(settings: ProviderSettings) -> AgoraClient:
        from snapshot_resources.agora.client import AgoraClient
        from snapshot_resources.agora.retry import RetryPolicy

        if settings.problems:
            raise ProviderConfigError("invalid provider configuration: " + "; ".join(settings.problems))
        customer_id, customer_secret = settings.customer_id, settings.customer_secret
        if not customer_id or not customer_secret:
            missing = [
                name
                for name, value in (
                    ("agora:customerId (or AGORA_CUSTOMER_ID)", customer_id),
                    ("agora:customerSecret (or AGORA_CUSTOMER_SECRET)", customer_secret),
                )
                if not value
            ]
            raise ProviderConfigError(
                "Agora RESTful API credentials are not configured: set "
                + " and ".join(missing)
                + " (e.g. `pulumi config set --secret agora:customerSecret`)"
            )
        # Waits end early when the engine stops waiting for the call (provider_process).
        return AgoraClient(
            customer_id,
            customer_secret,
            endpoint=settings.endpoint,
            qps=settings.qps,
            retry=RetryPolicy(scale=settings.retry_delay_scale, sleep=provider_process.sleep),
            shared_store=_store(settings),
        )

    def _cleanup_client(self) -> AgoraClient:
        """A client for the one stop an interruption allows (``_CLEANUP_DEADLINE``)."""
        from snapshot_resources.agora.client import AgoraClient
        from snapshot_resources.agora.retry import RetryPolicy

        settings = self.settings()
        self.client()  # raises the configuration error, if any: then both are set
        return AgoraClient(settings.customer_id or "", settings.customer_secret or "",
                           endpoint=settings.endpoint, qps=settings.qps,
                           retry=RetryPolicy(scale=settings.retry_delay_scale, max_attempts=2,
                                             deadline=_CLEANUP_DEADLINE),
                           shared_store=_store(settings))

    def journal(self) -> TaskJournal:
        """The task journal (``journal``): ``agora:taskJournal``, else the Pulumi home's; with
        ``agora:sharedStore``, the store's, that file standing in while the store fails
        (``journal_redis.SharedTaskJournal``)."""
        settings = self.settings()
        local = settings.task_journal or str(default_journal_path())
        store = _store(settings)
        return _JOURNALS.get(local) if store is None else _JOURNALS.shared(store, local)

    # -- check / diff -------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Every documented rule, offline, all failures at once; unknown values are skipped."""
        inputs = {k: news[k] for k in changes.INPUT_KEYS if k in news}
        problems = input_problems(inputs)
        problems.extend(_unexpected_keys(news))
        _SAW_CHECK.set()
        # The checked inputs are what the engine stores: blacklists under one spelling.
        return CheckResult(changes.canonical_inputs(news),
                           [self._failure(problem) for problem in problems])

    @staticmethod
    def _failure(problem: spec.Problem) -> CheckFailure:
        top = str(problem.path[0]) if problem.path else ""
        cite = problem.rule.cite() or "this tool's rule"
        reason = f"{problem.message} (rule {problem.rule_id}; {cite})"
        # Only a known, secret-free input is named as the property: the engine prints the value of
        # the named property, and an unexpected top-level key may hold anything (a misplaced key).
        if top in _SECRET_BEARING_INPUTS or top not in changes.INPUT_KEYS:
            return CheckFailure("", f"{problem.dotted_path}: {reason}")
        nested = f"{problem.dotted_path}: " if len(problem.path) > 1 else ""
        return CheckFailure(top, nested + reason)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        stop = self._held_by_engine(olds, id_)
        if stop is not None:
            # The state holds a task this product stopped: a `destroy` (or a replacement's
            # delete) whose end the engine never recorded. It is replaced, so it runs again.
            done = "was stopped" if stop.phase is Phase.STOPPED else "was being stopped"
            recovery.say(f"session {id_} on channel {olds.get('cname')!r} {done} at "
                         f"{_iso_from_s(int(stop.updated_at))} by a run that was interrupted "
                         "before the state recorded it; `pulumi up` replaces it")
            return DiffResult(changes=True, replaces=["sid"], delete_before_replace=True)
        change = changes.classify(olds, news)
        if change.kind is not changes.ChangeKind.REPLACE and _resource_id_renewal_due(olds):
            # A new task, and with it a new resource ID, while the old one can still be stopped
            # (rules.resource_id_renew_before). Nothing in the inputs changed, so the change is
            # stated (DIFF_SOME) rather than left to the engine's own diff of the inputs.
            return DiffResult(changes=True, replaces=["resourceExpiredHour"],
                              delete_before_replace=True)
        if change.kind is changes.ChangeKind.NONE:
            return DiffResult(changes=False, replaces=[], delete_before_replace=True)
        # changes=None (DIFF_UNKNOWN) lets the engine compute the per-property diff that
        # `pulumi preview --diff` and `--json` show reviewers, keeping our replaces
        # (docs/pulumi-dynamic.md section 3, "Diff").
        return DiffResult(changes=None, replaces=list(change.replaces), delete_before_replace=True)

    # -- create / read / update / delete --------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        from snapshot_resources.agora import wire

        session = self._session(props)
        client = self.client()
        settings = self.settings()
        journal = self.journal()
        operation = provider_process.current()
        urn = operation.urn if operation is not None else None
        key = TaskKey(session.app_id, session.spec.cname, session.spec.uid)
        digest = config_digest(session.inputs, settings.customer_secret or "")
        token, token_expires_at = self._token(session, settings)
        start = wire.start_body(session.spec, session.storage, token=token)
        # A task an interrupted run left for this channel and uid is adopted (same
        # configuration: no gap, no second task) or stopped before anything starts
        # (docs/decisions.md, "Interrupted, never orphaned").
        adopted = recovery.recover(client, journal, key, urn=urn, digest=digest,
                                   start_body=start, wait=settings.start_timeout,
                                   sleep=provider_process.sleep)
        if adopted is not None:
            entry_id, resource_id, sid = adopted.entry_id, adopted.resource_id, adopted.sid
            confirmed = (_Confirmed(adopted.status, adopted.slice_start_time)
                         if adopted.status in rules.RUNNING_STATUSES
                         else self._confirm(client, session, resource_id, sid, entry_id))
        else:
            acquire = wire.acquire_body(session.spec)
            started, entry_id = self._start(client, journal, session, key, urn, digest, acquire,
                                            start)
            resource_id, sid = started.resource_id, started.sid
            # Agora has given a sid: from here no path may lose it. A Python dynamic provider
            # cannot return partial state with an error, so create fails only when the task is
            # known not to be running (ended, gone, or stopped here because it never started);
            # otherwise the session is recorded, with a warning when its state could not be
            # confirmed, and refresh and destroy manage it (docs/decisions.md "A failed create").
            confirmed = self._confirm(client, session, resource_id, sid, entry_id)
        if confirmed.warning is not None:
            recovery.say(confirmed.warning)
        if operation is not None and operation.cancelled.is_set():
            # Nobody waits for this answer any more: the sid would go nowhere.
            self._abandon(session, resource_id, sid, entry_id)
        outs = {
            **session.inputs,
            "sid": sid,
            "resourceId": resource_id,
            "status": confirmed.status,
            "startedAt": _iso_from_ms(confirmed.slice_start_time) or _now_iso(),
            "fileNamePattern": naming.snapshot_pattern(
                sid=sid,
                cname=session.spec.cname,
                prefix=session.storage.get("fileNamePrefix", []),
            ),
            "storageLocation": _storage_location(session.storage),
            "tokenExpiresAt": token_expires_at,
            # S2: the countdown starts when start succeeds and returns a sid.
            "resourceExpiresAt": _iso_from_s(
                int(time.time()) + session.spec.resourceExpiredHour * 3600
            ),
        }
        journal.returned(entry_id)
        return CreateResult(sid, outs)

    def _start(
        self, client: AgoraClient, journal: TaskJournal, session: _Session, key: TaskKey,
        urn: str | None, digest: str, acquire: Mapping[str, Any], start: Mapping[str, Any],
    ) -> tuple[StartResult, int]:
        """acquire + start, each start journaled before it is sent; the started task and its
        journal entry. A 53 task conflict caused by a task stopped moments ago (by this
        session's own replacement, or by ``recovery``, in any process: the journal's STOPPED
        entries) is ridden out for up to ``agora:exitTimeout`` seconds, retrying with backoff;
        any other 53 fails at once with what may hold the channel and what to do (S7)."""
        exit_timeout = self.settings().exit_timeout
        delay = _CONFLICT_FIRST_RETRY
        while True:
            observer = _StartJournal(journal, key, urn, digest)
            try:
                started = client.acquire_and_start(session.app_id, acquire, start,
                                                   observer=observer)
            except errors.TaskConflictError as exc:
                last = journal.last_stop(key)
                since = None if last is None else time.time() - last
                if since is None or since >= exit_timeout:
                    if since is not None:
                        exc.add_note(f"the task last stopped on this channel and uid was stopped "
                                     f"{since:.0f} s ago and may still be leaving "
                                     f"(agora:exitTimeout {exit_timeout:g} s)")
                    exc.add_note(recovery.conflict_note(
                        key, journal, session.spec.recordingConfig.maxIdleTime))
                    raise
                log.info("session on %r: a stopped task still leaving (53); retrying start in "
                         "%.1f s", session.spec.cname, min(delay, exit_timeout - since))
                provider_process.sleep(min(delay, exit_timeout - since))
                delay = min(delay * 2, _CONFLICT_MAX_RETRY)
                continue
            entry_id = observer.entries.pop(started.resource_id)
            journal.started(entry_id, started.sid)
            return started, entry_id

    def _abandon(self, session: _Session, resource_id: str, sid: str, entry_id: int) -> NoReturn:
        """The engine no longer waits for this create (a second Ctrl-C, a killed CLI, the
        provider's shutdown): stop the task it started, within the time the engine gives, and
        say so; if it cannot be stopped, leave it to the journal (LOST) and say that."""
        journal = self.journal()
        key = TaskKey(session.app_id, session.spec.cname, session.spec.uid)
        what = f"task {sid} (channel {session.spec.cname!r}, uid {session.spec.uid})"
        from snapshot_resources.agora import wire
        from snapshot_resources.agora.client import StopKind

        with provider_process.shielded():
            try:
                with self._cleanup_client() as cleanup:
                    outcome = cleanup.stop_quietly(session.app_id, resource_id, sid,
                                                   wire.stop_body(session.spec.cname,
                                                                  session.spec.uid))
            except Exception as exc:
                journal.lost(entry_id)
                recovery.say(
                    f"the run was interrupted while creating {what} and it could not be stopped "
                    f"({type(exc).__name__}: {exc}); it is kept in the task journal "
                    f"({journal.where}): the next `pulumi up` adopts or stops it, `pulumi "
                    "destroy` and `snapshot-resources reconcile` stop it")
                raise provider_process.OperationCancelled("create interrupted") from exc
            if outcome.kind is StopKind.NOT_FOUND:
                journal.lost(entry_id)  # 404 may be a failover in progress (S7 FAQ): check later
                recovery.say(f"the run was interrupted while creating {what}; Agora answered 404 "
                             "to its stop, so it is kept in the task journal for the next run")
            else:
                journal.stopped(key, sid, resource_id)
                recovery.say(f"the run was interrupted while creating {what}: the task was "
                             "stopped, nothing is left running")
        raise provider_process.OperationCancelled("create interrupted")

    def _confirm(
        self, client: AgoraClient, session: _Session, resource_id: str, sid: str, entry_id: int
    ) -> _Confirmed:
        """Wait until the started task runs (status 4/5, S10) and say what create records.

        Raises only when the task is known not to be running: it exited, it stayed gone past the
        failover grace, or it never reached 4/5 and was stopped here. Any other failure (query
        answers lost to 429, 5xx or the network) records the session with a warning. When the
        engine stops waiting (``OperationCancelled``), the task is stopped (``_abandon``).
        """
        from snapshot_resources.agora.client import MIN_CONFIRM_INTERVAL_SECONDS

        settings = self.settings()
        app_id = session.app_id
        started = time.monotonic()
        # Before anything was learnt, a poll interval shorter than the usual readiness (a fast
        # emulator clock) starts the probing earlier.
        initial = min(_Readiness.INITIAL, settings.poll_interval)
        expected = min(_READINESS.expected(app_id, initial), settings.start_timeout)
        journal = self.journal()
        key = TaskKey(session.app_id, session.spec.cname, session.spec.uid)
        try:
            running = client.wait_until_running(
                app_id, resource_id, sid,
                timeout=settings.start_timeout,
                interval=settings.poll_interval,
                first_delay=expected,
                min_interval=min(MIN_CONFIRM_INTERVAL_SECONDS, settings.poll_interval),
            )
            elapsed = time.monotonic() - started
            # Ready by now; when more than one query was needed it became ready after the
            # previous one, about one interval before this.
            first = elapsed - expected < MIN_CONFIRM_INTERVAL_SECONDS
            _READINESS.observe(app_id, (0.0 if first else expected, elapsed))
            return _Confirmed(running.status, running.slice_start_time)
        except errors.TaskNotRunningError as exc:
            if isinstance(exc.__cause__, errors.TaskNotFoundError):
                return self._confirm_after_404(client, session, resource_id, sid, entry_id)
            if exc.last_status in rules.EXITED_STATUSES:
                journal.stopped(key, sid, resource_id)
                raise _create_failed(sid, str(exc), "it is not running, nothing to stop") from exc
            # Never reached 4/5 in startTimeout (S10: start a new task): known not to work.
            return self._stop_stuck(client, session, resource_id, sid, exc)
        except provider_process.OperationCancelled:
            self._abandon(session, resource_id, sid, entry_id)
        except errors.AgoraError as exc:
            return _unconfirmed(sid, None, f"its status could not be read ({exc})")
        except BaseException:
            # Anything unexpected (a bug): the engine records nothing, so stop what was started.
            self._stop_after_failed_create(client, session, resource_id, sid)
            raise

    def _confirm_after_404(
        self, client: AgoraClient, session: _Session, resource_id: str, sid: str, entry_id: int
    ) -> _Confirmed:
        """404 while confirming: a failover in progress answers 404 too (S7 FAQ); ride it out."""
        key = TaskKey(session.app_id, session.spec.cname, session.spec.uid)
        try:
            result = client.query_riding_failover(
                session.app_id, resource_id, sid, grace=self.settings().failover_grace
            )
        except provider_process.OperationCancelled:
            self._abandon(session, resource_id, sid, entry_id)
        except errors.TaskNotFoundError as exc:
            self.journal().stopped(key, sid, resource_id)
            raise _create_failed(
                sid, f"Agora did not know the task for {self.settings().failover_grace:g} s "
                "after starting it", "it is not running, nothing to stop") from exc
        except errors.AgoraError as exc:
            return _unconfirmed(sid, None, f"its status could not be read ({exc})")
        if result.status in rules.EXITED_STATUSES:
            self.journal().stopped(key, sid, resource_id)
            raise _create_failed(
                sid, f"the task is {rules.QUERY_STATUSES.get(result.status or 0)}",
                "it is not running, nothing to stop")
        if result.running:
            return _Confirmed(result.status, result.slice_start_time)
        return _unconfirmed(sid, result.status, "it came back from a failover not yet running")

    def _stop_stuck(
        self,
        client: AgoraClient,
        session: _Session,
        resource_id: str,
        sid: str,
        cause: errors.TaskNotRunningError,
    ) -> _Confirmed:
        """A task that never started is known not to work: stop it, and fail create. If it
        cannot be stopped, record it (its sid must not be lost) and say so."""
        from snapshot_resources.agora import wire

        body = wire.stop_body(session.spec.cname, session.spec.uid)
        try:
            client.stop_quietly(
                session.app_id, resource_id, sid, body,
                failover_grace=self.settings().failover_grace,
            )
        except errors.AgoraError as exc:
            return _unconfirmed(
                sid, cause.last_status,
                f"it did not start ({cause}) and could not be stopped ({exc}); it is recorded "
                "so that `pulumi destroy` or the next `pulumi up` can stop it",
            )
        self.journal().stopped(TaskKey(session.app_id, session.spec.cname, session.spec.uid),
                               sid, resource_id)
        raise _create_failed(sid, str(cause), "it was stopped") from cause

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = plain({k: v for k, v in props.items() if k != "__provider"})
        app_id = str(outs.get("appId", ""))
        resource_id = str(outs.get("resourceId", ""))
        known = self._held_by_engine(outs, id_)
        client = self.client()
        self._report_orphans(client)
        try:
            result = client.query_riding_failover(
                app_id, resource_id, id_, grace=self._grace(known),
                on_missing=_waiting_note(id_, outs),
            )
        except errors.TaskNotFoundError:
            self._report_gone(id_, outs, "Agora no longer knows the task")
            return ReadResult("", {})
        except errors.ResourceIdInvalidError:
            self._report_gone(id_, outs, _unparsable_note(resource_id, outs))
            return ReadResult("", {})
        except errors.ResourceExpiredError:
            # S2/S18: past resourceExpiredHour query and stop answer 433 forever. The session is
            # kept (it may still run) with its status unknown; the next `up` replaces it.
            recovery.say(f"{_expired_note(id_, outs)}; the next `pulumi up` replaces it")
            outs["status"] = None
            return ReadResult(id_, outs, {k: outs[k] for k in changes.INPUT_KEYS if k in outs})
        except errors.AuthError as exc:
            exc.add_note(_STORED_SETTINGS_NOTE)
            raise
        if result.status in rules.EXITED_STATUSES:
            self._report_gone(id_, outs, f"the task is {rules.QUERY_STATUSES.get(result.status or 0)}")
            return ReadResult("", {})
        outs["status"] = result.status
        inputs = {k: outs[k] for k in changes.INPUT_KEYS if k in outs}
        return ReadResult(id_, outs, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        session = self._session(news)
        old = plain(olds)
        change = changes.classify(old, session.inputs)
        if change.kind is changes.ChangeKind.REPLACE:  # the engine replaces; never reached by diff
            raise RuntimeError(
                f"session {id_}: {', '.join(change.replaces)} cannot change in place; it needs a replacement"
            )
        if change.kind is changes.ChangeKind.UPDATE:
            from snapshot_resources.agora import wire

            body = wire.update_body(
                session.spec, storage=session.storage if change.rotates_storage else None
            )
            self.client().update(session.app_id, str(old["resourceId"]), id_, body)
        # The default update wipes every output (pulumi#7809): return the full set.
        outs = {k: old.get(k) for k in OUTPUT_KEYS}
        outs.update(session.inputs)
        outs["fileNamePattern"] = naming.snapshot_pattern(
            sid=id_, cname=session.spec.cname, prefix=session.storage.get("fileNamePrefix", [])
        )
        outs["storageLocation"] = _storage_location(session.storage)
        return UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from snapshot_resources.agora import wire

        outs = plain(props)
        body = wire.stop_body(str(outs["cname"]), str(outs["uid"]))
        # A task in the middle of a failover answers 404 too (S7 FAQ): ride that out before
        # concluding it is already gone, or a live task would be forgotten and keep billing.
        client = self.client()
        app_id, resource_id = str(outs["appId"]), str(outs["resourceId"])
        key = TaskKey(app_id, str(outs["cname"]), str(outs["uid"]))
        known = self._held_by_engine(outs, id_)
        if not _SAW_CHECK.is_set():
            # No resource was checked in this process: a `destroy` (or an `up` of a program
            # that declares no session). Tasks an interrupted create left are stopped too.
            self._sweep_orphans(client)
        journal = self.journal()
        # Written before the stop is sent: a process killed mid-stop leaves the intent, and the
        # next diff replaces the session (whose task may be stopped) instead of trusting it.
        journal.stopping(key, id_, resource_id)
        try:
            outcome = client.stop_quietly(
                app_id, resource_id, id_, body, failover_grace=self._grace(known),
                on_missing=_waiting_note(id_, outs),
            )
        except (errors.AuthError, errors.InvalidRequestError) as exc:
            journal.not_stopped(app_id, id_)  # refused before anything was stopped
            if isinstance(exc, errors.AuthError):
                exc.add_note(_STORED_SETTINGS_NOTE)
            raise
        except errors.ResourceIdInvalidError:
            recovery.say(f"session {id_} on channel {outs.get('cname')!r}: "
                         f"{_unparsable_note(resource_id, outs)}; it is removed from the state")
            return
        except errors.ResourceExpiredError:
            # Nothing can stop it any more (S2, S18): delete succeeds, saying what still runs.
            recovery.say(f"{_expired_note(id_, outs)}; it is removed from the state")
            return
        # Journaled whatever the engine hears: a stop it never records (an interrupted
        # `destroy`) is then seen by the next diff, and a replacement rides out the 53 (_start).
        journal.stopped(key, id_, resource_id)
        log.info("session %s: stop outcome %s", id_, outcome.kind.name)
        uploading = outcome.result.uploading_status if outcome.result else None
        if uploading not in (None, "uploaded"):
            # S6: "backuped" = some files went to Agora's backup cloud (forwarded later), "unknown"
            # = Agora cannot tell. Either way the user's storage may miss files: say so on stderr,
            # which the engine shows (docs/pulumi-dynamic.md section 1, "Logging").
            recovery.say(
                f"session {id_} stopped with uploadingStatus {uploading!r}: "
                "not every snapshot reached your storage directly (S6: 'backuped' files are "
                "forwarded from Agora's backup later); check the storage keys and permissions"
            )
        # No wait for the task to leave: only a replacement needs the channel and uid free, and
        # its create rides out the 53 its predecessor causes (_start); a destroy is done here.

    # -- helpers --------------------------------------------------------------------------------

    def _grace(self, known: JournalEntry | None) -> float:
        """How long a 404 may be a failover in progress (S7 FAQ): ``agora:failoverGrace``, or
        nothing when the journal knows the task is no longer running (this product stopped it,
        or ``snapshot-resources reconcile`` heard Agora's exit notification): a 404 then means
        gone (docs/decisions.md, "Ended sessions are not waited for one by one")."""
        if known is not None and known.phase is Phase.STOPPED:
            return 0.0
        return self.settings().failover_grace

    def _report_orphans(self, client: AgoraClient) -> None:
        """Refresh: once per process and stack, say which tasks run with no state holding them."""
        stack = _stack_once("report")
        if stack is not None:
            try:
                recovery.report(client, self.journal(), stack)
            except Exception as exc:  # a report must never fail the refresh
                log.warning("task journal: %s", exc)

    def _sweep_orphans(self, client: AgoraClient) -> None:
        """Destroy: once per process and stack, stop the tasks no state holds."""
        stack = _stack_once("sweep")
        if stack is not None:
            try:
                recovery.sweep(client, self.journal(), stack)
            except Exception as exc:
                log.warning("task journal: %s", exc)

    def _held_by_engine(self, outs: Mapping[str, Any], sid: str) -> JournalEntry | None:
        """The engine passed ``sid``: its state holds the task, so the journal's open entries
        of it are done with. Returns the journal's record of its stop, if it was stopped."""
        app_id = str(plain(outs.get("appId", "")))
        if not sid or not app_id:
            return None
        try:
            journal = self.journal()
            journal.recorded(app_id, sid)
            return journal.stop_of(app_id, sid)
        except Exception as exc:  # the journal is a safety net: it never fails a diff or read
            log.warning("task journal: %s", exc)
            return None

    def _session(self, props: Mapping[str, Any]) -> _Session:
        inputs = changes.canonical_inputs(
            plain({k: props[k] for k in changes.INPUT_KEYS if k in props and props[k] is not None})
        )
        problems = input_problems(inputs)
        if problems:
            raise spec.SpecError(problems)
        session_spec = spec.parse_session(_session_part(inputs))
        storage: StorageTarget = inputs["storage"]
        return _Session(
            app_id=str(inputs["appId"]),
            spec=session_spec,
            storage=storage,
            token=inputs.get("token"),
            inputs=inputs,
        )

    def _token(self, session: _Session, settings: ProviderSettings) -> tuple[str | None, str | None]:
        """The given token, else one built from the App Certificate, else none (certificate off)."""
        if session.token:
            return session.token, _iso_from_s(token_expiry(session.token))
        if not settings.app_certificate:
            return None, None
        from snapshot_resources.agora import token as rtc_token

        issued = int(time.time())
        built = rtc_token.build_rtc_token(
            app_id=session.app_id,
            app_certificate=settings.app_certificate,
            channel_name=session.spec.cname,
            uid=int(session.spec.uid),
            token_expire=rtc_token.MAX_TOKEN_LIFETIME_SECONDS,
            issued_at=issued,
        )
        return built, _iso_from_s(issued + rtc_token.MAX_TOKEN_LIFETIME_SECONDS)

    def _stop_after_failed_create(
        self, client: AgoraClient, session: _Session, resource_id: str, sid: str
    ) -> None:
        """Best effort, when create fails unexpectedly after start: nothing will be recorded.
        A task that cannot be stopped stays in the task journal for the next run."""
        from snapshot_resources.agora import wire

        body = wire.stop_body(session.spec.cname, session.spec.uid)
        key = TaskKey(session.app_id, session.spec.cname, session.spec.uid)
        try:
            client.stop_quietly(
                session.app_id, resource_id, sid, body,
                failover_grace=self.settings().failover_grace,
            )
        except Exception as exc:
            recovery.say(
                f"create failed after Agora started task {sid} (channel {session.spec.cname!r}, "
                f"uid {session.spec.uid}) and it could not be stopped ({type(exc).__name__}: "
                f"{exc}); it is kept in the task journal ({self.journal().where}): the next "
                "`pulumi up` adopts or stops it")
            return
        self.journal().stopped(key, sid, resource_id)

    @staticmethod
    def _report_gone(sid: str, outs: Mapping[str, Any], why: str) -> None:
        # Refresh drops the resource and the next `pulumi up` starts a new session; say why on
        # stderr, which the engine shows to the user (docs/pulumi-dynamic.md section 1, "Logging").
        expires = outs.get("tokenExpiresAt")
        if isinstance(expires, str) and expires < _now_iso():
            why += f"; its RTC token expired at {expires} and Cloud Recording cannot renew tokens (S3)"
        recovery.say(
            f"session {sid} on channel {outs.get('cname')!r} has ended ({why}); "
            "refresh drops it and the next `pulumi up` starts a new one"
        )


_STORED_SETTINGS_NOTE: Final = (
    "On `pulumi refresh` and `pulumi destroy`, Pulumi configures this provider from the settings "
    "the last `pulumi up` stored in the state (agora:customerId, agora:customerSecret, "
    "agora:endpoint and the other agora:* settings), not from the stack file. If they changed "
    "since (a rotated secret), run `pulumi up` first, or add `--run-program` so that Pulumi runs "
    "the program and uses the current ones.")

_STACKS_DONE: Final[set[tuple[str, str]]] = set()
_STACKS_LOCK: Final = threading.Lock()


def _stack_once(purpose: str) -> str | None:
    """The stack of the call being served (from its URN), the first time ``purpose`` asks for
    it in this process; None otherwise, or when the URN is unknown (provider_process off)."""
    operation = provider_process.current()
    stack = stack_of(operation.urn if operation is not None else None)
    if stack is None:
        return None
    with _STACKS_LOCK:
        if (purpose, stack) in _STACKS_DONE:
            return None
        _STACKS_DONE.add((purpose, stack))
    return stack


def _waiting_note(sid: str, outs: Mapping[str, Any]) -> Callable[[float], None]:
    """What a user hears when a 404 is being ridden out, rather than silence."""
    def note(seconds: float) -> None:
        recovery.say(f"session {sid} on channel {outs.get('cname')!r}: Agora answers 404 (the "
                     f"task ended, or is failing over to another server, S7); waiting up to "
                     f"{seconds:.0f} s (agora:failoverGrace) before taking it as ended")
    return note


def _unparsable_note(resource_id: str, outs: Mapping[str, Any]) -> str:
    recording = outs.get("recordingConfig")
    idle = recording.get("maxIdleTime") if isinstance(recording, Mapping) else None
    idle_s = int(idle) if isinstance(idle, int | float) else rules.MAX_IDLE_TIME.default
    return (f"Agora cannot parse its resource ID {resource_id} (400 code 1001, S18): it is not "
            f"one this Agora endpoint issued (agora:endpoint changed, or an emulator restarted "
            f"under a deployed stack), so its task cannot be queried or stopped through it; if "
            f"that task still runs, it ends by itself {idle_s} s after the last user stops "
            f"publishing (maxIdleTime)")


@dataclass(frozen=True)
class _Confirmed:
    """What create records about a started task: its last status (None if never read), when
    it started capturing, and a warning for the user when that is not a confirmed run."""

    status: int | None
    slice_start_time: int | None = None
    warning: str | None = None


def _unconfirmed(sid: str, status: int | None, why: str) -> _Confirmed:
    return _Confirmed(status, None, (
        f"session {sid} was started, but {why}; it is recorded in the state (status "
        f"{status if status is not None else 'unknown'}). Run `pulumi refresh` to see its state."
    ))


class CreateFailedError(RuntimeError):
    """Create did not produce a running task, and none is left running (``sid`` says which)."""

    def __init__(self, message: str, sid: str) -> None:
        super().__init__(message)
        self.sid = sid


def _create_failed(sid: str, why: str, outcome: str) -> CreateFailedError:
    return CreateFailedError(f"session {sid} did not start: {why}; {outcome}", sid)


def _idle_end(session: _Session) -> str:
    idle = session.spec.recordingConfig.maxIdleTime
    return f"{idle} s after the last user stops publishing (maxIdleTime)"


def _resource_expires_at(outs: Mapping[str, Any]) -> float | None:
    """Unix seconds the session's resource ID expires: the output, or for a state written before
    it existed, ``startedAt`` + ``resourceExpiredHour`` (S2)."""
    lifetime = outs.get("resourceExpiredHour", rules.RESOURCE_EXPIRED_HOUR.default)
    for text, hours in ((outs.get("resourceExpiresAt"), 0), (outs.get("startedAt"), lifetime)):
        if not isinstance(text, str) or not isinstance(hours, int | float):
            continue
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        return at + float(hours) * 3600
    return None


def _resource_id_renewal_due(olds: Mapping[str, Any]) -> bool:
    expires = _resource_expires_at(olds)
    hours = olds.get("resourceExpiredHour", rules.RESOURCE_EXPIRED_HOUR.default)
    if expires is None or not isinstance(hours, int | float):
        return False
    return expires - time.time() < rules.resource_id_renew_before(int(hours))


def _expired_note(sid: str, outs: Mapping[str, Any]) -> str:
    expires = _resource_expires_at(outs)
    when = _iso_from_s(int(expires)) if expires is not None else "an unknown time"
    recording = outs.get("recordingConfig")
    idle = recording.get("maxIdleTime") if isinstance(recording, Mapping) else None
    idle_s = int(idle) if isinstance(idle, int | float) else rules.MAX_IDLE_TIME.default
    token = outs.get("tokenExpiresAt")
    ends = f"{idle_s} s after the last user stops publishing (maxIdleTime)"
    if isinstance(token, str):
        ends += f", or when its RTC token expires at {token}"
    return (f"session {sid} on channel {outs.get('cname')!r}: its resource ID expired at {when} "
            f"(resourceExpiredHour), so Agora no longer lets it be queried or stopped; if it "
            f"still runs, it ends {ends}")


def token_expiry(token: str) -> int | None:
    """Unix time a given AccessToken2 expires, or None when it cannot be read (not an error)."""
    from snapshot_resources.agora import token as rtc_token

    try:
        return rtc_token.token_expires_at(token)
    except ValueError:
        return None


def _session_part(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if k not in ("storage", "token")}


def input_problems(inputs: Mapping[str, Any]) -> list[spec.Problem]:
    """Every rule broken by a SnapshotSession's inputs; values not known yet are skipped.

    During preview a storage target created in the same deployment is unknown; ``spec`` treats an
    unknown value as present and valid and skips every cross-field rule that depends on it
    (design.md "check()").  The storage target is checked in its wire shape.
    """
    values = plain(dict(inputs))  # Unknown values pass through plain() unchanged
    problems: list[spec.Problem] = []
    if values.get("appId") in (None, ""):
        # A resource needs an App ID (a stack-file session may inherit agora:appId); its format
        # is checked by session_problems when present.
        problems.append(spec.Problem(("appId",), f"is required: {rules.APP_ID.text}", rules.APP_ID.id))
    # The token is checked with the session's keys (a non-empty string, rules.RTC_TOKEN): left
    # out, a number or an empty token passed check and failed create.
    session_keys = {k: v for k, v in values.items() if k != "storage"}
    problems.extend(spec.session_problems(session_keys, is_unknown=is_unknown))
    if "storage" not in values:
        problems.append(spec.Problem(("storage",), "is required: a StorageTarget (Agora's "
                                     "storageConfig), e.g. a storage component's target",
                                     rules.STORAGE_TARGET.id))
    else:
        problems.extend(
            spec.storage_target_problems(values["storage"], path=("storage",), is_unknown=is_unknown)
        )
    return problems


# Keys the engine or SnapshotSession puts beside the inputs: the pickled provider, and the declared
# outputs (sent as empty values so that their attributes exist; docs/pulumi-dynamic.md 4A).
_EXPECTED_KEYS: Final = frozenset({"__provider", *changes.INPUT_KEYS, *OUTPUT_KEYS})


def _unexpected_keys(news: Mapping[str, Any]) -> list[spec.Problem]:
    """A key the provider would silently ignore is a mistake (a misspelling, or an Agora field this
    resource does not take); ``recordingFileConfig`` gets its own rule (S3, S8)."""
    problems: list[spec.Problem] = []
    for key in sorted(set(news) - _EXPECTED_KEYS):
        if key in spec.SESSION_FORBIDDEN:
            rule = spec.SESSION_FORBIDDEN[key]
            problems.append(spec.Problem((key,), rule.text, rule.id))
        else:
            message = spec.unknown_key_message(key, changes.INPUT_KEYS)
            problems.append(spec.Problem((key,), message, rules.UNKNOWN_KEY.id))
    return problems


def _storage_location(storage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "vendor": storage.get("vendor"),
        "bucket": storage.get("bucket"),
        "prefix": "/".join(storage.get("fileNamePrefix", []) or []),
    }


def _iso_from_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_from_s(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# In the process `python -m pulumi.dynamic` runs (and only there): learn each call's URN and
# whether the engine still waits for it, and answer the product's own errors without a
# traceback (provider_process; a no-op anywhere else, or with the switch off).
provider_process.install(expected=(errors.AgoraError, spec.SpecError, ProviderConfigError,
                                   CreateFailedError, provider_process.OperationCancelled))
