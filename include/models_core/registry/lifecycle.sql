-- name: set_change_context
-- What the audit triggers record for the statements that follow, until the transaction ends.
SELECT set_config('models_core.action', %(action)s, true),
       set_config('models_core.actor', %(actor)s, true),
       set_config('models_core.reason', coalesce(%(reason)s, ''), true),
       set_config('models_core.gates', coalesce(%(gates)s, ''), true);

-- name: try_lock_model
SELECT pg_try_advisory_xact_lock(hashtext('models_core.model:' || %(model_id)s));

-- name: lock_graph
-- Changes that depend on the whole graph (dependencies, gates) take this lock in turn, bounded
-- by lock_timeout, and read the graph only once they hold it.
SELECT set_config('lock_timeout', %(timeout)s, true), pg_advisory_xact_lock(hashtext('models_core.registry_graph'));

-- name: versions_of_model
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions
WHERE model_id = %(model_id)s
ORDER BY id
FOR UPDATE;

-- name: all_versions
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions
ORDER BY model_id, id;

-- name: insert_version
INSERT INTO detection_model_versions (model_id, version, status, role, params, description)
VALUES (%(model_id)s, %(version)s, 'DRAFT', 'SHADOW', %(params)s::jsonb, %(description)s)
RETURNING id;

-- name: set_status_role
UPDATE detection_model_versions
SET status = %(status)s, role = %(role)s, updated_at = now()
WHERE id = %(id)s;

-- name: transitions
SELECT id, at, model_id, version_id, version, action, from_status, to_status, from_role, to_role,
       actor, reason, gates, source, db_user, details
FROM detection_model_transitions
WHERE model_id = %(model_id)s
ORDER BY at, id;

-- name: dependencies
SELECT model_id, depends_on FROM detection_model_dependencies ORDER BY model_id, depends_on;

-- name: insert_dependency
INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES (%(model_id)s, %(depends_on)s)
ON CONFLICT DO NOTHING;

-- name: delete_dependency
DELETE FROM detection_model_dependencies WHERE model_id = %(model_id)s AND depends_on = %(depends_on)s;

-- name: gates
SELECT min_cycles, max_failure_rate, min_agreement, max_duration_ratio, metric_thresholds
FROM detection_model_quality_gates WHERE model_id = %(model_id)s;

-- name: upsert_gates
INSERT INTO detection_model_quality_gates
    (model_id, min_cycles, max_failure_rate, min_agreement, max_duration_ratio, metric_thresholds)
VALUES (%(model_id)s, %(min_cycles)s, %(max_failure_rate)s, %(min_agreement)s, %(max_duration_ratio)s,
        %(metric_thresholds)s::jsonb)
ON CONFLICT (model_id) DO UPDATE SET
    min_cycles = EXCLUDED.min_cycles, max_failure_rate = EXCLUDED.max_failure_rate,
    min_agreement = EXCLUDED.min_agreement, max_duration_ratio = EXCLUDED.max_duration_ratio,
    metric_thresholds = EXCLUDED.metric_thresholds, updated_at = now();

-- name: version_outcomes
SELECT count(*) FILTER (WHERE state IN ('success', 'failed')),
       count(*) FILTER (WHERE state = 'failed')
FROM detection_model_task_outcomes
WHERE version_id = %(version_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s;

-- name: version_metric_means
SELECT metric_key, avg(metric_value), count(*)
FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
GROUP BY metric_key
ORDER BY metric_key;

-- name: latest_metrics
-- Each version's metrics of its latest stored cycle.
SELECT m.version_id, m.cycle_started_at, m.metric_key, m.metric_value
FROM detection_model_metrics m
JOIN (SELECT version_id, max(cycle_started_at) AS cycle_started_at
      FROM detection_model_metrics WHERE model_id = %(model_id)s GROUP BY version_id) latest
  USING (version_id, cycle_started_at)
ORDER BY m.version_id, m.metric_key;
