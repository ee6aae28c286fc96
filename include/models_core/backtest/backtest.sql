-- A backtest's reads and writes. Its outputs share the run-output table (role BACKTEST, see
-- cycle/results.sql for the slot lock and the delete); its metrics have their own table.

-- name: primary_results
-- The PRIMARY result each given model stored for the cycle: its version, how many outputs and
-- how long it ran (a result of no outputs has metrics all the same, so it is found too).
SELECT p.model_id, p.version_id, v.version,
       (SELECT count(*) FROM detection_model_run_outputs o
         WHERE o.version_id = p.version_id AND o.cycle_started_at = %(cycle)s AND o.role = 'PRIMARY'),
       coalesce(p.duration_ms, 0)
FROM (
    SELECT model_id, version_id, max(metric_value) FILTER (WHERE metric_key = 'cycle_duration_ms') AS duration_ms
    FROM detection_model_metrics
    WHERE cycle_started_at = %(cycle)s AND model_id = ANY(%(models)s::text[]) AND role = 'PRIMARY'
    GROUP BY model_id, version_id
) p
JOIN detection_model_versions v ON v.id = p.version_id;

-- name: delete_metrics
DELETE FROM detection_model_backtest_metrics WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s;

-- name: insert_metrics
INSERT INTO detection_model_backtest_metrics
    (cycle_started_at, model_id, version_id, metric_key, metric_value, is_default)
VALUES %s;
