"""A Redis broker for a throw-away CeleryExecutor environment: is it there, the settings, the clean-up.

Each environment takes a Redis database index and a queue of its own, so a concurrent run on
the same Redis neither takes its tasks nor hands it its own. Nothing here imports Airflow:
the harness's own process talks to Redis only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

#: Where ``make faults`` looks for a broker when none is named.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
PING_TIMEOUT_S = 2


@dataclass(frozen=True)
class CeleryBroker:
    """A Redis database index and a queue, for one environment's tasks."""

    base_url: str  # redis://host:port, without a database index
    index: int
    queue: str

    @classmethod
    def for_run(cls, base_url: str, suffix: str) -> CeleryBroker:
        """Index 1-15 and queue ``faults_<suffix>`` from a run's hexadecimal suffix (index 0 is left alone)."""
        return cls(base_url.rstrip("/"), 1 + int(suffix, 16) % 15, f"faults_{suffix}")

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.index}"

    def unavailable_reason(self) -> str | None:
        """Why CeleryExecutor cannot run with this broker here, or None when it can."""
        try:
            importlib.metadata.version("apache-airflow-providers-celery")
        except importlib.metadata.PackageNotFoundError:
            return "apache-airflow-providers-celery is not installed (CeleryExecutor unavailable)"
        if importlib.util.find_spec("redis") is None:
            return "the redis client package is not installed"
        import redis

        try:
            redis.Redis.from_url(self.url, socket_timeout=PING_TIMEOUT_S, socket_connect_timeout=PING_TIMEOUT_S).ping()
        except redis.RedisError as exc:
            return f"the Redis broker {self.base_url} does not answer: {exc}"
        return None

    def settings(self, metadata_url: str, concurrency: int) -> dict[str, str]:
        """The environment variables of every Airflow process: CeleryExecutor on this broker and queue."""
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
            # Sending a task to Redis on a busy two-core machine can exceed the 1 s default.
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
        }

    def worker_command(self, name: str, concurrency: int) -> list[str]:
        """``airflow`` arguments of a Celery worker called ``name`` that takes this queue only."""
        return [
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}-{self.queue}@%h",
            "--concurrency",
            str(concurrency),
            "--queues",
            self.queue,
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
        ]

    def clean(self) -> str | None:
        """Delete this queue's keys, and Kombu's shared ones when no other queue uses the index.

        Returns what went wrong, if anything: a broker that went away is not worth failing for.
        """
        import redis

        try:
            client = redis.Redis.from_url(self.url, socket_timeout=3)
            ours = list(client.scan_iter(match=f"*{self.queue}*"))
            if ours:
                client.delete(*ours)
            others = [
                key for key in client.scan_iter(match="_kombu.binding.*") if key != b"_kombu.binding.celery.pidbox"
            ]
            if not others:
                shared = [key for pattern in ("_kombu.binding*", "unacked*") for key in client.scan_iter(match=pattern)]
                if shared:
                    client.delete(*shared)
        except redis.RedisError as exc:
            return f"could not clean the broker {self.url}: {exc}"
        return None
