-- Versions and their transitions (the audit trail the triggers write).

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
       actor, actor_kind, reason, gates, source, db_user, details, basis, request_id
FROM detection_model_transitions
WHERE model_id = %(model_id)s
ORDER BY at, id;

-- name: error_reasons
-- Why each version of the models went to ERROR: the latest transition that moved it there.
SELECT DISTINCT ON (model_id, version) model_id, version, reason, at, actor
FROM detection_model_transitions
WHERE model_id = ANY(%(models)s) AND to_status = 'ERROR' AND from_status IS DISTINCT FROM 'ERROR'
ORDER BY model_id, version, at DESC, id DESC;

-- name: status_history
-- What the transition policy replays of a model's history: which version moved, how and when,
-- without the trail's JSON and text columns.
SELECT id, at, version_id, version, action, from_status, to_status, from_role, to_role
FROM detection_model_transitions
WHERE model_id = %(model_id)s
ORDER BY at, id;

-- name: primary_at
-- What can decide which version was the model's ACTIVE PRIMARY at %(at)s: the last transition
-- into it by then (lifecycle.enters_primary), and the later moves of that version by then (a row
-- of it with a status); no row before that entry, nor of another version after it, changes
-- what lifecycle.primary_after replays. One statement, so one snapshot of the trail: the entry
-- comes off the (model_id, at, id) index backwards, its version's moves forwards from it.
WITH last_entry AS (
    SELECT at, id, version FROM detection_model_transitions
    WHERE model_id = %(model_id)s AND at <= %(at)s
      AND version IS NOT NULL AND to_status = 'ACTIVE' AND to_role = 'PRIMARY'
    ORDER BY at DESC, id DESC
    LIMIT 1
)
SELECT t.version, t.from_status, t.to_status, t.to_role
FROM last_entry e
JOIN detection_model_transitions t
  ON t.model_id = %(model_id)s AND t.at <= %(at)s AND (t.at, t.id) >= (e.at, e.id)
 AND t.version = e.version AND (t.from_status IS NOT NULL OR t.to_status IS NOT NULL)
ORDER BY t.at, t.id;

-- name: last_transition_of_version
-- The version's latest audit row: any change of it since a judgment moves this on.
SELECT max(id) FROM detection_model_transitions WHERE version_id = %(version_id)s;

-- name: models_summary
-- `modelreg list`: each model's ACTIVE PRIMARY, its other ACTIVE versions (newest version first)
-- and how many versions it has, one row per model: the registry's 100,000 versions are
-- counted where they are, not carried whole to the client.
SELECT model_id,
       min(version) FILTER (WHERE status = 'ACTIVE' AND role = 'PRIMARY'),
       coalesce(array_agg(version || ' ' || role ORDER BY string_to_array(version, '.')::int[] DESC)
                FILTER (WHERE status = 'ACTIVE' AND role <> 'PRIMARY'), '{}'),
       count(*)
FROM detection_model_versions
GROUP BY model_id
ORDER BY model_id;
