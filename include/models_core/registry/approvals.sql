-- Requests for a second person's approval (promotions, and guard changes on a model under
-- approval) and the approvals they collect.

-- name: requests
-- Requests, newest first; a PENDING one past its expiry reads as EXPIRED (the database's
-- clock decides, so every client agrees).
SELECT r.id, r.model_id, r.kind, r.version_id, r.version, r.change,
       CASE WHEN r.status = 'PENDING' AND r.expires_at <= now() THEN 'EXPIRED' ELSE r.status END,
       r.requested_by, r.requested_by_kind, r.requested_at, r.expires_at, r.reason, r.forced,
       r.keep_previous_as_shadow, r.window_hours, r.checks, r.gates, r.decided_by, r.decided_at,
       r.decision_reason, r.decision_gates,
       coalesce((SELECT array_agg(v.approver ORDER BY v.at) FROM detection_model_approval_votes v
                 WHERE v.request_id = r.id), '{}')
FROM detection_model_approval_requests r
WHERE (%(model_id)s::text IS NULL OR r.model_id = %(model_id)s)
  AND (%(all)s OR r.status = 'PENDING')
ORDER BY r.id DESC;

-- name: open_request
-- The model's request still recorded PENDING (expired or not), locked for the decision.
SELECT r.id, r.model_id, r.kind, r.version_id, r.version, r.change,
       CASE WHEN r.expires_at <= now() THEN 'EXPIRED' ELSE r.status END,
       r.requested_by, r.requested_by_kind, r.requested_at, r.expires_at, r.reason, r.forced,
       r.keep_previous_as_shadow, r.window_hours, r.checks, r.gates, r.decided_by, r.decided_at,
       r.decision_reason, r.decision_gates,
       coalesce((SELECT array_agg(v.approver ORDER BY v.at) FROM detection_model_approval_votes v
                 WHERE v.request_id = r.id), '{}')
FROM detection_model_approval_requests r
WHERE r.model_id = %(model_id)s AND r.status = 'PENDING'
FOR UPDATE OF r;

-- name: insert_request
INSERT INTO detection_model_approval_requests
    (model_id, kind, version_id, version, change, requested_by, requested_by_kind, requested_at, expires_at,
     reason, forced, keep_previous_as_shadow, window_hours, checks, gates)
VALUES (%(model_id)s, %(kind)s, %(version_id)s, %(version)s, %(change)s::jsonb, %(requested_by)s,
        %(requested_by_kind)s, now(), now() + %(ttl)s, %(reason)s, %(forced)s, %(keep_previous_as_shadow)s,
        %(window_hours)s, %(checks)s::jsonb, %(gates)s::jsonb)
RETURNING id;

-- name: insert_vote
INSERT INTO detection_model_approval_votes (request_id, model_id, approver, reason)
VALUES (%(request_id)s, %(model_id)s, %(approver)s, %(reason)s);

-- name: decide_request
UPDATE detection_model_approval_requests
SET status = %(status)s, decided_by = %(decided_by)s, decided_at = now(), decision_reason = %(decision_reason)s,
    decision_gates = %(decision_gates)s::jsonb
WHERE id = %(id)s;
