"""Reading Airflow 3 task logs: one JSON record per line, one file per attempt.

Used by the deployment test and ``make faults`` to find what a task said about itself:
the exceptions it failed with, its warnings, why it skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def task_log_records(home: Path, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """The structured records of every attempt's log file, oldest attempt first."""
    folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    records = []
    for log_file in sorted(folder.glob("attempt=*.log"), key=lambda path: int(path.stem.split("=")[1])):
        for line in log_file.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def after_startup_parse(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the task itself: those after the worker's parse of the DAG file.

    A task's log opens with Airflow's "Pre Execute" group, in which the worker parses the DAG
    file; whatever that parse logs (about any model of the package) is not the task's doing.
    """
    for index, record in enumerate(records):
        if record.get("event") == "::endgroup::":
            return records[index + 1 :]
    return records


def task_errors(records: list[dict[str, Any]]) -> list[str]:
    """One ``ExcType: message (in <models_core function>)`` per logged exception, outermost first.

    A record's ``error_detail`` lists the exception raised and then its causes (structlog's
    order); the causes are one error with it, appended as ``<- caused by ...``.
    """
    errors = []
    for record in records:
        chain = []
        for detail in record.get("error_detail") or []:
            ours = [
                frame.get("name") for frame in detail.get("frames") or [] if "models_core" in str(frame.get("filename"))
            ]
            where = f" (in {ours[-1]})" if ours else ""
            chain.append(f"{detail.get('exc_type')}: {str(detail.get('exc_value')).strip()}{where}")
        if chain:
            errors.append(" <- caused by ".join(chain))
    return errors


def skip_reasons(records: list[dict[str, Any]]) -> list[str]:
    return [str(record.get("reason")) for record in records if record.get("event") == "Skipping task."]
