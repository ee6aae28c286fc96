"""The ``[model_registry]`` configuration section: the only place settings are read.

Every key also works as ``AIRFLOW__MODEL_REGISTRY__<KEY>``, Airflow's usual convention.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from airflow.sdk import conf
from croniter import CroniterError, croniter

SECTION = "model_registry"
#: A model task may use this share of the schedule interval by default, so a task that hangs
#: ends before the cycle after next is due (at most two cycles are open at once).
TASK_TIMEOUT_SHARE = 0.9
#: The default timeout when the schedule has no regular interval (manual runs only).
UNSCHEDULED_TASK_TIMEOUT = timedelta(hours=1)
#: A backend's last health sample is trusted for this many health intervals by default: one
#: late or failed health run does not stop the models, three in a row do.
STALE_AFTER_HEALTH_INTERVALS = 3


def airflow_home() -> Path:
    """Airflow's home folder, where the plan cache and embedded database live by default."""
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; read once per parse or task so changes apply to the next one."""

    models_package: str
    schema: str
    conn_id: str
    schedule: str | None
    catchup: bool
    max_active_runs: int
    retries: int
    task_timeout: timedelta
    shadow_pool: str
    shadow_pool_slots: int
    parse_statement_timeout_ms: int
    request_statement_timeout_ms: int
    connect_timeout_s: int
    plan_cache_path: Path
    embedded_pgdata: Path
    partition_months_ahead: int
    partition_retention_months: int
    partition_retention_mode: str
    reports_dir: Path
    drift_band: float
    error_after_failures: int
    backend_health_schedule: str | None
    backend_stale_after: timedelta
    backend_samples_keep_days: int
    airflow_api_conn_id: str
    notifier: str
    notifier_kwargs: dict[str, Any]
    approval_ttl: timedelta
    governors: tuple[str, ...]
    api_url: str
    api_token: str | None
    credentials_path: Path
    dag_owner: str
    events_interval: timedelta
    webhook_timeout_s: float
    webhook_retry: timedelta
    cycle_deadline: timedelta | None


#: The settings last read, and the environment they were read under (see :func:`load_settings`).
_last: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def load_settings() -> Settings:
    """``[model_registry]`` with the documented defaults.

    The API server asks at every request, and reading the section costs about 1.5 ms (some 40
    lookups in Airflow's configuration, more than most of a request's queries). So the answer is
    kept while the process's environment is unchanged: every override lives there
    (``AIRFLOW__MODEL_REGISTRY__*``, connections, ``AIRFLOW_HOME``), and Airflow reads its
    configuration file once per process.
    """
    global _last
    before = tuple(sorted(os.environ.items()))
    last = _last
    if last is not None and last[0] == before:
        return last[1]
    settings = _read_settings()
    if tuple(sorted(os.environ.items())) == before:  # else read under a changing environment: not kept
        _last = (before, settings)
    return settings


def _read_settings() -> Settings:
    home = airflow_home()
    schedule = conf.get(SECTION, "schedule", fallback="*/5 * * * *").strip()
    health_text = conf.get(SECTION, "backend_health_schedule", fallback="* * * * *").strip()
    health_schedule = None if health_text.lower() in ("", "none") else health_text
    return Settings(
        models_package=conf.get(SECTION, "models_package", fallback="example_models"),
        schema=conf.get(SECTION, "schema", fallback="kcg"),
        conn_id=conf.get(SECTION, "conn_id", fallback="registry_db"),
        schedule=None if schedule.lower() in ("", "none") else schedule,
        catchup=conf.getboolean(SECTION, "catchup", fallback=False),
        max_active_runs=conf.getint(SECTION, "max_active_runs", fallback=2),
        retries=conf.getint(SECTION, "retries", fallback=0),
        task_timeout=_task_timeout(
            conf.get(SECTION, "task_timeout", fallback="").strip(),
            None if schedule.lower() in ("", "none") else schedule,
        ),
        shadow_pool=conf.get(SECTION, "shadow_pool", fallback="model_shadows"),
        shadow_pool_slots=conf.getint(SECTION, "shadow_pool_slots", fallback=4),
        parse_statement_timeout_ms=conf.getint(SECTION, "parse_statement_timeout_ms", fallback=2000),
        request_statement_timeout_ms=int(
            _positive_number(
                conf.get(SECTION, "request_statement_timeout_ms", fallback="30000"),
                "request_statement_timeout_ms",
                "milliseconds",
            )
        ),
        connect_timeout_s=conf.getint(SECTION, "connect_timeout", fallback=3),
        plan_cache_path=Path(
            conf.get(SECTION, "plan_cache_path", fallback=str(home / "model_registry" / "plan_cache.json"))
        ),
        embedded_pgdata=Path(conf.get(SECTION, "embedded_pgdata", fallback=str(home / "model_registry" / "pgdata"))),
        partition_months_ahead=conf.getint(SECTION, "partition_months_ahead", fallback=3),
        partition_retention_months=conf.getint(SECTION, "partition_retention_months", fallback=6),
        partition_retention_mode=_retention_mode(conf.get(SECTION, "partition_retention_mode", fallback="drop")),
        reports_dir=Path(conf.get(SECTION, "reports_dir", fallback=str(home / "model_registry" / "reports"))),
        drift_band=conf.getfloat(SECTION, "drift_band", fallback=0.5),
        error_after_failures=_positive_int(
            "error_after_failures", conf.getint(SECTION, "error_after_failures", fallback=3)
        ),
        backend_health_schedule=health_schedule,
        backend_stale_after=_stale_after(
            conf.get(SECTION, "backend_stale_after", fallback="").strip(), health_schedule
        ),
        backend_samples_keep_days=_positive_int(
            "backend_samples_keep_days", conf.getint(SECTION, "backend_samples_keep_days", fallback=7)
        ),
        airflow_api_conn_id=conf.get(SECTION, "airflow_api_conn_id", fallback="airflow_api"),
        notifier=conf.get(SECTION, "notifier", fallback="").strip(),
        notifier_kwargs=_json_object("notifier_kwargs", conf.get(SECTION, "notifier_kwargs", fallback="{}")),
        approval_ttl=_approval_ttl(conf.get(SECTION, "approval_ttl_hours", fallback="24")),
        governors=tuple(
            sorted({name.strip() for name in conf.get(SECTION, "governors", fallback="").split(",") if name.strip()})
        ),
        api_url=conf.get(SECTION, "api_url", fallback="").strip().rstrip("/") or airflow_api_url(),
        api_token=conf.get(SECTION, "api_token", fallback="").strip() or None,
        credentials_path=Path(
            conf.get(SECTION, "credentials_path", fallback=str(_config_home() / "modelreg" / "credentials.json"))
        ),
        dag_owner=conf.get(SECTION, "dag_owner", fallback="").strip() or "model-registry",
        events_interval=timedelta(
            seconds=_positive_number(
                conf.get(SECTION, "events_interval_seconds", fallback="60"), "events_interval_seconds", "seconds"
            )
        ),
        webhook_timeout_s=_positive_number(
            conf.get(SECTION, "webhook_timeout_seconds", fallback="10"), "webhook_timeout_seconds", "seconds"
        ),
        webhook_retry=_webhook_retry(conf.get(SECTION, "webhook_retry_hours", fallback="2")),
        cycle_deadline=_cycle_deadline(
            conf.get(SECTION, "cycle_deadline_minutes", fallback="").strip(),
            None if schedule.lower() in ("", "none") else schedule,
        ),
    )


def webhook_secret(variable: str) -> str | None:
    """A webhook's signing secret, from the sender's environment variable named by the webhook."""
    return os.environ.get(variable) or None


def _webhook_retry(value: str) -> timedelta:
    """``webhook_retry_hours``: how long a delivery is retried; at least an hour, so an outage of one is bridged."""
    hours = _positive_number(value, "webhook_retry_hours", "hours")
    if hours < 1:
        raise ValueError(f"[{SECTION}] webhook_retry_hours must be at least 1, got {value!r}")
    return timedelta(hours=hours)


def _cycle_deadline(value: str, schedule: str | None) -> timedelta | None:
    """``cycle_deadline_minutes``: a cycle not finished this long after it was queued raises a Deadline Alert.

    ``interval`` is the schedule's interval (a cycle should end before the next one starts);
    ``none`` (the default) attaches no deadline: Airflow 3.3's ``dag.test()``, which ``airflow
    dags test`` and ``make cycle`` use, fails at the end of a run of a DAG with a Deadline Alert.
    """
    if value.lower() in ("", "none"):
        return None
    if value.lower() == "interval":
        return schedule_interval(schedule)
    return timedelta(minutes=_positive_number(value, "cycle_deadline_minutes", "minutes"))


def _config_home() -> Path:
    """Where the CLI keeps its login (like ``gh``): ``$XDG_CONFIG_HOME``, else ``~/.config``."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def airflow_api_url() -> str:
    """The Airflow API server's URL as Airflow's own ``[api] base_url`` (or host and port) give it."""
    base = conf.get("api", "base_url", fallback="").strip().rstrip("/")
    if base:
        return base
    return f"http://127.0.0.1:{conf.getint('api', 'port', fallback=8080)}"


