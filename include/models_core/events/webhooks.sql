-- Webhooks and their delivery log (migration 0011).

-- name: add_webhook
INSERT INTO detection_model_webhooks (name, url, events, secret_env, created_by)
VALUES (%(name)s, %(url)s, %(events)s, %(secret_env)s, %(created_by)s)
ON CONFLICT (name) DO UPDATE
SET url = EXCLUDED.url, events = EXCLUDED.events, secret_env = EXCLUDED.secret_env, enabled = true;

-- name: remove_webhook
DELETE FROM detection_model_webhooks WHERE name = %(name)s;

-- name: webhooks
SELECT w.name, w.url, w.events, w.secret_env, w.enabled,
       count(*) FILTER (WHERE d.status = 'DELIVERED'),
       count(*) FILTER (WHERE d.status = 'PENDING'),
       count(*) FILTER (WHERE d.status = 'GAVE_UP')
FROM detection_model_webhooks w
LEFT JOIN detection_model_webhook_deliveries d ON d.webhook = w.name
GROUP BY w.name
ORDER BY w.name;

-- name: deliveries
SELECT d.id, d.webhook, d.event_id, d.model_id, d.status, d.attempts, d.next_attempt_at, d.last_error,
       d.last_http_status, d.latency_ms, d.created_at, d.delivered_at
FROM detection_model_webhook_deliveries d
WHERE (%(webhook)s::text IS NULL OR d.webhook = %(webhook)s)
ORDER BY d.id DESC
LIMIT %(limit)s;

-- name: lease_due
-- The due deliveries of one webhook, oldest event first, leased: a sender that dies mid-POST
-- leaves the lease to run out and the delivery is tried again. SKIP LOCKED keeps two senders apart.
WITH due AS (
    SELECT id FROM detection_model_webhook_deliveries
    WHERE webhook = %(webhook)s AND status = 'PENDING' AND next_attempt_at <= now()
    ORDER BY event_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE detection_model_webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease_s)s)
FROM due, detection_model_events e
WHERE d.id = due.id AND e.id = d.event_id
RETURNING d.id, d.event_id, d.attempts, d.created_at, e.model_id, e.seq, e.payload;

-- name: due_webhooks
SELECT w.name, w.url, w.secret_env
FROM detection_model_webhooks w
WHERE w.enabled AND EXISTS (
    SELECT 1 FROM detection_model_webhook_deliveries d
    WHERE d.webhook = w.name AND d.status = 'PENDING' AND d.next_attempt_at <= now())
ORDER BY w.name;

-- name: delivered
UPDATE detection_model_webhook_deliveries
SET status = 'DELIVERED', delivered_at = now(), last_http_status = %(http_status)s, latency_ms = %(latency_ms)s,
    last_error = NULL
WHERE id = %(id)s;

-- name: failed
UPDATE detection_model_webhook_deliveries
SET status = CASE WHEN %(give_up)s THEN 'GAVE_UP' ELSE 'PENDING' END,
    next_attempt_at = now() + make_interval(secs => %(backoff_s)s),
    last_error = %(error)s, last_http_status = %(http_status)s, latency_ms = %(latency_ms)s
WHERE id = %(id)s;

-- name: release
-- Leased deliveries the sender's run had no time left to try: due again, the lease's attempt not counted.
UPDATE detection_model_webhook_deliveries
SET attempts = attempts - 1, next_attempt_at = now()
WHERE id = ANY(%(ids)s) AND status = 'PENDING';
