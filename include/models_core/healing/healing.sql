-- What the self-healing review reads and records after each cycle.

-- name: ran_this_run
-- The versions that ran in this cycle run (succeeded or failed), with their state now and
-- their latest audit row: what the review judges, and acts on only while it is still so.
SELECT o.model_id, o.version_id, v.version, o.role, o.state, v.status, v.role,
       (SELECT max(t.id) FROM detection_model_transitions t WHERE t.version_id = v.id)
FROM detection_model_task_outcomes o
JOIN detection_model_versions v ON v.id = o.version_id
WHERE o.dag_run_id = %(dag_run_id)s AND o.state IN ('success', 'failed')
ORDER BY o.model_id, o.role <> 'PRIMARY', o.version_id;

-- name: recent_outcomes
-- A version's latest cycles since it last became ACTIVE (a reactivation starts afresh),
-- newest cycle first; a cycle run again counts once, by its latest attempt.
SELECT o.cycle_started_at, o.state, o.reason
FROM detection_model_cycle_evidence o
WHERE o.version_id = %(version_id)s
  AND o.recorded_at >= coalesce((SELECT max(t.at) FROM detection_model_transitions t
                                 WHERE t.version_id = %(version_id)s AND t.to_status = 'ACTIVE'
                                   AND t.from_status IS DISTINCT FROM 'ACTIVE'), '-infinity')
ORDER BY o.cycle_started_at DESC
LIMIT %(limit)s;

-- name: last_primary_change
-- When the model's current PRIMARY became its PRIMARY: the cool-down runs from there. Only a
-- version entering ACTIVE PRIMARY counts; an edit of the PRIMARY (tags, description) is no change.
SELECT max(at) FROM detection_model_transitions
WHERE model_id = %(model_id)s AND to_status = 'ACTIVE' AND to_role = 'PRIMARY'
  AND (from_status IS DISTINCT FROM 'ACTIVE' OR from_role IS DISTINCT FROM 'PRIMARY');

-- name: last_event
SELECT max(at) FROM detection_model_healing_events
WHERE model_id = %(model_id)s AND kind = %(kind)s AND version_id = %(version_id)s;

-- name: insert_event
-- Nothing when this run already recorded this kind for the model: a summary run again
-- neither acts nor notifies twice.
INSERT INTO detection_model_healing_events
    (model_id, version_id, version, kind, dag_run_id, cycle_started_at, message, figures)
VALUES (%(model_id)s, %(version_id)s, %(version)s, %(kind)s, %(dag_run_id)s, %(cycle)s, %(message)s,
        %(figures)s::jsonb)
ON CONFLICT ON CONSTRAINT detection_model_healing_events_once_per_run DO NOTHING
RETURNING id;
