-- name: version_figures
-- Every version of the model that ran or recorded the metric in the window: its cycles and
-- failures (each cycle once: its latest attempt, detection_model_cycle_evidence) and the
-- metric's mean. The framework's own metrics (is_default) count only when asked for; how
-- many there were is returned anyway, so a request for one without asking can be answered
-- with what to do. Newest version first (1.10.0 before 1.9.0): the order ties keep.
WITH outcomes AS (
    SELECT version_id, count(*) AS cycles, count(*) FILTER (WHERE state = 'failed') AS failed
    FROM detection_model_cycle_evidence
    WHERE model_id = %(model_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
    GROUP BY version_id
), metric AS (
    SELECT version_id,
           avg(metric_value) FILTER (WHERE %(include_defaults)s OR NOT is_default) AS mean,
           count(*) FILTER (WHERE %(include_defaults)s OR NOT is_default) AS samples,
           count(*) FILTER (WHERE is_default) AS framework_samples
    FROM detection_model_metrics
    WHERE model_id = %(model_id)s AND metric_key = %(metric)s
      AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
    GROUP BY version_id
)
SELECT v.version, v.status, v.role, coalesce(o.cycles, 0), coalesce(o.failed, 0), m.mean,
       coalesce(m.samples, 0), coalesce(m.framework_samples, 0)
FROM detection_model_versions v
LEFT JOIN outcomes o ON o.version_id = v.id
LEFT JOIN metric m ON m.version_id = v.id
WHERE v.model_id = %(model_id)s AND (o.version_id IS NOT NULL OR m.version_id IS NOT NULL)
ORDER BY string_to_array(v.version, '.')::int[] DESC;

-- name: metric_keys
-- The metrics the model's versions recorded in the window, to name them when one is missing.
SELECT DISTINCT metric_key
FROM detection_model_metrics
WHERE model_id = %(model_id)s AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s
ORDER BY metric_key;
