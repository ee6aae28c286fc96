-- name: stage_checks
SELECT required_tags, require_description FROM detection_model_stage_checks WHERE model_id = %(model_id)s;

-- name: upsert_stage_checks
INSERT INTO detection_model_stage_checks (model_id, required_tags, require_description)
VALUES (%(model_id)s, %(required_tags)s, %(require_description)s)
ON CONFLICT (model_id) DO UPDATE SET
    required_tags = EXCLUDED.required_tags, require_description = EXCLUDED.require_description,
    updated_at = now();
