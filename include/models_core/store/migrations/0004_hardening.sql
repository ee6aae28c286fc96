-- Hardening: one audit mechanism for every change, metrics keyed by role, the plan each
-- cycle ran with.

-- 1. Audit. Every change to a version, a dependency or a model's gates is written to
-- detection_model_transitions by a trigger, whoever makes it. The Python API no longer
-- writes its own rows (and can no longer switch the triggers off, which any session could
-- do too); it sets the change's context for its transaction instead:
--   models_core.action  what the API is doing (promote, rollback, ...); unset for plain SQL
--   models_core.actor   who asked (modelreg --actor, the UI's user); else the database user
--   models_core.reason  why, as given
--   models_core.gates   the gate figures of a promotion (JSON)
-- A session that sets these by hand is still recorded (under the database user it connects
-- as, in db_user): it can only describe its change, not hide it.
ALTER TABLE detection_model_transitions
    ADD COLUMN db_user text NOT NULL DEFAULT session_user,
    ADD COLUMN details jsonb;

DROP TRIGGER detection_model_versions_audit ON detection_model_versions;
DROP TRIGGER detection_model_dependencies_audit ON detection_model_dependencies;
DROP FUNCTION detection_model_versions_audit();
DROP FUNCTION detection_model_dependencies_audit();

-- The change's context as (action, actor, reason, gates, source); action is NULL for plain SQL.
CREATE FUNCTION detection_model_change_context(
    OUT action text, OUT actor text, OUT reason text, OUT gates jsonb, OUT source text)
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('models_core.action', true), ''),
           coalesce(nullif(current_setting('models_core.actor', true), ''), session_user::text),
           nullif(current_setting('models_core.reason', true), ''),
           nullif(current_setting('models_core.gates', true), '')::jsonb,
           CASE WHEN nullif(current_setting('models_core.action', true), '') IS NULL THEN 'sql' ELSE 'api' END
$$;

CREATE FUNCTION detection_model_versions_audit() RETURNS trigger LANGUAGE plpgsql
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
                jsonb_build_object('params', NEW.params, 'description', NEW.description));
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

CREATE TRIGGER detection_model_versions_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION detection_model_versions_audit();

CREATE FUNCTION detection_model_dependencies_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    ctx record := detection_model_change_context();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO detection_model_transitions (model_id, action, actor, reason, source, details)
        VALUES (NEW.model_id, coalesce(ctx.action, 'sql_deps_add'), ctx.actor,
                coalesce(ctx.reason, 'depends on ' || NEW.depends_on), ctx.source,
                jsonb_build_object('depends_on', NEW.depends_on, 'input_key', NEW.input_key));
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO detection_model_transitions (model_id, action, actor, reason, source, details)
        VALUES (OLD.model_id, coalesce(ctx.action, 'sql_deps_remove'), ctx.actor,
                coalesce(ctx.reason, 'depends on ' || OLD.depends_on), ctx.source,
                jsonb_build_object('depends_on', OLD.depends_on, 'input_key', OLD.input_key));
    ELSIF (NEW.model_id, NEW.depends_on, NEW.input_key) IS DISTINCT FROM (OLD.model_id, OLD.depends_on, OLD.input_key) THEN
        INSERT INTO detection_model_transitions (model_id, action, actor, reason, source, details)
        VALUES (NEW.model_id, coalesce(ctx.action, 'sql_deps_update'), ctx.actor,
                coalesce(ctx.reason, 'depends on ' || NEW.depends_on || ' (was ' || OLD.model_id
                         || ' depends on ' || OLD.depends_on || ')'), ctx.source,
                jsonb_build_object('before', jsonb_build_object('model_id', OLD.model_id, 'depends_on', OLD.depends_on,
                                                                'input_key', OLD.input_key),
                                   'after', jsonb_build_object('model_id', NEW.model_id, 'depends_on', NEW.depends_on,
                                                               'input_key', NEW.input_key)));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_dependencies_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_dependencies
    FOR EACH ROW EXECUTE FUNCTION detection_model_dependencies_audit();

CREATE FUNCTION detection_model_quality_gates_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    ctx record := detection_model_change_context();
    before jsonb := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) - 'updated_at' END;
    after jsonb := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) - 'updated_at' END;
BEGIN
    IF before IS NOT DISTINCT FROM after THEN
        RETURN NULL;
    END IF;
    INSERT INTO detection_model_transitions (model_id, action, actor, reason, source, details)
    VALUES (coalesce(NEW.model_id, OLD.model_id), coalesce(ctx.action, 'sql_gates'), ctx.actor, ctx.reason,
            ctx.source, jsonb_build_object('before', before, 'after', after));
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_quality_gates_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_quality_gates
    FOR EACH ROW EXECUTE FUNCTION detection_model_quality_gates_audit();

-- 2. A version may run in two roles in one cycle (a SHADOW promoted between its own task and
-- its model's PRIMARY task), so its metrics are keyed by role as well.
ALTER TABLE detection_model_metrics DROP CONSTRAINT detection_model_metrics_one_per_cycle;
ALTER TABLE detection_model_metrics
    ADD CONSTRAINT detection_model_metrics_one_per_cycle UNIQUE (version_id, cycle_started_at, role, metric_key);

-- 3. The plan each cycle ran with, and why it was the last-known-good one instead of the
-- registry's (a dependency cycle, an unreachable registry).
ALTER TABLE detection_model_cycle_summaries
    ADD COLUMN plan_fingerprint text,
    ADD COLUMN plan_stale_reason text;
