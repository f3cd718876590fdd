"""Test-only helper modules, imported as ``support.<module>``.  A provider defined here is pickled
by reference, so its provider process must start with ``tests/`` as cwd: see probe_provider."""
