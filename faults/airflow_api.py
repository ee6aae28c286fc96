"""Airflow's public REST API, as a fault uses it: what an operator or the UI sees and does.

The workspaces run the simple auth manager with every user an admin, so a token comes from
``GET /auth/token`` without credentials; every other call sends it as a bearer token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

DAG_ID = "detection_models"
REQUEST_TIMEOUT_S = 30


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._token: str | None = None

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._bearer()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, method, path, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def _bearer(self) -> str:
        if self._token is None:
            self._token = self._call("GET", "/auth/token", auth=False)["access_token"]
        return self._token

    # ---- the cycle DAG ----------------------------------------------------------------

    def dag(self) -> dict[str, Any] | None:
        """The DAG as the UI lists it, or None when Airflow no longer has it."""
        try:
            return self._call("GET", f"/api/v2/dags/{DAG_ID}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def dag_details(self) -> dict[str, Any]:
        """The DAG's details, ``doc_md`` among them, from its latest serialized version."""
        return self._call("GET", f"/api/v2/dags/{DAG_ID}/details")

    def task_ids(self) -> list[str]:
        return sorted(t["task_id"] for t in self._call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"])

    def import_errors(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v2/importErrors")["import_errors"]

    def unpause(self) -> None:
        self._call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

    def trigger(self) -> str:
        """A manual run without a logical date (the cycle's timestamp is its run-after time)."""
        return self._call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})["dag_run_id"]

    def clear_failed(self, run_id: str) -> list[str]:
        """Clear the run's failed tasks (and reset the run) so the scheduler runs them again."""
        cleared = self._call(
            "POST",
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True},
        )
        return sorted(ti["task_id"] for ti in cleared["task_instances"])

    def wait_for_dag(self, task_count: int, timeout: float) -> dict[str, Any]:
        """Until the DAG is parsed with ``task_count`` tasks (model tasks + cycle_summary)."""
        deadline = time.monotonic() + timeout
        while True:
            dag = self.dag()
            if dag is not None and len(self.task_ids()) == task_count:
                return dag
            if time.monotonic() > deadline:
                found = None if dag is None else len(self.task_ids())
                raise RuntimeError(
                    f"{DAG_ID} was not parsed with {task_count} tasks within {timeout:.0f} s "
                    f"(found {found}; import errors: {self.import_errors()})"
                )
            time.sleep(1)