@cache
def schedule_interval(schedule: str | None) -> timedelta | None:
    """The shortest gap between two cycles of a cron schedule (or preset), None without one.

    Irregular crons (``0 9,17 * * *``) give their shortest gap among 64 fire times.
    """
    if schedule is None:
        return None
    try:
        fire_times = croniter(schedule, datetime(2024, 1, 1, tzinfo=UTC))
        times = [fire_times.get_next(datetime) for _ in range(64)]
    except (CroniterError, ValueError, KeyError):
        return None  # @once, @continuous and the like: no regular interval
    return min(later - earlier for earlier, later in zip(times, times[1:]))


def _task_timeout(value: str, schedule: str | None) -> timedelta:
    """``task_timeout`` in seconds, or by default a share of the schedule interval."""
    if value:
        return timedelta(seconds=_positive_number(value, "task_timeout", "seconds"))
    interval = schedule_interval(schedule)
    return interval * TASK_TIMEOUT_SHARE if interval else UNSCHEDULED_TASK_TIMEOUT


def _retention_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("drop", "detach"):
        raise ValueError(f"[{SECTION}] partition_retention_mode must be 'drop' or 'detach', got {value!r}")
    return mode


def _approval_ttl(value: str) -> timedelta:
    """``approval_ttl_hours``: how long a promotion request waits for its approval."""
    return timedelta(hours=_positive_number(value, "approval_ttl_hours", "hours"))


def _positive_number(value: str, key: str, unit: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 < number < float("inf"):
        raise ValueError(f"[{SECTION}] {key} must be a positive number of {unit}, got {value!r}")
    return number


def _positive_int(key: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"[{SECTION}] {key} must be at least 1, got {value}")
    return value


def _stale_after(value: str, health_schedule: str | None) -> timedelta:
    """``backend_stale_after`` in seconds, or by default three intervals of the health DAG."""
    if value:
        return timedelta(seconds=_positive_number(value, "backend_stale_after", "seconds"))
    interval = schedule_interval(health_schedule)
    if interval is None:
        raise ValueError(
            f"[{SECTION}] backend_stale_after must be set when backend_health_schedule has no "
            f"regular interval (it is {health_schedule!r})"
        )
    return interval * STALE_AFTER_HEALTH_INTERVALS


def _json_object(key: str, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value or "{}")
    except ValueError as exc:
        raise ValueError(f"[{SECTION}] {key} must be a JSON object, got {value!r}: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"[{SECTION}] {key} must be a JSON object, got {value!r}")
    return parsed
