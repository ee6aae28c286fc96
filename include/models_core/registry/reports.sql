-- name: rows_per_version
-- Every ACTIVE version with what it stored for one cycle (zero when it stored nothing).
SELECT v.model_id, v.version, v.role,
       (SELECT count(*) FROM detection_model_run_outputs o
         WHERE o.version_id = v.id AND o.cycle_started_at = %(cycle)s AND o.role <> 'BACKTEST') AS output_rows,
       (SELECT count(*) FROM detection_model_metrics m
         WHERE m.version_id = v.id AND m.cycle_started_at = %(cycle)s) AS metrics
FROM detection_model_versions v
WHERE v.status = 'ACTIVE'
ORDER BY v.model_id, v.role <> 'PRIMARY', v.version;

-- name: cycle_alerts
-- Rows of one cycle whose outputs hold "alert": true, from any model and live role (PRIMARY
-- first), with the other output keys (the figures that decided the alert) and how many in all.
SELECT o.model_id, v.version, o.role, o.input_ref, o.outputs - 'alert' AS figures, count(*) OVER () AS total
FROM detection_model_run_outputs o
JOIN detection_model_versions v ON v.id = o.version_id
WHERE o.cycle_started_at = %(cycle)s AND o.outputs -> 'alert' = 'true'::jsonb AND o.role <> 'BACKTEST'
ORDER BY o.role <> 'PRIMARY', o.model_id, v.version, o.output_seq
LIMIT %(limit)s;
