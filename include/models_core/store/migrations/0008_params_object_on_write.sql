-- 0007's CHECK, even NOT VALID, is checked on every UPDATE of a row, so a version written
-- with array params before 0007 could not even be archived or deactivated until someone
-- fixed its params by hand. A trigger checks params only where they are written (INSERT,
-- or an UPDATE that sets params) and names the version; the model task still refuses an
-- old row by name when it runs.
ALTER TABLE detection_model_versions DROP CONSTRAINT detection_model_versions_params_object;

CREATE FUNCTION detection_model_versions_params_object() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF jsonb_typeof(NEW.params) <> 'object' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'detection_model_versions_params_object',
            MESSAGE = format('params of %s %s must be a JSON object, not %s (detection_model_versions_params_object)',
                             NEW.model_id, NEW.version, jsonb_typeof(NEW.params));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER detection_model_versions_params_object
    BEFORE INSERT OR UPDATE OF params ON detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION detection_model_versions_params_object();
