-- What a version has shown: the evidence the quality gates, --check and compare read.
-- One cycle is one piece of evidence (detection_model_cycle_evidence: its latest attempt).

-- name: gates
-- In the order of evidence.GATE_KEYS.
SELECT min_cycles, max_failure_rate, min_agreement, max_duration_ratio, max_score_difference,
       metric_thresholds, gate_kind, min_backtest_cycles
FROM detection_model_quality_gates WHERE model_id = %(model_id)s;

-- name: version_outcomes
-- Cycles the version ran in the window, and how many of them failed.
SELECT count(*), count(*) FILTER (WHERE state = 'failed')
FROM detection_model_cycle_evidence
WHERE version_id = %(version_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s;

-- name: version_metric_means
SELECT metric_key, avg(metric_value), count(*)
FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
GROUP BY metric_key
ORDER BY metric_key;

-- name: cycle_evaluations
-- The version's evaluation against the PRIMARY cycle by cycle, from its live cycles
-- (%(evidence)s 'live') or its backtests ('backtest'), for the interval gates: inputs compared,
-- inputs agreed, agreement, mean score difference, duration ratio. Cycles from %(start)s
-- (NULL: the first) to before %(end)s (NULL: the last); the other table's branch is never read.
WITH metrics AS (
    SELECT cycle_started_at, metric_key, metric_value
    FROM detection_model_metrics
    WHERE %(evidence)s = 'live' AND version_id = %(version_id)s
      AND cycle_started_at >= coalesce(%(start)s::timestamptz, '-infinity')
      AND cycle_started_at < coalesce(%(end)s::timestamptz, 'infinity')
      AND metric_key IN ('eval_inputs_both', 'eval_inputs_agreed', 'eval_agreement',
                         'eval_score_mean_abs_diff', 'eval_duration_ratio')
    UNION ALL
    SELECT cycle_started_at, metric_key, metric_value
    FROM detection_model_backtest_metrics
    WHERE %(evidence)s = 'backtest' AND version_id = %(version_id)s
      AND cycle_started_at >= coalesce(%(start)s::timestamptz, '-infinity')
      AND cycle_started_at < coalesce(%(end)s::timestamptz, 'infinity')
      AND metric_key IN ('eval_inputs_both', 'eval_inputs_agreed', 'eval_agreement',
                         'eval_score_mean_abs_diff', 'eval_duration_ratio')
)
SELECT cycle_started_at,
       max(metric_value) FILTER (WHERE metric_key = 'eval_inputs_both'),
       max(metric_value) FILTER (WHERE metric_key = 'eval_inputs_agreed'),
       max(metric_value) FILTER (WHERE metric_key = 'eval_agreement'),
       max(metric_value) FILTER (WHERE metric_key = 'eval_score_mean_abs_diff'),
       max(metric_value) FILTER (WHERE metric_key = 'eval_duration_ratio')
FROM metrics
GROUP BY cycle_started_at
ORDER BY cycle_started_at;

-- name: latest_metrics
-- Each version's metrics of its latest stored cycle. Version by version, the latest cycle is
-- the last entry of the version's (version_id, cycle_started_at, ...) key: a few index pages
-- per version, however much history the model has (grouping the model's metric rows read all
-- of them: 280 ms for 100 versions with 90 days of hourly cycles).
SELECT m.version_id, m.cycle_started_at, m.metric_key, m.metric_value
FROM detection_model_versions v
CROSS JOIN LATERAL (
    SELECT max(cycle_started_at) AS cycle_started_at FROM detection_model_metrics WHERE version_id = v.id
) latest
JOIN detection_model_metrics m ON m.version_id = v.id AND m.cycle_started_at = latest.cycle_started_at
WHERE v.model_id = %(model_id)s
ORDER BY m.version_id, m.metric_key;
