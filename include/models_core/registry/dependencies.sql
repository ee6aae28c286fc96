-- The registry's dependency edges (a model class's own depends_on is in code).

-- name: dependencies
SELECT model_id, depends_on FROM detection_model_dependencies ORDER BY model_id, depends_on;

-- name: edges_of_model
-- One model's edges, both ways (what it depends on, what depends on it): a model's page reads
-- these, not the whole registry's.
SELECT model_id, depends_on FROM detection_model_dependencies
WHERE model_id = %(model_id)s OR depends_on = %(model_id)s
ORDER BY model_id, depends_on;

-- name: insert_dependency
INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES (%(model_id)s, %(depends_on)s)
ON CONFLICT DO NOTHING;

-- name: delete_dependency
DELETE FROM detection_model_dependencies WHERE model_id = %(model_id)s AND depends_on = %(depends_on)s;
