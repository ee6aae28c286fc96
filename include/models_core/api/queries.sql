-- Reads the registry pages need beyond ModelRegistry and the snapshot queries.
-- Each is bounded by a window on cycle_started_at or by one (version, cycle).

-- name: last_outcomes
-- Each given version's latest task outcome in the window, with the run and task to link to.
SELECT v.id, o.cycle_started_at, o.state, o.dag_run_id, o.task_id
FROM unnest(%(version_ids)s::bigint[]) AS v(id)
CROSS JOIN LATERAL (
    SELECT cycle_started_at, state, dag_run_id, task_id
    FROM detection_model_task_outcomes
    WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
    ORDER BY cycle_started_at DESC
    LIMIT 1
) o;

-- name: metric_series
-- A model's metrics per version over the window, averaged in buckets of %(bucket)s (a chart's
-- points), each at its first cycle's time (a bucket of one cycle is that cycle).
SELECT m.metric_key, m.version_id, v.version, min(m.cycle_started_at) AS at, avg(m.metric_value)
FROM detection_model_metrics m
JOIN detection_model_versions v ON v.id = m.version_id
WHERE m.model_id = %(model_id)s AND m.cycle_started_at >= %(start)s AND m.cycle_started_at < %(end)s
GROUP BY m.metric_key, m.version_id, v.version, date_bin(%(bucket)s, m.cycle_started_at, %(start)s)
ORDER BY 1, 2, 4;

-- name: version_by_id
SELECT model_id, version, status, role FROM detection_model_versions WHERE id = %(version_id)s;

-- name: cycle_output_count
SELECT count(*) FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s;

-- name: cycle_output_rows
SELECT output_seq, input_ref, outputs FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s
ORDER BY output_seq
LIMIT %(limit)s;

-- name: cycle_metrics
-- Every metric the version stored for the cycle (its own, the framework's, its evaluation),
-- each with the role the version ran in.
SELECT metric_key, metric_value, role FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s
ORDER BY metric_key;
