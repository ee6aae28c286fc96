-- A version's params are a JSON object (the model reads self.params["key"]); a row given
-- an array or a scalar with plain SQL is refused when it is written, naming this constraint.
-- NOT VALID: rows written before are not checked here; the model task refuses them by name.
ALTER TABLE detection_model_versions
    ADD CONSTRAINT detection_model_versions_params_object CHECK (jsonb_typeof(params) = 'object') NOT VALID;
