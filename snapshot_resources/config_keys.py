"""The keys of a stack's config this product reads, and the rules both ``validate`` and the
program apply to them, so that a stack file either passes both or fails both.

``PROVIDER_SETTINGS`` declares the provider's ``agora:*`` settings once (which are secrets, which
environment variable stands in); ``ProviderSettings.from_config`` reads exactly these
(``tests/test_stack_files.py``).  ``key_problems`` finds keys that look like this product's but
that the program would never read (another project's namespace, a typo, an unknown ``agora:``
setting, a mis-cased ``agora:appid``); ``app_id_problems`` a stack without any App ID for a
session.  ``set_secret_command`` spells the ``pulumi config set --secret`` that encrypts a value.

A Pulumi stack file names keys ``<namespace>:<key>``; a key without a namespace belongs to the
project (the CLI prefixes it with the project's name, ``stackConfigNamespacedWithProject``).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from snapshot_resources import rules, shared_store
from snapshot_resources.spec import STACK_KEYS, Problem

NAMESPACE: Final = "agora"
"""The namespace of the provider's settings (``agora:appId``, ``agora:customerSecret`` ...)."""


@dataclass(frozen=True)
class Setting:
    """One ``agora:<key>`` setting: ``secret`` values belong in the stack file encrypted
    (``pulumi config set --secret``); ``env`` is the environment variable read when it is unset."""

    key: str
    secret: bool = False
    env: str | None = None
    secret_when: Callable[[str], bool] | None = None
    """For a setting secret only in some forms (a store URL with a password)."""

    @property
    def name(self) -> str:
        return f"{NAMESPACE}:{self.key}"

    def holds_secret(self, value: object) -> bool:
        """Whether ``value`` of this setting belongs encrypted in the stack file."""
        if self.secret_when is not None:
            return isinstance(value, str) and self.secret_when(value)
        return self.secret


PROVIDER_SETTINGS: Final = (
    Setting("appId"),  # read by the program (sessions without appId), not by the provider
    Setting("customerId", secret=True, env="AGORA_CUSTOMER_ID"),
    Setting("customerSecret", secret=True, env="AGORA_CUSTOMER_SECRET"),
    Setting("appCertificate", secret=True, env="AGORA_APP_CERTIFICATE"),
    Setting("endpoint", env="AGORA_ENDPOINT"),
    Setting("startTimeout"),
    Setting("pollInterval"),
    Setting("failoverGrace"),
    Setting("qps"),
    Setting("retryDelayScale"),
    Setting("exitTimeout"),
    Setting("taskJournal", env="AGORA_TASK_JOURNAL"),
    Setting("sharedStore", env=shared_store.ENV, secret_when=shared_store.holds_secret),
)
SETTINGS_BY_KEY: Final = {s.key: s for s in PROVIDER_SETTINGS}
APP_ID_KEY: Final = SETTINGS_BY_KEY["appId"].name

_NEAR: Final = 0.75  # difflib ratio from which a key counts as a misspelling of ours


def full_key(key: str, project: str) -> str:
    """``key`` with its namespace: a key without one is the project's (as the CLI reads it)."""
    return key if ":" in key else f"{project}:{key}"


def _near(word: str, choices: Iterable[str]) -> str | None:
    options = list(choices)
    for option in options:
        if option.lower() == word.lower():
            return option
    close = difflib.get_close_matches(word, options, n=1, cutoff=_NEAR)
    return close[0] if close else None


def key_problems(keys: Iterable[str], project: str, *, source: str = "Pulumi.yaml") -> list[Problem]:
    """Config keys (namespaced) that this product would silently not read, each at
    ``("config", key)``: ``<other>:storage``/``<other>:sessions`` and near misses of them, keys
    of a namespace spelt like the project's, near misses of ``<project>:storage``/``sessions``,
    and ``agora:`` keys that are no setting (``agora:appid`` for ``agora:appId``).  ``source``
    says where the project's name came from, for the message."""
    problems: list[Problem] = []
    ours = [f"{project}:{k}" for k in STACK_KEYS]
    for key in keys:
        namespace, _, short = key.partition(":")
        if namespace == NAMESPACE:
            if short not in SETTINGS_BY_KEY:
                hint = _near(short, SETTINGS_BY_KEY)
                known = f"did you mean {NAMESPACE}:{hint}?" if hint else (
                    "the settings are " + ", ".join(s.name for s in PROVIDER_SETTINGS))
                problems.append(Problem(("config", key), f"{key!r} is not a setting of this "
                                        f"provider (keys are case-sensitive); {known}",
                                        rules.UNKNOWN_KEY.id))
            continue
        stack_key = short if short in STACK_KEYS else _near(short, STACK_KEYS)
        if namespace == project:
            if short not in STACK_KEYS and stack_key is not None:
                problems.append(Problem(("config", key), f"{key!r} is not read; did you mean "
                                        f"{project}:{stack_key}?", rules.PROJECT_KEYS.id))
            continue
        if stack_key is None and _near(namespace, [project]) is None:
            continue
        meant = f"{project}:{stack_key or short}"
        problems.append(Problem(
            ("config", key),
            f"is not read: this project is named {project!r} ({source}), so the program reads "
            f"{meant if meant in ours else ' and '.join(ours)}; rename the key to {meant}"
            + (" (or write it without a namespace)" if stack_key else ""),
            rules.PROJECT_KEYS.id))
    return problems


def app_id_problems(sessions: object, app_id: object) -> list[Problem]:
    """A stack without ``agora:appId`` in which some session has no ``appId`` of its own: the
    session would have no App ID at deploy (rule app_id)."""
    if app_id not in (None, "") or not isinstance(sessions, Mapping):
        return []
    missing = [str(name) for name, entry in sessions.items()
               if isinstance(entry, Mapping) and entry.get("appId") in (None, "")]
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return [Problem(("config", APP_ID_KEY),
                    f"is not set, and session{'s' if len(missing) > 1 else ''} {shown} "
                    f"{'have' if len(missing) > 1 else 'has'} no appId of its own: set it with "
                    f"`pulumi config set {APP_ID_KEY} <App ID>`; {rules.APP_ID.text}",
                    rules.APP_ID.id)]


_PATH_SEGMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def config_path(namespace: str, path: Iterable[str | int]) -> str:
    """A ``pulumi config set --path`` key: ``ns:sessions.lobby.token``; a segment that is not a
    plain name is written ``["a.b"]``, an index ``[0]`` (Pulumi's property path syntax)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PATH_SEGMENT.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return f"{namespace}:{text}"


def set_secret_command(key: str, *, path: bool, stack: str | None = None) -> str:
    """The command that stores ``key`` encrypted (it asks for the value, or reads it from
    standard input), e.g. ``pulumi config set --path --secret 'app:storage.main.secretKey'``."""
    words = ["pulumi", "config", "set", *(["--path"] if path else []), "--secret", key]
    if stack is not None:
        words += ["--stack", stack]
    return " ".join(shlex.quote(word) for word in words)
