"""Retrying work that failed on a transient database error.

A connection reset, a server restart, a serialization failure or a deadlock says nothing
about the work itself: done again on a fresh connection, it succeeds. A model task's work
(re-check, run, store) is idempotent, so it is retried in the task, with the reason in the
log, instead of failing the cycle's PRIMARY outright.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg2

log = logging.getLogger(__name__)

T = TypeVar("T")

#: SQLSTATEs worth another try: serialization_failure, deadlock_detected, and the server
#: shutting down or starting up (admin_shutdown, crash_shutdown, cannot_connect_now).
_TRANSIENT_STATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
#: Seconds between attempts; the last figure repeats until the budget is spent.
_BACKOFF_S = (0.5, 1, 2, 4, 8)
#: Give up once this much time has gone by since the first failure.
DEFAULT_BUDGET_S = 60.0


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error that a fresh attempt can get past."""
    if isinstance(exc, psycopg2.InterfaceError):  # "connection already closed"
        return True
    if not isinstance(exc, psycopg2.Error):
        return False
    code = exc.pgcode or ""
    if code in _TRANSIENT_STATES or code.startswith("08"):  # class 08: connection exceptions
        return True
    # Without a SQLSTATE, an OperationalError or a plain DatabaseError comes from libpq: the
    # connection could not be made or was lost mid-statement ("server closed the connection
    # unexpectedly"), not from a statement the server refused. Their subclasses without one
    # (a ProgrammingError for a value psycopg2 cannot adapt, say) are about the work itself.
    return type(exc) in (psycopg2.OperationalError, psycopg2.DatabaseError) and not code


def retry_transient(work: Callable[[], T], what: str, budget_s: float = DEFAULT_BUDGET_S) -> T:
    """Run ``work``; on a transient database error, log it and run it again, for ``budget_s`` at most."""
    attempt = 1
    first_failure = None
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            first_failure = first_failure or now
            wait = _BACKOFF_S[min(attempt - 1, len(_BACKOFF_S) - 1)]
            if now + wait - first_failure > budget_s:
                log.error(
                    "%s: transient database error persisted for %.0f s; giving up: %s",
                    what,
                    now - first_failure,
                    one_line(exc),
                )
                raise
            log.warning(
                "%s: transient database error (%s); attempt %d failed, trying again in %.1f s",
                what,
                one_line(exc),
                attempt,
                wait,
            )
            time.sleep(wait)
            attempt += 1


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for a log line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
