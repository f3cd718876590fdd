"""The shared store: one Redis (or Valkey) that every process of a platform team uses together
(docs/shared-store.md).

One setting turns it on: stack config ``agora:sharedStore`` (env ``AGORA_SHARED_STORE``; the
reconciler's ``--shared-store``), a ``redis://`` or ``rediss://`` (TLS) URL. Its password comes
from the URL (set the config as a Pulumi secret) or from ``AGORA_SHARED_STORE_PASSWORD``; it is
never printed: every message, log line, metric and exception names the store by ``redact(url)``.

What uses it: the request budget per App ID (``agora.shared_budget``), the task journal
(``journal_redis``) and the reconciler's replicas (``reconcile.replicas``). Without the setting,
nothing here is loaded and every process works alone, as before.

A store that fails never blocks a caller for long and never loses work: every call has a
connect and a read timeout (``CALL_TIMEOUT``, no retry inside the client), a failed call marks
the store down for ``RETRY_AFTER`` seconds during which no call is tried (``StoreUnavailable`` at
once), and each user falls back to what it does alone (a per-process share of the budget, the
local journal, a replica acting under Pulumi's lock only). The first failure of a process is said
once, on stderr (``say``) naming every fallback in use; the return is logged.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    import redis

__all__ = [
    "CALL_TIMEOUT",
    "ENV",
    "KEY_PREFIX",
    "PASSWORD_ENV",
    "RETRY_AFTER",
    "SCHEMES",
    "SharedStore",
    "SharedStoreConfigError",
    "StoreStatus",
    "StoreUnavailable",
    "connect",
    "holds_secret",
    "redact",
]

log = logging.getLogger("snapshot_resources.shared_store")

ENV: Final = "AGORA_SHARED_STORE"
"""The environment variable of the store's URL (stack config ``agora:sharedStore`` first)."""
PASSWORD_ENV: Final = "AGORA_SHARED_STORE_PASSWORD"  # noqa: S105 - a variable's name
"""The store's password, when the URL carries none."""
SCHEMES: Final = ("redis", "rediss")
KEY_PREFIX: Final = "agora-snapshots:"
"""Every key this product writes starts with it (docs/shared-store.md lists them all)."""
CALL_TIMEOUT: Final = 1.0
"""Seconds a connect, and a read, may take: a store slower than that counts as failed."""
RETRY_AFTER: Final = 5.0
"""Seconds a failed store is left alone before it is tried again."""

_T = TypeVar("_T")


class SharedStoreConfigError(ValueError):
    """``agora:sharedStore`` is not a usable URL (the message shows it redacted)."""


class StoreUnavailable(RuntimeError):  # noqa: N818 - a state, like TimeoutError
    """The store did not answer (or is left alone after a failure); the message is redacted."""


def redact(url: str) -> str:
    """``url`` with its password (and any query value) replaced by ``***``; the user name,
    host, port and database stay, so the store can be recognised."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<an unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    if parts.username is not None or parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:***@{netloc}" if parts.password is not None else f"{user}@{netloc}"
    query = "&".join(f"{name}=***" for name, _ in urllib.parse.parse_qsl(parts.query))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def holds_secret(url: str) -> bool:
    """Whether ``url`` carries what ``redact`` hides (a password, a query value): then it belongs
    in the stack file as a Pulumi secret."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return True  # unparsable: treat it as the worst case
    return parts.password is not None or bool(parts.query)


