-- name: lock_registry
LOCK TABLE detection_model_versions IN SHARE ROW EXCLUSIVE MODE;

-- name: count_versions
SELECT count(*) FROM detection_model_versions;

-- name: insert_version
INSERT INTO detection_model_versions (model_id, version, status, role, params, description)
VALUES (%(model_id)s, %(version)s, 'ACTIVE', %(role)s, %(params)s::jsonb, 'demo registry');

-- name: insert_dependency
INSERT INTO detection_model_dependencies (model_id, depends_on)
VALUES (%(model_id)s, %(depends_on)s);
