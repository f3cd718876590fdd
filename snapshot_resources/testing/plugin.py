"""pytest plugin (entry point ``pytest11``): makes this package's fixtures available to any test
suite that has ``snapshot-resources`` installed.  Imports stay light: heavy modules (the emulator,
moto, grpc) are imported inside the fixtures, so loading the plugin costs nothing."""

from snapshot_resources.testing.emulator import agora_emulator, s3_server  # noqa: F401
from snapshot_resources.testing.redis import redis_server  # noqa: F401
