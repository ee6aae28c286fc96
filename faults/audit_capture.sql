-- The storm's own record of every row change, independent of the product's audit triggers:
-- which transaction changed which row of the registry tables, and every audit row written.
-- Lives in its own schema of the storm's throw-away database; fires whatever a session sets.
CREATE SCHEMA faults_capture;

CREATE TABLE faults_capture.changes (
    id    bigserial PRIMARY KEY,
    txid  bigint NOT NULL DEFAULT txid_current(),
    tbl   text NOT NULL,
    op    text NOT NULL,
    old   jsonb,
    new   jsonb
);

CREATE FUNCTION faults_capture.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO faults_capture.changes (tbl, op, old, new)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;

CREATE TRIGGER faults_capture AFTER INSERT OR UPDATE OR DELETE ON kcg.detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION faults_capture.record();
CREATE TRIGGER faults_capture AFTER INSERT OR UPDATE OR DELETE ON kcg.detection_model_dependencies
    FOR EACH ROW EXECUTE FUNCTION faults_capture.record();
CREATE TRIGGER faults_capture AFTER INSERT OR UPDATE OR DELETE ON kcg.detection_model_quality_gates
    FOR EACH ROW EXECUTE FUNCTION faults_capture.record();
CREATE TRIGGER faults_capture AFTER INSERT ON kcg.detection_model_transitions
    FOR EACH ROW EXECUTE FUNCTION faults_capture.record();
