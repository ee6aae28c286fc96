"""source -> middle -> sink. Each records what it saw of its upstream in its outputs."""

from __future__ import annotations

import time
from pathlib import Path

from models_core import BaseDetectionModel, ModelContext, ModelResult


class _Recording(BaseDetectionModel):
    compare_label = "label"
    compare_score = "score"

    def run(self, ctx: ModelContext) -> ModelResult:
        if self.params.get("fail") or ctx.cycle_started_at.isoformat() in self.params.get("fail_at", ()):
            raise RuntimeError(f"{self.label()} was told to fail")
        if self.params.get("fail_oddly"):
            raise _odd_failure(self.params["fail_oddly"], self.label())
        time.sleep(float(self.params.get("sleep", 0)))
        held = _hold_a_temp_table(ctx.conn) if self.params.get("hold_on_conn") else None
        self._interfere(ctx)
        seen = {}
        for model_id in sorted(ctx.shared):
            upstream = ctx.shared[model_id]
            seen[model_id] = {
                "version_id": upstream.version_id,
                "role": str(getattr(upstream.role, "value", upstream.role)),
                "outputs": [list(pair) for pair in upstream.outputs_per_input],
                "metrics": upstream.metrics,
            }
        primary = ctx.primary_result
        outputs = [
            (
                {"i": i},
                {
                    "by": self.version_str,
                    "label": 1 if self.params.get("flag_all") else i % 2,
                    "score": i * float(self.params.get("scale", 1)),
                    "seen": seen if i == 0 else {},
                    "primary_outputs": len(primary.outputs_per_input) if primary else None,
                    "cycle": ctx.cycle_started_at.isoformat(),
                },
            )
            for i in range(int(self.params.get("n", 2)))
        ]
        if held is not None:
            with ctx.conn.cursor() as cur:  # still there after ctx.shared was read
                cur.execute("SELECT x FROM held_by_model")
                outputs[0][1]["held"] = cur.fetchone()[0]
        if self.params.get("nul"):
            outputs.append(({"i": "nul"}, {"note": "before\u0000after"}))
        if self.params.get("close_conn"):
            ctx.conn.close()
        metrics = {"made": float(len(outputs)), **self.params.get("metrics", {})}
        version_id = self.version_id + 1000 if self.params.get("bad_result") else self.version_id
        return ModelResult(
            model_id=self.model_id, version_id=version_id, role=self.role, outputs_per_input=outputs, metrics=metrics
        )

    def _interfere(self, ctx: ModelContext) -> None:
        """What an operator or a failing server does to this version while it runs."""
        if not any(self.params.get(key) for key in ("archive_self", "promote_instead", "kill_framework_conn_once")):
            return
        with ctx.conn, ctx.conn.cursor() as cur:
            if self.params.get("archive_self"):
                cur.execute("UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE id = %s", (self.version_id,))
            if self.params.get("promote_instead"):
                cur.execute("UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE id = %s", (self.version_id,))
                cur.execute(
                    "UPDATE detection_model_versions SET status = 'ACTIVE', role = 'PRIMARY'"
                    " WHERE model_id = %s AND version = %s",
                    (self.model_id, self.params["promote_instead"]),
                )
            flag = self.params.get("kill_framework_conn_once")
            if flag and not Path(flag).exists():
                Path(flag).write_text("killed once")
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    (f"model:{self.model_id}",),
                )


class _UnreadableError(RuntimeError):
    def __str__(self) -> str:
        raise ValueError("this message cannot be read")


def _odd_failure(kind: str, label: str) -> Exception:
    """An exception whose message PostgreSQL text cannot hold as it is, or that cannot be read at all.

    ``nul`` and ``surrogate`` messages are also longer than a failure's recorded message may be.
    """
    if kind == "unreadable":
        return _UnreadableError()
    odd = {"nul": "a NUL \x00 here", "surrogate": "a lone surrogate \udc80 here"}[kind]
    return RuntimeError(f"{label} failed with {odd}" + ", and more" * 100)


def _hold_a_temp_table(conn) -> str:
    """Open a transaction on ctx.conn holding a temp table, as a model staging its inputs would."""
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE held_by_model (x int) ON COMMIT DROP")
        cur.execute("INSERT INTO held_by_model VALUES (42)")
    return "held_by_model"


class Source(_Recording):
    model_id = "source"
    #: What the registry checks a version's params against before it runs (tests of stage checks).
    params_schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0},
            "scale": {"type": "number"},
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }


class Middle(_Recording):
    model_id = "middle"
    depends_on = ["source"]


class Sink(_Recording):
    model_id = "sink"


class Loner(_Recording):
    """No dependencies; used to show one model's trouble leaves the others alone. Its outputs
    depend on its params only, so it may be backtested over past cycles."""

    model_id = "loner"
    replayable = True
