-- The floors of the registry benchmark: for each read, the bare SQL that reads the rows it
-- shows, through the indexes, on a connection already open. What a read costs beyond its
-- floor is what the product adds: HTTP, login, its own queries, Python, JSON.

-- name: nothing
-- What a request that reads nothing costs the database: a round trip.
SELECT 1;

-- name: page_models
-- The first page of models (by model id), as the models page lists them.
SELECT DISTINCT model_id FROM detection_model_versions ORDER BY model_id LIMIT %(limit)s;

-- name: tagged_page_models
-- The first page of models with a version carrying the tag, off the tag table's key in order.
SELECT DISTINCT model_id FROM detection_model_version_tags
WHERE key = %(key)s AND value = %(value)s
ORDER BY model_id LIMIT %(limit)s;

-- name: page_versions
-- A page's models: their ACTIVE versions with the window's cycles, failures and metric means,
-- and their versions in ERROR.
SELECT v.model_id, v.id, v.version, v.status, v.role, o.cycles, o.failed, m.means
FROM detection_model_versions v
LEFT JOIN LATERAL (
    SELECT count(*) AS cycles, count(*) FILTER (WHERE state = 'failed') AS failed
    FROM detection_model_task_outcomes
    WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
) o ON v.status = 'ACTIVE'
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(metric_key, mean) AS means
    FROM (SELECT metric_key, avg(metric_value) AS mean
          FROM detection_model_metrics
          WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
          GROUP BY metric_key) k
) m ON v.status = 'ACTIVE'
WHERE v.model_id = ANY(%(models)s) AND v.status IN ('ACTIVE', 'ERROR')
ORDER BY v.model_id, v.id;

-- name: page_drift
-- The page's models' metrics in the window and in the same window on each of the seven days
-- before (the drift), their means per version and metric each day; the metrics the drift
-- compares only (a model's own and output_count).
SELECT d, m.version_id, m.metric_key, avg(m.metric_value)
FROM generate_series(0, 7) d
CROSS JOIN LATERAL (
    SELECT version_id, metric_key, metric_value FROM detection_model_metrics
    WHERE model_id = ANY(%(models)s)
      AND cycle_started_at >= %(start)s::timestamptz - d * interval '1 day'
      AND cycle_started_at < %(end)s::timestamptz - d * interval '1 day'
      AND (NOT is_default OR metric_key = 'output_count')
    OFFSET 0
) m
GROUP BY 1, 2, 3;

-- name: tagged_versions
-- The newest versions of each of a page's models that carry the tag, and how many do: the tag
-- filter lists them.
SELECT model_id, count(*), (array_agg(version ORDER BY id DESC))[1:%(shown)s]
FROM detection_model_versions
WHERE model_id = ANY(%(models)s) AND tags @> %(tags)s::jsonb
GROUP BY model_id
ORDER BY model_id;

-- name: model_statuses
-- Each version of a model, its status and role: whether another is PRIMARY.
SELECT id, version, status, role FROM detection_model_versions WHERE model_id = %(model_id)s;

-- name: status_history
-- What a promotion's policy replays of a model's history: which version moved, from what to what.
SELECT id, at, version_id, version, action, from_status, to_status, from_role, to_role
FROM detection_model_transitions WHERE model_id = %(model_id)s ORDER BY at, id;

-- name: model_versions
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions WHERE model_id = %(model_id)s ORDER BY id;

-- name: history
SELECT id, at, model_id, version_id, version, action, from_status, to_status, from_role, to_role,
       actor, actor_kind, reason, gates, source, db_user, details, basis, request_id
FROM detection_model_transitions WHERE model_id = %(model_id)s ORDER BY at, id;

-- name: version_evidence
-- One version's row, its model's gates, and its cycles, failures and metric means in the window.
SELECT v.id, v.status, v.role, v.tags, v.params, g.min_cycles, o.cycles, o.failed, m.means
FROM detection_model_versions v
LEFT JOIN detection_model_quality_gates g ON g.model_id = v.model_id
CROSS JOIN LATERAL (
    SELECT count(*) AS cycles, count(*) FILTER (WHERE state = 'failed') AS failed
    FROM detection_model_task_outcomes
    WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
) o
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(metric_key, mean) AS means
    FROM (SELECT metric_key, avg(metric_value) AS mean
          FROM detection_model_metrics
          WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
          GROUP BY metric_key) k
) m
WHERE v.model_id = %(model_id)s AND v.version = %(version)s;

-- name: all_versions_brief
-- What `modelreg list` shows: every version's model, number, status and role.
SELECT model_id, version, status, role FROM detection_model_versions ORDER BY model_id, id;

-- name: metric_by_version
-- What `modelreg best` ranks: each version of the model that ran in the window, its cycles,
-- failures and the metric's mean.
SELECT v.version, v.status, v.role, o.cycles, o.failed, m.mean
FROM detection_model_versions v
CROSS JOIN LATERAL (
    SELECT count(*) AS cycles, count(*) FILTER (WHERE state = 'failed') AS failed
    FROM detection_model_task_outcomes
    WHERE version_id = v.id AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
) o
CROSS JOIN LATERAL (
    SELECT avg(metric_value) AS mean
    FROM detection_model_metrics
    WHERE version_id = v.id AND metric_key = %(metric)s AND cycle_started_at >= %(start)s
      AND cycle_started_at < %(end)s
) m
WHERE v.model_id = %(model_id)s AND o.cycles > 0;

-- name: active_versions
SELECT id, model_id, version, role FROM detection_model_versions WHERE status = 'ACTIVE' ORDER BY model_id, id;

-- name: dependencies
SELECT model_id, depends_on FROM detection_model_dependencies ORDER BY model_id, depends_on;

-- name: window_outcomes
-- The hourly snapshot's rows: outcomes, metrics and outputs of the window, per version.
SELECT version_id, count(*), count(*) FILTER (WHERE state = 'failed')
FROM detection_model_task_outcomes
WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
GROUP BY version_id;

-- name: window_metrics
SELECT version_id, metric_key, count(*), avg(metric_value)
FROM detection_model_metrics
WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
GROUP BY version_id, metric_key;

-- name: window_drift
-- The same window on each of the seven days before, for the drift: one index range scan a day
-- (a plain join let PostgreSQL 15 scan the whole table, 19 s).
SELECT d, m.version_id, m.metric_key, avg(m.metric_value)
FROM generate_series(1, 7) d
CROSS JOIN LATERAL (
    SELECT version_id, metric_key, metric_value FROM detection_model_metrics
    WHERE cycle_started_at >= %(start)s::timestamptz - d * interval '1 day'
      AND cycle_started_at < %(end)s::timestamptz - d * interval '1 day'
    OFFSET 0
) m
GROUP BY 1, 2, 3;

-- name: window_outputs
SELECT version_id, count(*)
FROM detection_model_run_outputs
WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
GROUP BY version_id;
