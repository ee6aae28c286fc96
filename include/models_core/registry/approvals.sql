-- name: approval_required
SELECT required FROM detection_model_approval_settings WHERE model_id = %(model_id)s;

-- name: upsert_approval_setting
INSERT INTO detection_model_approval_settings (model_id, required) VALUES (%(model_id)s, %(required)s)
ON CONFLICT (model_id) DO UPDATE SET required = EXCLUDED.required, updated_at = now();

-- name: requests
-- Requests, newest first; a PENDING one past its expiry reads as EXPIRED (the database's
-- clock decides, so every client agrees).
SELECT id, model_id, version_id, version,
       CASE WHEN status = 'PENDING' AND expires_at <= now() THEN 'EXPIRED' ELSE status END,
       requested_by, requested_at, expires_at, reason, forced, keep_previous_as_shadow, window_hours,
       checks, gates, decided_by, decided_at, decision_reason, decision_gates
FROM detection_model_approval_requests
WHERE (%(model_id)s::text IS NULL OR model_id = %(model_id)s)
  AND (%(all)s OR status = 'PENDING')
ORDER BY id DESC;

-- name: open_request
-- The model's request still recorded PENDING (expired or not), locked for the decision.
SELECT id, model_id, version_id, version,
       CASE WHEN expires_at <= now() THEN 'EXPIRED' ELSE status END,
       requested_by, requested_at, expires_at, reason, forced, keep_previous_as_shadow, window_hours,
       checks, gates, decided_by, decided_at, decision_reason, decision_gates
FROM detection_model_approval_requests
WHERE model_id = %(model_id)s AND status = 'PENDING'
FOR UPDATE;

-- name: insert_request
INSERT INTO detection_model_approval_requests
    (model_id, version_id, version, requested_by, requested_at, expires_at, reason, forced,
     keep_previous_as_shadow, window_hours, checks, gates)
VALUES (%(model_id)s, %(version_id)s, %(version)s, %(requested_by)s, now(), now() + %(ttl)s, %(reason)s,
        %(forced)s, %(keep_previous_as_shadow)s, %(window_hours)s, %(checks)s::jsonb, %(gates)s::jsonb)
RETURNING id;

-- name: decide_request
UPDATE detection_model_approval_requests
SET status = %(status)s, decided_by = %(decided_by)s, decided_at = now(), decision_reason = %(decision_reason)s,
    decision_gates = %(decision_gates)s::jsonb
WHERE id = %(id)s;
