-- Registry events: every audit row becomes an event in the same transaction (a transactional
-- outbox), published as an Airflow Asset event and POSTed to the webhooks that subscribe to it.

-- 1. The outbox. Every change of the registry already writes one detection_model_transitions
-- row, whatever the door (modelreg, the API and page, approvals, the self-healing review,
-- plain SQL); the trigger below turns each into an event of its model in the same
-- transaction, so a change that commits has its event and one that rolls back has none.
-- ``seq`` numbers a model's events 1, 2, 3... with no gap: the head row is locked until the
-- change commits, so a model's events get their numbers in commit order and a rolled-back
-- change gives its number back.
CREATE TABLE detection_model_event_heads (
    model_id  varchar(64) PRIMARY KEY,
    last_seq  bigint NOT NULL
);

CREATE TABLE detection_model_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id      varchar(64) NOT NULL,
    seq           bigint NOT NULL,
    audit_id      bigint NOT NULL UNIQUE,
    -- state (a version's status or role), details (its tags, params...), approval (a request or
    -- a vote), guards (gates, stage checks, approval settings, healing policy), dependencies
    kind          varchar(16) NOT NULL
                  CHECK (kind IN ('state', 'details', 'approval', 'guards', 'dependencies')),
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- the publisher's try that emits it ("dag_id/run_id/try"), until Airflow says whether it succeeded
    claimed_by    text,
    claimed_at    timestamptz,
    published_at  timestamptz,
    UNIQUE (model_id, seq),
    CHECK (published_at IS NULL OR claimed_by IS NOT NULL)
);

CREATE INDEX detection_model_events_unpublished ON detection_model_events (model_id, seq)
    WHERE published_at IS NULL;

CREATE FUNCTION detection_model_events_from_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    next_seq bigint;
    row_state jsonb := coalesce(NEW.details->'after', NEW.details->'before');
    event_kind text;
BEGIN
    event_kind := CASE
        WHEN row_state IS NOT NULL AND (row_state ? 'requested_by' OR row_state ? 'approver') THEN 'approval'
        WHEN row_state IS NOT NULL THEN 'guards'
        WHEN NEW.version_id IS NULL THEN 'dependencies'
        WHEN NEW.from_status IS DISTINCT FROM NEW.to_status OR NEW.from_role IS DISTINCT FROM NEW.to_role THEN 'state'
        ELSE 'details' END;
    INSERT INTO detection_model_event_heads AS h (model_id, last_seq) VALUES (NEW.model_id, 1)
    ON CONFLICT (model_id) DO UPDATE SET last_seq = h.last_seq + 1
    RETURNING last_seq INTO next_seq;
    INSERT INTO detection_model_events (model_id, seq, audit_id, kind, payload)
    VALUES (NEW.model_id, next_seq, NEW.id, event_kind, jsonb_build_object(
        'model_id', NEW.model_id, 'seq', next_seq, 'kind', event_kind, 'action', NEW.action,
        'version', NEW.version, 'version_id', NEW.version_id,
        'from_status', NEW.from_status, 'to_status', NEW.to_status,
        'from_role', NEW.from_role, 'to_role', NEW.to_role,
        'actor', NEW.actor, 'actor_kind', NEW.actor_kind, 'reason', NEW.reason,
        'basis', NEW.basis, 'request_id', NEW.request_id, 'audit_id', NEW.id, 'at', NEW.at));
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_events_from_audit
    AFTER INSERT ON detection_model_transitions
    FOR EACH ROW EXECUTE FUNCTION detection_model_events_from_audit();

-- 2. Webhooks: receivers of the same events, signed with a secret that only an environment
-- variable of the sender holds (its name is stored, never the secret). ``events`` lists the
-- kinds or actions wanted (e.g. {state, approval} or {promote, rollback, error}); empty is all.
CREATE TABLE detection_model_webhooks (
    name        varchar(64) PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]+$'),
    url         text NOT NULL CHECK (url ~ '^https?://'),
    events      text[] NOT NULL DEFAULT '{}',
    secret_env  varchar(128) NOT NULL CHECK (secret_env ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (webhook, event): the delivery log. The sender leases a due row (next_attempt_at
-- moved past the request's timeout), POSTs, then records the outcome; a sender killed mid-POST
-- leaves the lease to run out and the row is sent again (receivers dedupe by event_id).
CREATE TABLE detection_model_webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook          varchar(64) NOT NULL REFERENCES detection_model_webhooks (name) ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES detection_model_events (id),
    model_id         varchar(64) NOT NULL,
    status           varchar(12) NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'GAVE_UP')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    last_http_status integer,
    latency_ms       double precision,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook, event_id)
);

CREATE INDEX detection_model_webhook_deliveries_due ON detection_model_webhook_deliveries (next_attempt_at)
    WHERE status = 'PENDING';

-- Each event is queued for every enabled webhook that wants it, in the change's transaction
-- (an INSERT: no receiver is ever on the path of a change).
CREATE FUNCTION detection_model_events_fan_out() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO detection_model_webhook_deliveries (webhook, event_id, model_id)
    SELECT w.name, NEW.id, NEW.model_id
    FROM detection_model_webhooks w
    WHERE w.enabled AND (w.events = '{}' OR NEW.kind = ANY (w.events) OR NEW.payload->>'action' = ANY (w.events));
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_events_fan_out
    AFTER INSERT ON detection_model_events
    FOR EACH ROW EXECUTE FUNCTION detection_model_events_fan_out();
