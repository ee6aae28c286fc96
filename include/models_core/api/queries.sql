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
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role <> 'BACKTEST';

-- name: cycle_output_rows
SELECT output_seq, input_ref, outputs FROM detection_model_run_outputs
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s AND role <> 'BACKTEST'
ORDER BY output_seq
LIMIT %(limit)s;

-- name: cycle_metrics
-- Every metric the version stored for the cycle (its own, the framework's, its evaluation),
-- each with the role the version ran in.
SELECT metric_key, metric_value, role FROM detection_model_metrics
WHERE version_id = %(version_id)s AND cycle_started_at = %(cycle)s
ORDER BY metric_key;

-- name: first_models
-- The models page without a filter: a page of model ids in order, read off the versions'
-- (model_id, version) key without looking at the rest of the registry (%(limit)s is one more
-- than the page, to tell whether another page follows).
SELECT DISTINCT model_id FROM detection_model_versions ORDER BY model_id LIMIT %(limit)s OFFSET %(offset)s;

-- name: matching_models
-- The models page with filters but no tag: models with a version that matches every version
-- filter at once (status, an ACTIVE role, text in the model id or the description), then, with
-- %(attention)s, only those that need someone (see tagged_models, which shares these lines).
-- The matching versions are found first and only then grouped into models (MATERIALIZED: else
-- the planner walks every model in order and filters each version).
WITH matching AS MATERIALIZED (
    SELECT DISTINCT model_id
    FROM detection_model_versions
    WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
      AND (%(role)s::text IS NULL OR (status = 'ACTIVE' AND role = %(role)s::text))
      AND (%(text)s::text IS NULL OR strpos(lower(model_id), lower(%(text)s::text)) > 0
           OR strpos(lower(coalesce(description, '')), lower(%(text)s::text)) > 0)
)
SELECT m.model_id
FROM matching m
WHERE NOT %(attention)s
   OR EXISTS (SELECT 1 FROM detection_model_versions e WHERE e.model_id = m.model_id AND e.status = 'ERROR')
   OR EXISTS (SELECT 1 FROM detection_model_approval_requests r
              WHERE r.model_id = m.model_id AND r.status = 'PENDING' AND r.expires_at > now())
   OR NOT EXISTS (SELECT 1 FROM detection_model_versions p
                  WHERE p.model_id = m.model_id AND p.status = 'ACTIVE' AND p.role = 'PRIMARY')
ORDER BY m.model_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: tagged_models
-- The models page with a tag filter (and maybe the others): the models carrying the first tag
-- asked for (%(lead_key)s, = %(lead_value)s unless NULL: any value) come off the tag table
-- (migration 0015) in model order, each kept if one of its versions matches every filter at
-- once (all the tags, as a JSON object of KEY: VALUE and a list of KEYs with any value, and
-- matching_models' filters); the page stops at its last model, so a tag most models carry
-- costs what a rare one does (0.1 ms and 0.6 ms at 100,000 versions, against 30 to 50 ms for
-- the versions carrying it read from the table).
SELECT t.model_id
FROM (SELECT DISTINCT model_id FROM detection_model_version_tags
      WHERE key = %(lead_key)s AND (%(lead_value)s::text IS NULL OR value = %(lead_value)s::text)) t
WHERE EXISTS (
        SELECT 1 FROM detection_model_versions v
        WHERE v.model_id = t.model_id
          AND (%(tags)s::jsonb IS NULL OR v.tags @> %(tags)s::jsonb)
          AND (%(tag_keys)s::text[] IS NULL OR v.tags ?& %(tag_keys)s::text[])
          AND (%(status)s::text IS NULL OR v.status = %(status)s::text)
          AND (%(role)s::text IS NULL OR (v.status = 'ACTIVE' AND v.role = %(role)s::text))
          AND (%(text)s::text IS NULL OR strpos(lower(v.model_id), lower(%(text)s::text)) > 0
               OR strpos(lower(coalesce(v.description, '')), lower(%(text)s::text)) > 0))
  AND (NOT %(attention)s
   OR EXISTS (SELECT 1 FROM detection_model_versions e WHERE e.model_id = t.model_id AND e.status = 'ERROR')
   OR EXISTS (SELECT 1 FROM detection_model_approval_requests r
              WHERE r.model_id = t.model_id AND r.status = 'PENDING' AND r.expires_at > now())
   OR NOT EXISTS (SELECT 1 FROM detection_model_versions p
                  WHERE p.model_id = t.model_id AND p.status = 'ACTIVE' AND p.role = 'PRIMARY'))
ORDER BY t.model_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: versions_of_models
-- What the page shows of its models' versions: the ACTIVE ones and those in ERROR, the newest
-- %(tagged_shown)s that carry the tags asked for (tagged: NULL without a tag filter) with how
-- many do, and each model's number of versions. Only these columns: decoding every version's
-- params, tags and metadata took longer than all the page's queries (7,500 JSON documents for
-- 25 models of 100 versions), and listing each tagged version of 25 models (2,500) half of it.
SELECT id, model_id, version, status, role, tagged AND tagged_rank <= %(tagged_shown)s, versions, tagged_count
FROM (
    SELECT *,
           row_number() OVER (PARTITION BY model_id, tagged ORDER BY id DESC) AS tagged_rank,
           count(*) FILTER (WHERE tagged) OVER (PARTITION BY model_id) AS tagged_count
    FROM (
        SELECT id, model_id, version, status, role,
               CASE WHEN %(tags)s::jsonb IS NOT NULL OR %(tag_keys)s::text[] IS NOT NULL
                    THEN tags @> coalesce(%(tags)s::jsonb, '{}') AND tags ?& coalesce(%(tag_keys)s::text[], '{}')
               END AS tagged,
               count(*) OVER (PARTITION BY model_id) AS versions
        FROM detection_model_versions
        WHERE model_id = ANY(%(models)s)
    ) page_versions
) v
WHERE status IN ('ACTIVE', 'ERROR') OR (tagged AND tagged_rank <= %(tagged_shown)s)
ORDER BY model_id, id;

-- name: upstream_of_models
SELECT model_id, depends_on FROM detection_model_dependencies
WHERE model_id = ANY(%(models)s)
ORDER BY model_id, depends_on;

-- name: pending_requests_of_models
-- Requests still waiting for approval (not expired), per model of the page.
SELECT model_id, count(*) FROM detection_model_approval_requests
WHERE model_id = ANY(%(models)s) AND status = 'PENDING' AND expires_at > now()
GROUP BY model_id;
