-- How a model task ended and why it did not run or failed, on its outcome row
-- (detection_model_task_outcomes).

-- name: record_task_skip
-- A task that skips before running its model (its backend is DOWN) records the cause itself.
INSERT INTO detection_model_task_outcomes
    (dag_run_id, task_id, cycle_started_at, model_id, version_id, role, state, skip_cause, reason)
VALUES (%(dag_run_id)s, %(task_id)s, %(cycle)s, %(model_id)s, %(version_id)s, %(role)s, 'skipped',
        %(skip_cause)s, %(reason)s)
ON CONFLICT (dag_run_id, task_id) DO UPDATE SET
    cycle_started_at = EXCLUDED.cycle_started_at, version_id = EXCLUDED.version_id, state = EXCLUDED.state,
    skip_cause = EXCLUDED.skip_cause, reason = EXCLUDED.reason, recorded_at = now();

-- name: record_task_end
-- The task's own final state (success, skipped, failed, or up_for_retry when Airflow runs it
-- again) and the message of a failure or skip, on the row it wrote when it started: a task
-- cleared and run again without its cycle summary ends with a final state too. The summary
-- writes Airflow's final state over it.
UPDATE detection_model_task_outcomes
SET state = %(state)s, reason = %(reason)s, skip_cause = NULL, recorded_at = now()
WHERE dag_run_id = %(dag_run_id)s AND task_id = %(task_id)s;

-- name: task_notes
SELECT task_id, skip_cause, reason
FROM detection_model_task_outcomes
WHERE dag_run_id = %(dag_run_id)s AND (skip_cause IS NOT NULL OR reason IS NOT NULL);

-- name: note_inherited_causes
-- Tasks that Airflow skipped because an upstream skipped get that upstream's cause and reason.
UPDATE detection_model_task_outcomes o
SET skip_cause = v.skip_cause, reason = v.reason
FROM (VALUES %s) AS v (dag_run_id, task_id, skip_cause, reason)
WHERE o.dag_run_id = v.dag_run_id AND o.task_id = v.task_id;
