"""One process of the shared-budget tests: ``python tests/support/budget_worker.py REQUEST``.

REQUEST (JSON): ``endpoint``, ``app_id``, ``customer_id``, ``customer_secret`` (the emulator's),
``store`` (the shared store's URL, or null for this process's own budget), ``calls`` and
``threads``. It waits for the file ``go`` (when given) to exist, so that every process starts at
once, then sends ``calls`` acquire requests from ``threads`` threads, and prints one JSON line:
``{"seconds": ..., "failed": ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> int:
    from snapshot_resources import shared_store
    from snapshot_resources.agora.client import AgoraClient
    from snapshot_resources.agora.retry import RetryPolicy

    request = json.loads(Path(sys.argv[1]).read_text())
    store = shared_store.connect(request["store"]) if request.get("store") else None
    client = AgoraClient(request["customer_id"], request["customer_secret"],
                         endpoint=request["endpoint"], shared_store=store,
                         retry=RetryPolicy(scale=0.05))
    go = Path(request["go"]) if request.get("go") else None
    while go is not None and not go.exists():
        time.sleep(0.005)
    failed = 0

    def one(index: int) -> bool:
        try:
            client.acquire(request["app_id"], {"cname": f"budget-{index}", "uid": "527841",
                                               "clientRequest": {}})
            return True
        except Exception:
            return False

    started = time.monotonic()
    with ThreadPoolExecutor(request["threads"]) as pool:
        failed = sum(not ok for ok in pool.map(one, range(request["calls"])))
    print(json.dumps({"seconds": time.monotonic() - started, "failed": failed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
