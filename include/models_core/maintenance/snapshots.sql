-- Monitoring snapshot queries. Every query is bounded by the window on cycle_started_at, so
-- run outputs are pruned to the partitions of the window and the indexes do the rest.
-- %(models)s is NULL for all models, or an array of model ids.

-- name: active_versions
SELECT id, model_id, version, role
FROM detection_model_versions
WHERE status = 'ACTIVE' AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
ORDER BY model_id, role <> 'PRIMARY', version;

-- name: outcomes
-- Counted per version first, then each version's number looked up by its id: a join, even
-- after the count, made the planner hash the whole versions table (40 ms at 100,000 versions,
-- for a page of 25 models whose outcomes took 1.5 ms).
SELECT o.model_id, o.version_id,
       coalesce((SELECT v.version FROM detection_model_versions v WHERE v.id = o.version_id), '?'), o.role,
       o.cycles, o.succeeded, o.failed, o.skipped, o.skipped_backend_down
FROM (
    SELECT model_id, version_id, role,
           count(*) AS cycles,
           count(*) FILTER (WHERE state = 'success') AS succeeded,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state IN ('skipped', 'upstream_failed', 'upstream_skipped')) AS skipped,
           count(*) FILTER (WHERE skip_cause = 'backend_down') AS skipped_backend_down
    FROM detection_model_task_outcomes
    WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
      AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
    GROUP BY 1, 2, 3
) o
ORDER BY 1, 2;

-- name: primary_problems
-- Skips because a backend was DOWN are counted apart (third column).
SELECT model_id, state, skip_cause IS NOT DISTINCT FROM 'backend_down', count(*)
FROM detection_model_task_outcomes
WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s AND role = 'PRIMARY'
  AND state IN ('failed', 'skipped', 'upstream_failed', 'upstream_skipped')
  AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- name: metric_stats
SELECT version_id, metric_key, count(*), avg(metric_value), min(metric_value), max(metric_value),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY metric_value),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY metric_value),
       sum(metric_value)
FROM detection_model_metrics
WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
  AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: shadow_comparison
-- Each SHADOW/CHALLENGER against its model's PRIMARY on the cycles the shadow ran, by input_ref.
-- For some models, their versions' rows are read through the (version_id, cycle_started_at)
-- index: the ids are found first (an ARRAY subquery, computed once, is an index condition)
-- instead of every output row of the window being read and filtered by model.
WITH shadow AS (
    SELECT model_id, version_id, cycle_started_at, input_ref, outputs
    FROM detection_model_run_outputs
    WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s AND role IN ('SHADOW', 'CHALLENGER')
      AND (%(models)s::text[] IS NULL
           OR version_id = ANY(ARRAY(SELECT id FROM detection_model_versions
                                     WHERE model_id = ANY(%(models)s::text[]))))
), shadow_cycles AS (
    SELECT DISTINCT model_id, version_id, cycle_started_at FROM shadow
), primary_rows AS (
    SELECT sc.version_id AS shadow_id, p.cycle_started_at, p.input_ref, p.outputs
    FROM shadow_cycles sc
    JOIN detection_model_run_outputs p
      ON p.model_id = sc.model_id AND p.cycle_started_at = sc.cycle_started_at AND p.role = 'PRIMARY'
    WHERE p.cycle_started_at >= %(start)s AND p.cycle_started_at < %(end)s
)
SELECT coalesce(s.version_id, p.shadow_id) AS version_id,
       count(*) FILTER (WHERE s.version_id IS NOT NULL AND p.shadow_id IS NOT NULL) AS both_sides,
       count(*) FILTER (WHERE p.shadow_id IS NULL) AS shadow_only,
       count(*) FILTER (WHERE s.version_id IS NULL) AS primary_only,
       count(*) FILTER (WHERE s.outputs = p.outputs) AS agreeing
FROM shadow s
FULL JOIN primary_rows p
  ON p.shadow_id = s.version_id AND p.cycle_started_at = s.cycle_started_at AND p.input_ref = s.input_ref
GROUP BY 1
ORDER BY 1;

