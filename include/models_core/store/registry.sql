-- name: active_versions
SELECT id, model_id, version, role
FROM detection_model_versions
WHERE status = 'ACTIVE'
ORDER BY model_id, id;

-- name: dependencies
SELECT DISTINCT model_id, depends_on
FROM detection_model_dependencies
ORDER BY model_id, depends_on;

-- name: version_row
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions
WHERE model_id = %(model_id)s AND version = %(version)s;

-- name: active_primary
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM detection_model_versions
WHERE model_id = %(model_id)s AND status = 'ACTIVE' AND role = 'PRIMARY';
