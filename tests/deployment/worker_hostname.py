"""``[core] hostname_callable`` for the distributed test's Celery workers.

Both workers run on this one machine, so the default (the FQDN) would give every task
instance the same ``hostname``. Each worker process gets ``DIST_WORKER_HOSTNAME`` in its
environment, and Airflow records that name on the task instances it runs.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("DIST_WORKER_HOSTNAME") or socket.getfqdn()
