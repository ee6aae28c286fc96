-- name: healing_policies
SELECT model_id, error_after_failures, on_primary_error, max_failure_rate, metric_thresholds, min_cycles,
       window_hours, cooldown_minutes
FROM detection_model_healing_policies
ORDER BY model_id;

-- name: upsert_healing_policy
INSERT INTO detection_model_healing_policies
    (model_id, error_after_failures, on_primary_error, max_failure_rate, metric_thresholds, min_cycles,
     window_hours, cooldown_minutes)
VALUES (%(model_id)s, %(error_after_failures)s, %(on_primary_error)s, %(max_failure_rate)s,
        %(metric_thresholds)s::jsonb, %(min_cycles)s, %(window_hours)s, %(cooldown_minutes)s)
ON CONFLICT (model_id) DO UPDATE SET
    error_after_failures = EXCLUDED.error_after_failures, on_primary_error = EXCLUDED.on_primary_error,
    max_failure_rate = EXCLUDED.max_failure_rate, metric_thresholds = EXCLUDED.metric_thresholds,
    min_cycles = EXCLUDED.min_cycles, window_hours = EXCLUDED.window_hours,
    cooldown_minutes = EXCLUDED.cooldown_minutes, updated_at = now();
