-- The change transaction every registry concern runs its writes in: what the audit triggers
-- record about it, and the locks that keep two changes of one model apart.

-- name: set_change_context
-- What the audit triggers record for the statements that follow, until the transaction ends
-- (or the next context): the action, who (and what kind of actor), why, the figures, and for
-- a version entering PRIMARY the basis and the request it applies.
SELECT set_config('models_core.action', %(action)s, true),
       set_config('models_core.actor', %(actor)s, true),
       set_config('models_core.actor_kind', %(actor_kind)s, true),
       set_config('models_core.reason', coalesce(%(reason)s, ''), true),
       set_config('models_core.gates', coalesce(%(gates)s, ''), true),
       set_config('models_core.basis', coalesce(%(basis)s, ''), true),
       set_config('models_core.request_id', coalesce(%(request_id)s::text, ''), true);

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

-- name: model_versions
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions
WHERE model_id = %(model_id)s
ORDER BY id;

-- name: version_states
-- Each version of a model and where it stands, without its JSON: what a check reads of the others.
SELECT id, model_id, version, status, role
FROM detection_model_versions
WHERE model_id = %(model_id)s
ORDER BY id;

-- name: database_user
SELECT session_user::text;
