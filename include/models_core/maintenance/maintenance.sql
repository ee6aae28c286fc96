-- name: try_lock
-- Session-level: held for the whole maintenance run, across its transactions.
SELECT pg_try_advisory_lock(hashtext('models_core.partition_maintenance:' || %(schema)s));

-- name: unlock
SELECT pg_advisory_unlock(hashtext('models_core.partition_maintenance:' || %(schema)s));

-- name: record_run
INSERT INTO detection_model_maintenance_runs (kind, started_at, status, details)
VALUES (%(kind)s, %(started_at)s, %(status)s, %(details)s::jsonb);

-- name: last_success
SELECT max(finished_at) FROM detection_model_maintenance_runs
WHERE kind = %(kind)s AND status = 'SUCCESS';

-- name: delete_old_metrics
DELETE FROM detection_model_metrics WHERE cycle_started_at < %(cutoff)s;

-- name: delete_old_backtest_metrics
DELETE FROM detection_model_backtest_metrics WHERE cycle_started_at < %(cutoff)s;

-- name: delete_old_summaries
DELETE FROM detection_model_cycle_summaries WHERE cycle_started_at < %(cutoff)s;

-- name: delete_old_outcomes
DELETE FROM detection_model_task_outcomes WHERE cycle_started_at < %(cutoff)s;