def _validated(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise SharedStoreConfigError(
            f"agora:sharedStore ({ENV}) must be a redis:// or rediss:// (TLS) URL, not "
            f"{redact(url)!r}")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise SharedStoreConfigError(
            f"agora:sharedStore: the port of {redact(url)} is not a number") from None
    if not parts.hostname:
        raise SharedStoreConfigError(f"agora:sharedStore: {redact(url)} names no host")
    return url.strip()


@dataclass(frozen=True)
class StoreStatus:
    """What ``SharedStore.status`` says (for ``/healthz`` and metrics; no secret).

    ``where`` (the redacted URL), ``up`` (the last call answered), ``failed_calls`` and
    ``outages`` (times it went from answering to failing) since the process started,
    ``last_error`` (redacted, or None)."""

    where: str
    up: bool
    failed_calls: int
    outages: int
    last_error: str | None


class SharedStore:
    """One store, as this process uses it (module docstring). Thread-safe.

    ``url`` (str): ``redis://[user:password@]host[:port][/db]`` or ``rediss://`` for TLS;
    redis-py's URL options (``?ssl_ca_certs=...``) pass through. ``password`` (str | None): used
    when the URL holds none (default: ``AGORA_SHARED_STORE_PASSWORD``). ``timeout`` (float, s):
    connect and read timeout of every call. ``retry_after`` (float, s). ``say`` (callable taking
    a line): where the one warning of a failure goes (default: stderr). Raises
    ``SharedStoreConfigError`` for a URL that is not one.
    """

    def __init__(self, url: str, *, password: str | None = None,
                 timeout: float = CALL_TIMEOUT, retry_after: float = RETRY_AFTER,
                 say: Callable[[str], None] | None = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._url = _validated(url)
        self.where = redact(self._url)
        self.retry_after = retry_after
        self._say = say or _stderr
        secret = password if password is not None else os.environ.get(PASSWORD_ENV) or None
        self._secrets = tuple(s for s in (urllib.parse.urlsplit(self._url).password, secret)
                              if s)
        options: dict[str, Any] = {
            "socket_timeout": timeout, "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0), "retry_on_timeout": False,
            "health_check_interval": 30, "client_name": "agora-snapshots",
        }
        if secret and urllib.parse.urlsplit(self._url).password is None:
            options["password"] = secret
        try:
            self.client: redis.Redis = redis.Redis.from_url(self._url, **options)
        except (ValueError, TypeError) as error:
            raise SharedStoreConfigError(
                f"agora:sharedStore: {self.where}: {self._redacted(str(error))}") from None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._up = True
        self._failed_calls = 0
        self._outages = 0
        self._last_error: str | None = None
        self._warned = False
        self._fallbacks: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"SharedStore({self.where!r})"

    @staticmethod
    def check_url(url: str) -> None:
        """Raise ``SharedStoreConfigError`` (redacted) unless ``url`` is a store URL."""
        _validated(url)

    def __getstate__(self) -> Any:
        raise TypeError("a SharedStore holds a connection and a password; it is not pickled")

    # -- calls ------------------------------------------------------------------------------

    def available(self) -> bool:
        """False while the store is left alone after a failure (``RETRY_AFTER``)."""
        with self._lock:
            return time.monotonic() >= self._down_until

    def run(self, what: str, call: Callable[[redis.Redis], _T]) -> _T:
        """``call(client)``, or ``StoreUnavailable`` when the store fails or is left alone.
        ``what`` names the use in messages (e.g. ``"request budget"``)."""
        import redis

        with self._lock:
            if time.monotonic() < self._down_until:
                raise StoreUnavailable(f"the shared store {self.where} is not answering "
                                       f"({self._last_error}); not tried again yet")
        try:
            result = call(self.client)
        except (redis.RedisError, OSError) as error:
            raise self._failed(what, error) from None
        with self._lock:
            came_back = not self._up
            self._up = True
        if came_back:
            log.warning("the shared store %s answers again: %s and the rest use it again",
                        self.where, what)
        return result

    def _failed(self, what: str, error: BaseException) -> StoreUnavailable:
        text = self._redacted(f"{type(error).__name__}: {error}")
        with self._lock:
            self._failed_calls += 1
            self._down_until = time.monotonic() + self.retry_after
            if self._up:
                self._outages += 1
            self._up = False
            self._last_error = text
            warn = not self._warned
            self._warned = True
            fallbacks = "; ".join(self._fallbacks.values())
        if warn:
            self._say(f"the shared store {self.where} failed ({text}, during the {what}); "
                      f"this process works alone until it answers again (tried every "
                      f"{self.retry_after:g} s){': ' + fallbacks if fallbacks else ''}. Said "
                      "once per run (docs/shared-store.md, \"When the store fails\")")
        else:
            log.info("shared store %s: %s failed: %s", self.where, what, text)
        return StoreUnavailable(f"the shared store {self.where} failed: {text}")

    def _redacted(self, text: str) -> str:
        for secret in self._secrets:
            for form in {secret, urllib.parse.quote(secret, safe=""),
                         urllib.parse.quote_plus(secret)}:
                text = text.replace(form, "***")
        return text.replace(self._url, self.where)

    def fallback(self, use: str, what_instead: str) -> None:
        """Register what ``use`` does while the store fails (said in the one warning)."""
        with self._lock:
            self._fallbacks[use] = what_instead

    def status(self) -> StoreStatus:
        with self._lock:
            return StoreStatus(self.where, self._up, self._failed_calls, self._outages,
                               self._last_error)

    def key(self, *parts: str) -> str:
        """``KEY_PREFIX`` + the parts joined with ``:``."""
        return KEY_PREFIX + ":".join(parts)

    def close(self) -> None:
        self.client.close()


def _stderr(message: str) -> None:
    try:
        print(f"snapshot-resources: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        log.warning("%s", message)


_STORES: dict[str, SharedStore] = {}
_STORES_LOCK: Final = threading.Lock()


def connect(url: str, *, say: Callable[[str], None] | None = None) -> SharedStore:
    """The process's one ``SharedStore`` for ``url`` (made at the first call; nothing is sent
    until it is used). Raises ``SharedStoreConfigError`` for a bad URL."""
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = _STORES[url] = SharedStore(url, say=say)
        return store
