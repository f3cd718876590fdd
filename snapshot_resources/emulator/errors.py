"""Errors the emulator answers with, in Agora's two shapes (S7, docs/agora-api.md 4.1).

    EmulatorError
     ├── GatewayError   {"message": ...}        auth (401), routing (404), rate limit (429)
     └── ServiceError   {"code": N, "reason": ...}  everything the recording service decides

Each carries the HTTP status it is sent with, so the HTTP layer only serializes it.
"""

from __future__ import annotations

import traceback
from pathlib import PurePath
from typing import Any


class EmulatorError(Exception):
    """An error response: an HTTP status and a JSON body."""

    status: int

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


class GatewayError(EmulatorError):
    """The API gateway's shape, ``{"message": ...}`` (S7; G1 treats a body without ``code`` as a
    gateway error)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class ServiceError(EmulatorError):
    """The recording service's shape, ``{"code": N, "reason": ...}`` (S7)."""

    def __init__(self, status: int, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}


# The gateway answers, word for word as S7 quotes them.
def unauthorized() -> GatewayError:
    """No Authorization header (S7, 1.2)."""
    return GatewayError(401, "Unauthorized")


def invalid_credentials() -> GatewayError:
    """Wrong credentials, or not Basic (S7, S18, 1.2)."""
    return GatewayError(401, "Invalid authentication credentials")


def no_route() -> GatewayError:
    """Wrong path or method (S7, S18, 1.3)."""
    return GatewayError(404, "no Route matched with those values")


def rate_limited() -> GatewayError:
    """Over the QPS limit of the App ID (S7, W3, 6.2)."""
    return GatewayError(429, "API rate limit exceeded")


# The service answers (S7 table, docs/agora-api.md 6.1).
def invalid_parameter(reason: str) -> ServiceError:
    """400 code 2: wrong type, misspelled, out of range, or missing (S7, S18, S10)."""
    return ServiceError(400, 2, reason)


def bad_request_format(reason: str) -> ServiceError:
    """400 code 8: header or body format (wrong Content-type, body not JSON) (S18)."""
    return ServiceError(400, 8, reason)


def worker_not_found() -> ServiceError:
    """404 code 404: the task does not exist, or is moving during failover (S7, S4-S6)."""
    return ServiceError(404, 404, "failed to find worker")


def describe_exception(error: BaseException) -> str:
    """An internal error for a log line or the admin API: its type and where it was raised, never
    its message, which can quote a storage key or token (CONTRIBUTING, Secrets)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {PurePath(last.filename).name}:{last.lineno} in {last.name}"
