-- Governance: who acted (and as what), on what basis a version became PRIMARY, N-of-M
-- approvals, requests for guard changes, requests that close when their version moves, and
-- evidence counted per cycle rather than per run.

-- 1. The audit row says what kind of actor made the change and, for a version entering
-- PRIMARY, on what basis (gated, approved, restore, forced), and which request it applied.
-- The triggers of 0004-0006 keep writing the rows; this BEFORE INSERT trigger adds the three
-- columns from the change's context, so no audit trigger had to be restated.
--   models_core.actor_kind  person (logged in to Airflow), service (direct database mode),
--                           system (the product's own review); plain SQL is 'sql'
--   models_core.basis       gated | approved | restore | forced | governor (guard changes)
--   models_core.request_id  the approval request a change applies
ALTER TABLE detection_model_transitions
    ADD COLUMN actor_kind varchar(8),
    ADD COLUMN basis varchar(16),
    ADD COLUMN request_id bigint;

CREATE FUNCTION detection_model_transitions_context() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.actor_kind := CASE WHEN NEW.source = 'sql' THEN 'sql'
                           ELSE coalesce(nullif(current_setting('models_core.actor_kind', true), ''), 'unknown') END;
    NEW.basis := nullif(current_setting('models_core.basis', true), '');
    NEW.request_id := nullif(current_setting('models_core.request_id', true), '')::bigint;
    RETURN NEW;
END $$;

CREATE TRIGGER detection_model_transitions_context
    BEFORE INSERT ON detection_model_transitions
    FOR EACH ROW EXECUTE FUNCTION detection_model_transitions_context();

-- 2. Who may approve a model's promotions (Airflow user ids; none listed: anyone allowed to
-- edit the detection_models DAG) and how many of them must (N of M), besides the requester.
ALTER TABLE detection_model_approval_settings
    ADD COLUMN approvers text[] NOT NULL DEFAULT '{}',
    ADD COLUMN min_approvals integer NOT NULL DEFAULT 1 CHECK (min_approvals >= 1);

-- 3. A request is a promotion or, on a model under approval, a change of what guards it
-- (gates, stage checks, approvals, self-healing policy: ``change`` holds which and the new
-- values). A request closes (CANCELLED) when its version changes state by any path.
ALTER TABLE detection_model_approval_requests
    ADD COLUMN kind varchar(8) NOT NULL DEFAULT 'promote' CHECK (kind IN ('promote', 'guards')),
    ADD COLUMN change jsonb,
    ADD COLUMN requested_by_kind varchar(8) NOT NULL DEFAULT 'person',
    ALTER COLUMN version_id DROP NOT NULL,
    ALTER COLUMN version DROP NOT NULL,
    ALTER COLUMN window_hours DROP NOT NULL,
    ADD CONSTRAINT detection_model_approval_requests_subject
        CHECK ((kind = 'promote') = (version_id IS NOT NULL AND version IS NOT NULL)
               AND (kind = 'guards') = (change IS NOT NULL));
ALTER TABLE detection_model_approval_requests DROP CONSTRAINT detection_model_approval_requests_status_check;
ALTER TABLE detection_model_approval_requests ADD CONSTRAINT detection_model_approval_requests_status_check
    CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED', 'CANCELLED'));

-- One approval per approver and request; the request applies once min_approvals are in.
CREATE TABLE detection_model_approval_votes (
    request_id  bigint NOT NULL REFERENCES detection_model_approval_requests (id) ON DELETE CASCADE,
    model_id    varchar(64) NOT NULL,
    approver    text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    reason      text,
    PRIMARY KEY (request_id, approver)
);

CREATE TRIGGER detection_model_approval_votes_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_model_approval_votes
    FOR EACH ROW EXECUTE FUNCTION detection_model_row_audit('sql_approval_vote');

-- A version that changes status or role (or goes away) closes its pending promotion request,
-- whatever made the change: the figures the request holds no longer describe it.
CREATE FUNCTION detection_model_close_requests() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    now_state text := 'deleted';
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.role IS NOT DISTINCT FROM OLD.role THEN
            RETURN NULL;
        END IF;
        now_state := NEW.status || ' ' || NEW.role;
    END IF;
    UPDATE detection_model_approval_requests
    SET status = 'CANCELLED', decided_at = now(),
        decision_reason = format('closed: %s@%s changed from %s %s to %s', OLD.model_id, OLD.version,
                                 OLD.status, OLD.role, now_state)
    WHERE version_id = OLD.id AND status = 'PENDING';
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_close_requests
    AFTER UPDATE OF status, role OR DELETE ON detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION detection_model_close_requests();

