-- name: rows_per_version
-- Every ACTIVE version with what it stored for one cycle (zero when it stored nothing).
SELECT v.model_id, v.version, v.role,
       (SELECT count(*) FROM detection_model_run_outputs o
         WHERE o.version_id = v.id AND o.cycle_started_at = %(cycle)s) AS output_rows,
       (SELECT count(*) FROM detection_model_metrics m
         WHERE m.version_id = v.id AND m.cycle_started_at = %(cycle)s) AS metrics
FROM detection_model_versions v
WHERE v.status = 'ACTIVE'
ORDER BY v.model_id, v.role <> 'PRIMARY', v.version;
