-- name: model_versions
-- {versions} is the schema-qualified table, composed with psycopg2.sql: a reader's own
-- connection may have any search_path.
SELECT id, model_id, version, status, role, params, description, created_at, updated_at, tags, metadata
FROM {versions}
WHERE model_id = %(model_id)s;
