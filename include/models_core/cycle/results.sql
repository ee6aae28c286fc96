-- name: lock_cycle_version
-- Serialises two writers of the same (version, cycle): a retry racing a zombie attempt.
SELECT pg_advisory_xact_lock(hashtextextended(
    %(version_id)s::text || '@' || extract(epoch FROM %(cycle)s::timestamptz)::text, 0));

-- name: delete_outputs
DELETE FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s;

-- name: delete_metrics
DELETE FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s;

-- name: insert_metrics
INSERT INTO detection_model_metrics
    (cycle_started_at, model_id, version_id, role, metric_key, metric_value, is_default)
VALUES %s;

-- name: load_outputs
SELECT input_ref, outputs
FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s
ORDER BY output_seq;

-- name: load_metrics
SELECT metric_key, metric_value
FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND NOT is_default
ORDER BY metric_key;

-- name: upsert_cycle_summary
INSERT INTO detection_model_cycle_summaries
    (dag_run_id, cycle_started_at, executed, failed, skipped_missing_upstream,
     skipped_inactive, shadows_ran, shadows_failed, failed_primaries)
VALUES (%(dag_run_id)s, %(cycle)s, %(executed)s, %(failed)s, %(skipped_missing_upstream)s,
        %(skipped_inactive)s, %(shadows_ran)s, %(shadows_failed)s, %(failed_primaries)s)
ON CONFLICT (dag_run_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at,
    executed = EXCLUDED.executed,
    failed = EXCLUDED.failed,
    skipped_missing_upstream = EXCLUDED.skipped_missing_upstream,
    skipped_inactive = EXCLUDED.skipped_inactive,
    shadows_ran = EXCLUDED.shadows_ran,
    shadows_failed = EXCLUDED.shadows_failed,
    failed_primaries = EXCLUDED.failed_primaries,
    recorded_at = now();

-- name: upsert_task_outcomes
INSERT INTO detection_model_task_outcomes
    (dag_run_id, task_id, cycle_started_at, model_id, version_id, role, state)
VALUES %s
ON CONFLICT (dag_run_id, task_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at,
    state = EXCLUDED.state,
    recorded_at = now();
