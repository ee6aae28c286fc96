-- name: lock_primary_slot
-- Serialises writers of a model's PRIMARY result for a cycle, whichever version they run:
-- a retry racing a zombie attempt, or two attempts on either side of a promotion.
SELECT pg_advisory_xact_lock(hashtextextended(
    'primary:' || %(model_id)s || '@' || extract(epoch FROM %(cycle)s::timestamptz)::text, 0));

-- name: lock_version_slot
-- The same for a SHADOW/CHALLENGER: one version in one role for a cycle.
SELECT pg_advisory_xact_lock(hashtextextended(
    %(version_id)s::text || ':' || %(role)s || '@' || extract(epoch FROM %(cycle)s::timestamptz)::text, 0));

-- name: version_state_for_write
-- Re-read under a share lock in the writing transaction: a promotion or demotion of this
-- version waits until the write commits, and a write after it sees the new state.
SELECT status, role FROM detection_model_versions WHERE id = %(version_id)s FOR SHARE;

-- name: delete_primary_outputs
-- A model has one PRIMARY row set per cycle, credited to the version that ran it last.
DELETE FROM detection_model_run_outputs
WHERE model_id = %(model_id)s AND cycle_started_at = %(cycle)s AND role = 'PRIMARY';

-- name: delete_primary_metrics
DELETE FROM detection_model_metrics
WHERE model_id = %(model_id)s AND cycle_started_at = %(cycle)s AND role = 'PRIMARY';

-- name: delete_version_outputs
DELETE FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role = %(role)s;

-- name: delete_version_metrics
DELETE FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role = %(role)s;

-- name: insert_metrics
INSERT INTO detection_model_metrics
    (cycle_started_at, model_id, version_id, role, metric_key, metric_value, is_default)
VALUES %s;

-- name: load_outputs
SELECT input_ref, outputs
FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role = %(role)s
ORDER BY output_seq;

-- name: load_metrics
SELECT metric_key, metric_value
FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role = %(role)s AND NOT is_default
ORDER BY metric_key;

-- name: record_task_start
-- The version a task runs, written when it starts, so its outcome is credited to that version
-- (a PRIMARY task may run the model's newly promoted PRIMARY instead of the planned one).
INSERT INTO detection_model_task_outcomes
    (dag_run_id, task_id, cycle_started_at, model_id, version_id, role, state)
VALUES (%(dag_run_id)s, %(task_id)s, %(cycle)s, %(model_id)s, %(version_id)s, %(role)s, 'running')
ON CONFLICT (dag_run_id, task_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at,
    version_id = EXCLUDED.version_id,
    state = EXCLUDED.state,
    skip_cause = NULL,
    reason = NULL,
    recorded_at = now();

-- name: upsert_cycle_summary
INSERT INTO detection_model_cycle_summaries
    (dag_run_id, cycle_started_at, executed, failed, skipped_missing_upstream,
     skipped_inactive, skipped_backend_down, shadows_ran, shadows_failed, shadows_skipped_backend_down,
     failed_primaries, plan_fingerprint, plan_stale_reason)
VALUES (%(dag_run_id)s, %(cycle)s, %(executed)s, %(failed)s, %(skipped_missing_upstream)s,
        %(skipped_inactive)s, %(skipped_backend_down)s, %(shadows_ran)s, %(shadows_failed)s,
        %(shadows_skipped_backend_down)s, %(failed_primaries)s, %(plan_fingerprint)s, %(plan_stale_reason)s)
ON CONFLICT (dag_run_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at,
    executed = EXCLUDED.executed,
    failed = EXCLUDED.failed,
    skipped_missing_upstream = EXCLUDED.skipped_missing_upstream,
    skipped_inactive = EXCLUDED.skipped_inactive,
    skipped_backend_down = EXCLUDED.skipped_backend_down,
    shadows_ran = EXCLUDED.shadows_ran,
    shadows_failed = EXCLUDED.shadows_failed,
    shadows_skipped_backend_down = EXCLUDED.shadows_skipped_backend_down,
    failed_primaries = EXCLUDED.failed_primaries,
    plan_fingerprint = EXCLUDED.plan_fingerprint,
    plan_stale_reason = EXCLUDED.plan_stale_reason,
    recorded_at = now();

-- name: upsert_task_outcomes
-- Final states; the version a task recorded when it started is kept (it is the one that ran).
INSERT INTO detection_model_task_outcomes
    (dag_run_id, task_id, cycle_started_at, model_id, version_id, role, state)
VALUES %s
ON CONFLICT (dag_run_id, task_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at,
    state = EXCLUDED.state,
    recorded_at = now();
