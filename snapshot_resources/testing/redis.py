"""Test kit for the shared store: ``run_redis`` and the ``redis_server`` fixture.

``run_redis()`` starts a real ``redis-server`` (or ``valkey-server``, wire-compatible) on a free
loopback port, with its data in an append-only file (a restarted server keeps it, as a managed
store does) and, when asked, a password; it yields a ``RedisServer``
(``url``, ``host``, ``port``, ``password``; ``stop()``, ``start()`` on the same port, ``freeze()``
/ ``thaw()`` to make it stop answering without closing connections, ``client()``); leaving the
block stops it. ``redis_server`` is the same as a pytest fixture. ``make test`` installs Debian's
``redis-server`` when none is on PATH; without one the fixture skips (and fails with ``CI``
set), saying how to get one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    import redis

__all__ = ["RedisServer", "redis_server", "redis_server_binary", "run_redis"]

BINARIES: Final = ("redis-server", "valkey-server")
_START_TIMEOUT: Final = 10.0
_PORT_ATTEMPTS: Final = 5


def redis_server_binary() -> str | None:
    """The path of ``redis-server`` or ``valkey-server`` on PATH, or None."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """A ``redis-server`` process on loopback (module docstring), as ``run_redis`` yields it.

    ``binary`` (str): the server's path.  ``directory`` (Path): its working directory (log,
    append-only file).  ``port`` (int).  ``password`` (str | None): ``requirepass``.  ``host``
    (str, ``127.0.0.1``).  ``process`` (``subprocess.Popen`` | None): the running server.
    """

    binary: str
    directory: Path
    port: int
    password: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (again, on the same port), and wait until it answers PING."""
        if self.running:
            return
        arguments = [self.binary, "--port", str(self.port), "--bind", self.host,
                     "--save", "", "--appendonly", "yes", "--dir", str(self.directory),
                     "--protected-mode", "yes", "--daemonize", "no",
                     "--logfile", str(self.directory / "redis.log")]
        if self.password:
            arguments += ["--requirepass", self.password]
        self.process = subprocess.Popen(  # noqa: S603 - the server binary found on PATH
            arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OSError(f"{self.binary} exited with {self.process.returncode} on port "
                              f"{self.port}: {self._log_tail()}")
            with contextlib.suppress(Exception), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.02)
        self.stop()
        raise OSError(f"{self.binary} did not answer within {_START_TIMEOUT:g} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s): clients get connection errors."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a frozen server must run to exit
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a slow store)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def client(self, **options: Any) -> redis.Redis:
        """A redis-py client of this server (1 s timeouts unless told)."""
        import redis

        options.setdefault("socket_timeout", 1.0)
        options.setdefault("socket_connect_timeout", 1.0)
        return redis.Redis(host=self.host, port=self.port, password=self.password, **options)

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        return " | ".join(text.strip().splitlines()[-3:])


@contextlib.contextmanager
def run_redis(*, password: str | None = None) -> Iterator[RedisServer]:
    """A ``redis-server`` on ``127.0.0.1:<free port>`` (module docstring); ``password`` sets
    ``requirepass``. Raises ``FileNotFoundError`` when no server binary is on PATH and
    ``OSError`` when it cannot start."""
    binary = redis_server_binary()
    if binary is None:
        raise FileNotFoundError("no redis-server or valkey-server on PATH (Debian: apt-get "
                                "install redis-server; `make test` does it when run as root)")
    with tempfile.TemporaryDirectory(prefix="redis-test-") as directory:
        server: RedisServer | None = None
        for attempt in range(_PORT_ATTEMPTS):
            server = RedisServer(binary, Path(directory), _free_port(), password)
            try:
                server.start()
                break
            except OSError:  # the port was taken between the probe and the start
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
        assert server is not None
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free loopback port, stopped after the test; skips (fails
    with ``CI`` set) when none is installed."""
    if redis_server_binary() is None:
        message = ("no redis-server on PATH: `make test` installs Debian's (as root), or "
                   "apt-get install redis-server")
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: these tests may not skip)")
        pytest.skip(message)
    with run_redis() as server:
        yield server
