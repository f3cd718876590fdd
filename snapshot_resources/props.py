"""Helpers for property bags as the Pulumi engine hands them to a dynamic provider.

Two facts from docs/pulumi-dynamic.md section 4C shape this module: numbers cross the wire as
protobuf doubles (``2`` arrives as ``2.0``), and during preview a value that depends on another
resource arrives as ``pulumi.output.Unknown``.  Agora wants integers (``"captureInterval": 5``, not
``5.0``) and file names carry uids as digits, so every value is normalised before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown


def plain(value: Any) -> Any:
    """A deep copy with integral floats turned back into ints and tuples into lists.

    ``True`` stays a bool (bool is an int subclass, so it is checked first).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)
