"""Who hosts which channel, as RTC channel events tell it (S24).

A session that ended because its channel was idle (``maxIdleTime`` without a host, S3) would end
again ``maxIdleTime`` after a restart into the same empty channel.  The reconciler therefore asks
this model whether the channel has a host before restarting such a session.

The model holds, per channel, the uids of the broadcasters that joined and have not left.
Notifications may arrive out of order and more than once (S13): each user's events are applied
in the order of ``(ts, clientSeq)``, and an event older than the last one applied for that user
changes nothing.  A channel destroy (102) clears the channel unless a later join is known.
A user hosts from a streaming host's join (103), a communication-profile user's join (107) or a
switch to the host role (111) until the matching leave (104, 108) or a switch to audience (112)
(``events.HOST_ARRIVES``, ``events.HOST_LEAVES``).  Audience events (105, 106) do not count: an
audience alone leaves a live channel idle (S19).  Recorders are not users: the events of a Cloud
Recording bot (``platform`` 6, ``clientType`` 10, S24) and of the recorders' own uids are
ignored (a bot joining is not a user arriving).

Memory: one small entry per channel and per user ever seen (a known-empty channel must stay
known as empty).  Agora posts the events of every channel of the App ID, so the controller
applies only those of channels its sessions use (``note_seen`` for the rest): the model grows
with the stack, not with the application's traffic.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from snapshot_resources.events import (
    CLOUD_RECORDING_CLIENT_TYPE,
    HOST_ARRIVES,
    HOST_LEAVES,
    ChannelEvent,
)
from snapshot_resources.reconcile.notices import ChannelNotice

_LINUX: Final = 6  # payload.platform of a Linux client; clientType is sent only then (S24)

__all__ = ["ChannelPresence"]


@dataclass
class _Channel:
    hosts: set[str] = field(default_factory=set)
    last: dict[str, tuple[int, int]] = field(default_factory=dict)  # uid -> (ts, clientSeq)
    destroyed_at: int | None = None


class ChannelPresence:
    """Broadcasters per channel, from RTC channel events.  Thread-safe.

    ``apply(notice, ignore=...)`` updates the model and returns True when the channel went from no
    host to at least one (the moment a held session may restart).  ``occupied(cname)`` is True
    (a host is in), False (known empty: a leave or destroy was seen last) or None (no event about
    the channel yet).  ``seen_any`` says whether any channel event arrived at all: proof that
    Agora sends them to this receiver.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._seen_any = False

    @property
    def seen_any(self) -> bool:
        with self._lock:
            return self._seen_any

    def occupied(self, cname: str) -> bool | None:
        """True, False or None (class docstring)."""
        with self._lock:
            channel = self._channels.get(cname)
            return None if channel is None else bool(channel.hosts)

    def hosts(self, cname: str) -> frozenset[str]:
        """The uids hosting ``cname`` now (empty when none or unknown)."""
        with self._lock:
            channel = self._channels.get(cname)
            return frozenset(channel.hosts) if channel else frozenset()

    def note_seen(self) -> None:
        """A channel event arrived about a channel not tracked (``seen_any`` becomes True)."""
        with self._lock:
            self._seen_any = True

    def apply(self, notice: ChannelNotice, *, ignore: Collection[str] = ()) -> bool:
        """Apply one event; ``ignore``: uids that are recorders (not counted).  Returns True when
        the channel had no host before and has one now."""
        with self._lock:
            self._seen_any = True
            channel = self._channels.setdefault(notice.cname, _Channel())
            before = bool(channel.hosts)
            order = (notice.ts, notice.client_seq)
            bot = notice.platform == _LINUX and notice.client_type == CLOUD_RECORDING_CLIENT_TYPE
            if notice.event_type in (ChannelEvent.CHANNEL_CREATE, ChannelEvent.CHANNEL_DESTROY):
                if notice.event_type == ChannelEvent.CHANNEL_DESTROY:
                    # Hosts whose last known event is older than the destroy are gone.
                    channel.hosts = {uid for uid in channel.hosts
                                     if channel.last.get(uid, (0, 0))[0] > notice.ts}
                    channel.destroyed_at = notice.ts
            elif (notice.event_type in HOST_ARRIVES | HOST_LEAVES
                  and not bot and notice.uid not in ignore
                  and order > channel.last.get(notice.uid, (-1, -1))):
                channel.last[notice.uid] = order
                joined = notice.event_type in HOST_ARRIVES
                stale = channel.destroyed_at is not None and notice.ts < channel.destroyed_at
                if joined and not stale:
                    channel.hosts.add(notice.uid)
                else:
                    channel.hosts.discard(notice.uid)
            return not before and bool(channel.hosts)
