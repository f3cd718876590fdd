"""Demo credentials of a local emulator (not secrets: the emulator never prints them anyway).

Kept in a module that imports nothing, so the pytest plugin can name them without loading the
emulator.
"""

from __future__ import annotations

from typing import Final

DEFAULT_APP_ID: Final = "0123456789abcdef0123456789abcdef"  # App IDs are 32 hex characters
DEFAULT_CUSTOMER_ID: Final = "emulator-customer-id"
DEFAULT_CUSTOMER_SECRET: Final = "emulator-customer-secret"  # noqa: S105 - a local demo value
