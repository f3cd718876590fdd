"""The Pulumi program: read this stack's ``storage`` and ``sessions``, validate them all, deploy.

Everything lives in ``snapshot_resources.stack`` so it can be tested under ``set_mocks``.
"""

from snapshot_resources.stack import main

main()
