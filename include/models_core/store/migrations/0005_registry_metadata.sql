-- Registry completeness: tags and a metadata document per version, checks before a version
-- may run as SHADOW/CHALLENGER, and promotions that need a second person's approval.

-- 1. Tags and metadata live on the version row, so the versions trigger audits them like
-- every other column of the version (one transitions row per change, before and after in
-- details; a change of status and tags in one statement is one row) and a version's tags can
-- never outlive it.
--   tags      {"validated": "true", "data_version": "2026-11-01"}: string keys and values
--   metadata  a free JSON object; the keys the README documents (training_data, framework,
--             input_schema, output_schema, dependencies, created_by) are checked by the API
ALTER TABLE detection_model_versions
    ADD COLUMN tags jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT detection_model_versions_tags_check
        CHECK (jsonb_typeof(tags) = 'object' AND NOT jsonb_path_exists(tags, 'strict $.* ? (@.type() != "string")')),
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT detection_model_versions_metadata_check CHECK (jsonb_typeof(metadata) = 'object');

-- The versions trigger (0004) already compares every column of an update, tags and metadata
-- included. An insert now records every column too (not only params and description), so a
-- version inserted with tags or metadata by plain SQL has them in its history; the rest of the
-- function is 0004's, restated because a function is replaced whole.
CREATE OR REPLACE FUNCTION detection_model_versions_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    ctx record := detection_model_change_context();
    changed jsonb := '{}'::jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO detection_model_transitions
            (model_id, version_id, version, action, to_status, to_role, actor, reason, gates, source, details)
        VALUES (NEW.model_id, NEW.id, NEW.version, coalesce(ctx.action, 'sql_insert'), NEW.status, NEW.role,
                ctx.actor, ctx.reason, ctx.gates, ctx.source,
                to_jsonb(NEW) - 'id' - 'model_id' - 'version' - 'status' - 'role' - 'created_at' - 'updated_at');
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO detection_model_transitions
            (model_id, version_id, version, action, from_status, from_role, actor, reason, source)
        VALUES (OLD.model_id, OLD.id, OLD.version, coalesce(ctx.action, 'sql_delete'), OLD.status, OLD.role,
                ctx.actor, ctx.reason, ctx.source);
        RETURN NULL;
    END IF;
    -- UPDATE: every column but updated_at is part of the version's state; status and role
    -- have columns of their own, the others (params, description, version, ... and any column
    -- a later migration adds) go into details as [before, after].
    SELECT coalesce(jsonb_object_agg(n.key, jsonb_build_array(o.value, n.value)), '{}'::jsonb) INTO changed
    FROM jsonb_each(to_jsonb(NEW)) AS n(key, value)
    JOIN jsonb_each(to_jsonb(OLD)) AS o(key, value) USING (key)
    WHERE n.key NOT IN ('status', 'role', 'updated_at') AND n.value IS DISTINCT FROM o.value;
    IF changed = '{}'::jsonb AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.role IS NOT DISTINCT FROM OLD.role THEN
        RETURN NULL;
    END IF;
    INSERT INTO detection_model_transitions
        (model_id, version_id, version, action, from_status, to_status, from_role, to_role,
         actor, reason, gates, source, details)
    VALUES (NEW.model_id, NEW.id, NEW.version, coalesce(ctx.action, 'sql_update'), OLD.status, NEW.status,
            OLD.role, NEW.role, ctx.actor, ctx.reason, ctx.gates, ctx.source, nullif(changed, '{}'::jsonb));
    RETURN NULL;
END $$;

-- 2. Per-model settings and approval requests are audited by one function, as the gates
-- were: one transitions row per changed row, {"before": ..., "after": ...} in details
-- (updated_at left out: touching it is no change). TG_ARGV[0] names a plain-SQL change.
-- A row that names a version (approval requests do) is recorded against that version.
CREATE FUNCTION detection_model_row_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    ctx record := detection_model_change_context();
    before jsonb := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) - 'updated_at' END;
    after jsonb := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) - 'updated_at' END;
    subject jsonb := coalesce(after, before);
BEGIN
    IF before IS NOT DISTINCT FROM after THEN
        RETURN NULL;
    END IF;
    INSERT INTO detection_model_transitions (model_id, version_id, version, action, actor, reason, source, details)
    VALUES (subject->>'model_id', (subject->>'version_id')::bigint, subject->>'version',
            coalesce(ctx.action, TG_ARGV[0]), ctx.actor, ctx.reason, ctx.source,
            jsonb_build_object('before', before, 'after', after));
    RETURN NULL;
END $$;

-- The gates keep their behaviour (action sql_gates for plain SQL) on the shared function.
DROP TRIGGER detection_model_quality_gates_audit ON detection_model_quality_gates;
DROP FUNCTION detection_model_quality_gates_audit();
CREATE TRIGGER detection_model_quality_gates_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_quality_gates
    FOR EACH ROW EXECUTE FUNCTION detection_model_row_audit('sql_gates');

-- 3. Checks before a version may run as SHADOW or CHALLENGER (and, with the gates, before it
-- becomes PRIMARY). A model without a row requires nothing beyond valid params.
CREATE TABLE detection_model_stage_checks (
    model_id             varchar(64) PRIMARY KEY,
    -- each entry is KEY (the tag must be set) or KEY=VALUE (it must have that value)
    required_tags        text[] NOT NULL DEFAULT '{}',
    require_description  boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER detection_model_stage_checks_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_stage_checks
    FOR EACH ROW EXECUTE FUNCTION detection_model_row_audit('sql_checks');

-- 4. Models whose promotions need a second person's approval.
CREATE TABLE detection_model_approval_settings (
    model_id    varchar(64) PRIMARY KEY,
    required    boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER detection_model_approval_settings_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_approval_settings
    FOR EACH ROW EXECUTE FUNCTION detection_model_row_audit('sql_approvals');

-- A promotion waiting for approval, with the figures it was requested on. A PENDING request
-- past expires_at is expired: it can no longer be approved, and the model's next request
-- records it as EXPIRED.
CREATE TABLE detection_model_approval_requests (
    id                       bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_id                 varchar(64) NOT NULL,
    version_id               bigint NOT NULL,
    version                  varchar(32) NOT NULL,
    status                   varchar(16) NOT NULL DEFAULT 'PENDING'
                             CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')),
    requested_by             text NOT NULL,
    requested_at             timestamptz NOT NULL DEFAULT now(),
    expires_at               timestamptz NOT NULL,
    reason                   text,
    -- a forced request asks to promote past failing gates; it still needs the approval
    forced                   boolean NOT NULL DEFAULT false,
    keep_previous_as_shadow  boolean NOT NULL DEFAULT false,
    window_hours             double precision NOT NULL CHECK (window_hours > 0),
    checks                   jsonb NOT NULL,
    gates                    jsonb NOT NULL,
    decided_by               text,
    decided_at               timestamptz,
    decision_reason          text,
    decision_gates           jsonb,
    CHECK (expires_at > requested_at),
    CHECK ((status = 'PENDING') = (decided_at IS NULL))
);

-- One request waits per model at a time: approving one changes what the others would replace.
CREATE UNIQUE INDEX detection_model_approval_requests_one_pending
    ON detection_model_approval_requests (model_id) WHERE status = 'PENDING';
CREATE INDEX detection_model_approval_requests_model ON detection_model_approval_requests (model_id, id);

CREATE TRIGGER detection_model_approval_requests_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_approval_requests
    FOR EACH ROW EXECUTE FUNCTION detection_model_row_audit('sql_approval_request');