-- 4. Plain SQL cannot make a version the ACTIVE PRIMARY of a model whose promotions need
-- approval: that goes through the product (modelreg promote, the registry page), which
-- records the request and its approvals. Inserting rows of other models with plain SQL
-- works as before.
CREATE FUNCTION detection_model_guard_sql_promotion() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.status = 'ACTIVE' AND NEW.role = 'PRIMARY'
       AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'ACTIVE' OR OLD.role IS DISTINCT FROM 'PRIMARY')
       AND nullif(current_setting('models_core.action', true), '') IS NULL
       AND EXISTS (SELECT 1 FROM detection_model_approval_settings s WHERE s.model_id = NEW.model_id AND s.required)
    THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s@%s cannot become the ACTIVE PRIMARY by plain SQL: %s''s promotions need approval '
                             '(modelreg promote %s %s makes the request)', NEW.model_id, NEW.version,
                             NEW.model_id, NEW.model_id, NEW.version);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER detection_model_guard_sql_promotion
    BEFORE INSERT OR UPDATE OF status, role ON detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION detection_model_guard_sql_promotion();

-- 5. One cycle is one piece of evidence, however often it ran: a version's latest attempt
-- that ran (succeeded or failed) for each cycle. Re-running a logical date (a clear, `airflow
-- dags test` again, a backfill) replaces the cycle's outcome instead of adding one. The
-- quality gates, `modelreg best` and the self-healing streak all read this view.
-- (model_id is one per version; it is among the DISTINCT ON columns so that a filter on it
-- is applied inside the view.)
CREATE VIEW detection_model_cycle_evidence AS
SELECT DISTINCT ON (model_id, version_id, cycle_started_at)
       version_id, model_id, role, cycle_started_at, state, reason, dag_run_id, task_id, recorded_at
FROM detection_model_task_outcomes
WHERE state IN ('success', 'failed')
ORDER BY model_id, version_id, cycle_started_at, recorded_at DESC, dag_run_id DESC;

-- 6. The audit trail is append-only: no session updates, deletes or truncates it (only one
-- that may switch triggers off, a superuser or the tables' owner, could; run the product as
-- a role that owns nothing, and the history is tamper-evident to everyone but the DBA).
CREATE FUNCTION detection_model_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('%s is append-only: the audit trail is never changed or removed (%s refused)',
                         TG_TABLE_NAME, TG_OP);
END $$;

CREATE TRIGGER detection_model_transitions_append_only
    BEFORE UPDATE OR DELETE ON detection_model_transitions
    FOR EACH ROW EXECUTE FUNCTION detection_model_audit_append_only();
CREATE TRIGGER detection_model_transitions_no_truncate
    BEFORE TRUNCATE ON detection_model_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION detection_model_audit_append_only();
CREATE TRIGGER detection_model_backend_events_append_only
    BEFORE UPDATE OR DELETE ON detection_model_backend_events
    FOR EACH ROW EXECUTE FUNCTION detection_model_audit_append_only();
CREATE TRIGGER detection_model_backend_events_no_truncate
    BEFORE TRUNCATE ON detection_model_backend_events
    FOR EACH STATEMENT EXECUTE FUNCTION detection_model_audit_append_only();

-- 7. A version's model and number are what it is: neither ever changes (register a new
-- version instead), so a request, a rollback or the history can never be pointed at another
-- version by renaming, and no version moves into another model's PRIMARY with plain SQL.
CREATE FUNCTION detection_model_versions_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = format('%s@%s keeps its model and version (it would become %s@%s): register a new version '
                         'instead (detection_model_versions_identity)', OLD.model_id, OLD.version, NEW.model_id,
                         NEW.version);
END $$;

CREATE TRIGGER detection_model_versions_identity
    BEFORE UPDATE OF model_id, version ON detection_model_versions
    FOR EACH ROW WHEN (NEW.model_id IS DISTINCT FROM OLD.model_id OR NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION detection_model_versions_identity();

-- 8. An approval is a person's, recorded by the product as them: plain SQL cannot add one.
CREATE FUNCTION detection_model_approval_votes_by_people() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nullif(current_setting('models_core.action', true), '') IS DISTINCT FROM 'approve'
       OR nullif(current_setting('models_core.actor_kind', true), '') IS DISTINCT FROM 'person'
       OR nullif(current_setting('models_core.actor', true), '') IS DISTINCT FROM NEW.approver THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('an approval of request #%s by %s can only be made by that person through the product '
                             '(modelreg approve, the registry page, Required Actions)', NEW.request_id, NEW.approver);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER detection_model_approval_votes_by_people
    BEFORE INSERT OR UPDATE ON detection_model_approval_votes
    FOR EACH ROW EXECUTE FUNCTION detection_model_approval_votes_by_people();
