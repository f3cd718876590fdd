"""Secret redaction for everything the Agora client says: log lines, exception texts, error bodies.

Customer id/secret travel only in the ``Authorization`` header and request bodies are never
logged, yet a server may quote a request back in its answer (a reason, a header, a key of an error
body).  So every text the client builds from a response or an exception passes through a
``Redactor`` holding the credentials (and their Basic-auth token, S22) and every secret found in
the request's body (``body_secrets``): storageConfig keys, STS and RTC tokens, the decryption
secret and salt (docs/agora-api.md 3.3, 3.4, 3.6), by their field names in ``rules.SECRET_FIELDS``.
CONTRIBUTING.md, "Secrets".
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .. import rules

__all__ = ["MIN_SECRET_LEN", "SECRET_KEYS", "Redactor", "body_secrets", "redact_tree"]

# Body keys whose string values are secrets, compared without case (a server may echo a key in
# another case).
SECRET_KEYS: Final = frozenset(key.lower() for key in rules.SECRET_FIELDS)
MIN_SECRET_LEN: Final = 4  # masking a 1-3 character value would garble every message

# What Go's encoding/json escapes beyond RFC 8259 by default (HTMLEscape and the JS separators).
_GO_HTML_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


class Redactor:
    """Masks known secret strings in text, in every form a server or library may print them.

    Each secret of at least ``MIN_SECRET_LEN`` characters is masked as ``***`` verbatim and in
    the forms of ``secret_forms``: JSON-escaped (a server quoting the request body back, ``"``,
    ``\\`` and non-ASCII escaped) and URL-encoded (``quote``/``quote_plus``).  The client passes
    the Basic-auth token (base64 of ``customerId:customerSecret``, the ``Authorization`` header,
    S22) as one of the secrets, so that form and its encodings are masked too.  Longest form
    first, so a secret's prefix or a shorter form inside a longer one never leaks.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        # The length rule applies to the secret itself: a short value's encodings are no safer to
        # mask (they would garble every message just the same).
        self._originals = frozenset(
            s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LEN
        )
        forms = {form for secret in self._originals for form in secret_forms(secret)}
        self._secrets = tuple(sorted(forms, key=len, reverse=True))

    def extended(self, more: Iterable[str]) -> Redactor:
        """This redactor and ``more`` secrets (a request body's)."""
        return Redactor((*self._originals, *more))

    def __call__(self, text: str) -> str:
        # Repeat until no secret is left: a replacement can join pieces into another secret.
        # Each pass shortens the text (secrets are longer than the mask), so this ends.
        while any(secret in text for secret in self._secrets):
            for secret in self._secrets:
                text = text.replace(secret, "***")
        return text

    def optional(self, text: str | None) -> str | None:
        """``text`` masked, or None."""
        return None if text is None else self(text)


def secret_forms(secret: str) -> set[str]:
    """``secret`` as it can appear in text, each form at least ``MIN_SECRET_LEN`` long.

    * verbatim, and without trailing ``=`` (base64 padding dropped by a logger or a base64url
      encoder);
    * JSON string content (``json.dumps`` without the quotes): ASCII-escaped and not, each also
      with ``/`` escaped as ``\\/`` (PHP, some Java encoders) and in the HTML-safe form of Go's
      ``encoding/json`` (``<``, ``>``, ``&``, U+2028, U+2029 as ``\\u....``);
    * URL-encoded: ``quote`` with ``safe=""`` and the default ``"/"``, ``quote_plus`` likewise,
      each also with lower-case percent escapes (RFC 3986 makes the hex case-insensitive).
    """
    forms = {secret, secret.rstrip("=")}
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
        html_safe = escaped
        for char, escape in _GO_HTML_ESCAPES:
            html_safe = html_safe.replace(char, escape)
        forms.add(html_safe)
    for quote in (urllib.parse.quote, urllib.parse.quote_plus):
        for safe in ("", "/"):
            # surrogatepass: a lone surrogate (possible in a str from JSON) must not make the
            # redactor itself raise; it is encoded the way a lenient encoder would print it.
            encoded = quote(secret, safe=safe, errors="surrogatepass")
            head, *escapes = encoded.split("%")
            forms.add(encoded)
            forms.add(head + "".join(f"%{e[:2].lower()}{e[2:]}" for e in escapes))
    return {form for form in forms if len(form) >= MIN_SECRET_LEN}


def body_secrets(value: Any) -> list[str]:
    """String values under secret keys (``SECRET_KEYS``), at any depth of a request body."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS and isinstance(item, str):
                found.append(item)
            else:
                found.extend(body_secrets(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(body_secrets(item))
    return found


def redact_tree(value: Any, redact: Redactor) -> Any:
    """``value`` (parsed JSON) with every string, keys included, passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        # A server may echo a secret as a key (e.g. {"<accessKey>": "unknown key"}).
        return {redact(str(k)): redact_tree(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, redact) for v in value]
    return value
