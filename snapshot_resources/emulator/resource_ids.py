"""Resource ids that carry what they were issued for.

Agora's resource ids are long opaque strings that the service can parse: a bad one is error 1001
("cannot be parsed"), one used with another App ID is 1003 (S18).  The emulator makes them
self-describing (App ID, cname, uid, issue time, signed with a per-server key), so it can answer
1001/1003/433 for any id it ever issued without keeping every id in memory: the soak test runs
thousands of sessions and the emulator's memory must stay flat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from snapshot_resources.emulator.errors import ServiceError

_SIGNATURE_BYTES = 12


@dataclass(frozen=True)
class ResourceToken:
    app_id: str
    cname: str
    uid: str
    issued_at: float  # emulated Unix seconds


class ResourceIdCodec:
    """Issues and parses resource ids; the key lives only in this process."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        # Ids issued elsewhere that this server was told to honour (``Backend.restore_task``).
        self._restored: dict[str, ResourceToken] = {}

    def restore(self, resource_id: str, token: ResourceToken) -> None:
        """Honour ``resource_id``, issued by another server (an earlier emulator), for ``token``."""
        self._restored[resource_id] = token

    def issue(self, token: ResourceToken) -> str:
        payload = json.dumps(
            {"a": token.app_id, "c": token.cname, "u": token.uid,
             "t": round(token.issued_at * 1000), "n": secrets.token_hex(6)},
            separators=(",", ":"), ensure_ascii=False,
        ).encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")

    def parse(self, resource_id: str) -> ResourceToken:
        """Raise 400 code 1001 when ``resource_id`` was not issued (or restored) here (S18)."""
        restored = self._restored.get(resource_id)
        if restored is not None:
            return restored
        try:
            raw = base64.urlsafe_b64decode(resource_id + "=" * (-len(resource_id) % 4))
            signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
            if not hmac.compare_digest(signature, expected):
                raise ValueError("signature")
            data = json.loads(payload)
            return ResourceToken(app_id=str(data["a"]), cname=str(data["c"]),
                                 uid=str(data["u"]), issued_at=int(data["t"]) / 1000)
        except (ValueError, KeyError, TypeError):
            raise ServiceError(400, 1001, "invalid resource id: cannot be parsed, call acquire "
                               "(S18)") from None
