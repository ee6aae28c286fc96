-- name: set_description
UPDATE detection_model_versions SET description = %(description)s, updated_at = now() WHERE id = %(id)s;

-- name: set_tags
-- The whole tag set, as the API computed it from the row it holds locked.
UPDATE detection_model_versions SET tags = %(tags)s::jsonb, updated_at = now() WHERE id = %(id)s;

-- name: set_metadata
UPDATE detection_model_versions SET metadata = %(metadata)s::jsonb, updated_at = now() WHERE id = %(id)s;
