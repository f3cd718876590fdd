"""Routes of the emulator: Agora's REST paths (S1, docs/agora-api.md 1.3) and the ``/_emulator/`` admin API.

REST (Basic auth, JSON; a wrong path or method answers
``404 {"message":"no Route matched with those values"}``, S7):

    POST /v1/apps/{appid}/cloud_recording/acquire
    POST /v1/apps/{appid}/cloud_recording/resourceid/{rid}/mode/{mode}/start
    GET  /v1/apps/{appid}/cloud_recording/resourceid/{rid}/sid/{sid}/mode/{mode}/query
    POST /v1/apps/{appid}/cloud_recording/resourceid/{rid}/sid/{sid}/mode/{mode}/update
    POST /v1/apps/{appid}/cloud_recording/resourceid/{rid}/sid/{sid}/mode/{mode}/updateLayout
    POST /v1/apps/{appid}/cloud_recording/resourceid/{rid}/sid/{sid}/mode/{mode}/stop
    GET  /v1/ncs/ip

Admin (no auth: the emulator listens on loopback; JSON in and out; path segments are
percent-decoded, so a cname with spaces or ``#`` is sent percent-encoded):

    POST   /_emulator/channels/{appid}/{cname}/users         {"uid": "123", "video": true,
                                                               "audio": true}  join
    POST   /_emulator/channels/{appid}/{cname}/users/{uid}   {"video": false}  stop publishing
                                                              video, or true to resume
    DELETE /_emulator/channels/{appid}/{cname}/users/{uid}   leave the channel
    GET    /_emulator/channels                                channels and their users
    POST   /_emulator/tasks/{sid}/failover                    {"downtimeSeconds": 30} optional
    GET    /_emulator/tasks                                   tasks, live and recently gone
    PUT    /_emulator/tasks/{sid}                             {"appId": "...", "resourceId":
                                                               "...", "cname": "...", "uid":
                                                               "...", "clientRequest": {...},
                                                               "resourceExpiredHour": 720}
                                                              take over a task another emulator
                                                              started, with its ids (a state
                                                              written against it)
    PUT    /_emulator/faults                                  {"rate": 0.2, "kinds": ["5xx",
                                                               "206", "429", "reset"],
                                                               "operations": ["start"],
                                                               "latency_ms": 0, "seed": 0}
    GET    /_emulator/faults                                  the current plan
    DELETE /_emulator/faults                                  no more faults
    PUT    /_emulator/credentials                             {"customerId": "...", "customerSecret":
                                                              "..."} accept these from now on (a
                                                              secret reset in Agora Console)
    GET    /_emulator/counters                                requests, statuses, limits, tasks
    GET    /_emulator/requests                                the request log (method, path,
                                                               status; never headers or bodies)
    GET    /_emulator/events                                  recent NCS events (as posted)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

_TASK: Final = (r"/v1/apps/(?P<appid>[^/]+)/cloud_recording/resourceid/(?P<rid>[^/]+)"
                r"/sid/(?P<sid>[^/]+)/mode/(?P<mode>[^/]+)")


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]


def _route(operation: str, method: str, pattern: str) -> Route:
    return Route(operation, method, re.compile(pattern))


# Paths and methods are case-sensitive (S10): the patterns are matched exactly.
REST_ROUTES: Final = (
    _route("acquire", "POST", r"/v1/apps/(?P<appid>[^/]+)/cloud_recording/acquire"),
    _route("start", "POST", r"/v1/apps/(?P<appid>[^/]+)/cloud_recording/resourceid/"
                            r"(?P<rid>[^/]+)/mode/(?P<mode>[^/]+)/start"),
    _route("query", "GET", _TASK + "/query"),
    _route("update", "POST", _TASK + "/update"),
    _route("updateLayout", "POST", _TASK + "/updateLayout"),
    _route("stop", "POST", _TASK + "/stop"),
    _route("ncsIp", "GET", r"/v1/ncs/ip"),
)

ADMIN_PREFIX: Final = "/_emulator/"
ADMIN_ROUTES: Final = (
    _route("join", "POST", r"/_emulator/channels/(?P<appid>[^/]+)/(?P<cname>[^/]+)/users"),
    _route("publish", "POST",
           r"/_emulator/channels/(?P<appid>[^/]+)/(?P<cname>[^/]+)/users/(?P<uid>[^/]+)"),
    _route("leave", "DELETE",
           r"/_emulator/channels/(?P<appid>[^/]+)/(?P<cname>[^/]+)/users/(?P<uid>[^/]+)"),
    _route("channels", "GET", r"/_emulator/channels"),
    _route("failover", "POST", r"/_emulator/tasks/(?P<sid>[^/]+)/failover"),
    _route("tasks", "GET", r"/_emulator/tasks"),
    _route("restoreTask", "PUT", r"/_emulator/tasks/(?P<sid>[^/]+)"),
    _route("setFaults", "PUT", r"/_emulator/faults"),
    _route("getFaults", "GET", r"/_emulator/faults"),
    _route("clearFaults", "DELETE", r"/_emulator/faults"),
    _route("credentials", "PUT", r"/_emulator/credentials"),
    _route("counters", "GET", r"/_emulator/counters"),
    _route("requests", "GET", r"/_emulator/requests"),
    _route("events", "GET", r"/_emulator/events"),
)


def match(routes: tuple[Route, ...], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The operation and its percent-decoded path parameters, or None (wrong path or method)."""
    for route in routes:
        found = route.pattern.fullmatch(path)
        if found is not None and route.method == method:
            return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
    return None