-- name: drift
-- Mean per cycle of each metric in the window (days_back 0) and the same window 1..7 days earlier.
-- One index range scan per day reads only the eight windows, not the week between them, and is
-- averaged per version and metric inside its day (sorting the eight days' rows together spilled
-- to disk: 90 ms for a page of 25 models at 100,000 versions against 35). The models are chosen
-- inside the subquery, so that a snapshot of some models reads only theirs. The versions' labels
-- are read apart (version_labels): joined here, they cost an all-models snapshot 250 ms more.
SELECT m.version_id, m.metric_key, d.days_back, m.mean
FROM generate_series(0, 7) AS d(days_back)
CROSS JOIN LATERAL (
    SELECT version_id, metric_key, avg(metric_value) AS mean
    FROM detection_model_metrics
    WHERE cycle_started_at >= %(start)s::timestamptz - d.days_back * interval '1 day'
      AND cycle_started_at < %(end)s::timestamptz - d.days_back * interval '1 day'
      AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
      AND metric_key <> 'cycle_duration_ms' AND (NOT is_default OR metric_key = 'output_count')
    GROUP BY 1, 2
) m
ORDER BY 1, 2, 3;

-- name: version_labels
-- `model@version[ROLE]` of the given versions, by id.
SELECT id, model_id || '@' || version || '[' || role || ']'
FROM detection_model_versions
WHERE id = ANY(%(ids)s::bigint[]);

-- name: unfinished_cycles
-- Cycles that stored PRIMARY results but never recorded their summary, though their run
-- should have ended by %(settled)s: a run held open, e.g. by SHADOW tasks that cannot start.
-- The window's cycles are walked one index probe each (a loose scan of the metrics'
-- (cycle_started_at, ...) index), and only those without a summary are looked into: DISTINCT
-- over the window's metric rows read all of them (the whole registry's, for a snapshot of one
-- model too).
WITH RECURSIVE cycles AS (
    (SELECT cycle_started_at FROM detection_model_metrics
     WHERE cycle_started_at >= %(start)s AND cycle_started_at < least(%(end)s, %(settled)s)
     ORDER BY cycle_started_at LIMIT 1)
    UNION ALL
    SELECT (SELECT m.cycle_started_at FROM detection_model_metrics m
            WHERE m.cycle_started_at > cycles.cycle_started_at AND m.cycle_started_at < least(%(end)s, %(settled)s)
            ORDER BY m.cycle_started_at LIMIT 1)
    FROM cycles
    WHERE cycles.cycle_started_at IS NOT NULL
)
SELECT count(*), min(c.cycle_started_at)
FROM cycles c
WHERE c.cycle_started_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM detection_model_cycle_summaries s WHERE s.cycle_started_at = c.cycle_started_at)
  AND EXISTS (SELECT 1 FROM detection_model_metrics m
              WHERE m.cycle_started_at = c.cycle_started_at AND m.role = 'PRIMARY' AND m.metric_key = 'output_count');

-- name: default_partition_rows
SELECT count(*) FROM detection_model_run_outputs_default;

-- name: insert_snapshot
INSERT INTO detection_model_snapshots (kind, window_start, window_end, models, report)
VALUES (%(kind)s, %(start)s, %(end)s, %(models)s, %(report)s::jsonb)
RETURNING id;

-- name: alert_counts
-- Output rows with "alert": true per version in the window, from any model that reports one.
SELECT o.model_id, v.version, o.role, count(*) AS alerts, count(DISTINCT o.cycle_started_at) AS cycles
FROM detection_model_run_outputs o
JOIN detection_model_versions v ON v.id = o.version_id
WHERE o.cycle_started_at >= %(start)s AND o.cycle_started_at < %(end)s AND o.outputs -> 'alert' = 'true'::jsonb
  AND o.role <> 'BACKTEST'
  AND (%(models)s::text[] IS NULL OR o.model_id = ANY(%(models)s::text[]))
GROUP BY 1, 2, 3
ORDER BY 1, o.role <> 'PRIMARY', 2;

-- name: latest_cycle_alerts
-- The PRIMARY alerts of the latest cycle in the window that has any, with their figures.
WITH latest AS (
    SELECT max(cycle_started_at) AS cycle
    FROM detection_model_run_outputs
    WHERE cycle_started_at >= %(start)s AND cycle_started_at < %(end)s AND role = 'PRIMARY'
      AND outputs -> 'alert' = 'true'::jsonb
      AND (%(models)s::text[] IS NULL OR model_id = ANY(%(models)s::text[]))
)
SELECT o.cycle_started_at, o.model_id, v.version, o.input_ref, o.outputs - 'alert' AS figures
FROM latest
JOIN detection_model_run_outputs o ON o.cycle_started_at = latest.cycle
JOIN detection_model_versions v ON v.id = o.version_id
WHERE o.role = 'PRIMARY' AND o.outputs -> 'alert' = 'true'::jsonb
  AND (%(models)s::text[] IS NULL OR o.model_id = ANY(%(models)s::text[]))
ORDER BY o.model_id, o.output_seq
LIMIT %(limit)s;
