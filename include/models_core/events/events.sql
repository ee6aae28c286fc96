-- The registry's event outbox (migration 0011): what the publisher claims, emits and marks.

-- name: open_claims
-- The publisher tries whose events are not marked yet: Airflow says whether each succeeded.
SELECT DISTINCT claimed_by FROM detection_model_events
WHERE published_at IS NULL AND claimed_by IS NOT NULL
ORDER BY claimed_by;

-- name: mark_published
-- That try succeeded: Airflow recorded its asset events with its success, so they are out.
UPDATE detection_model_events SET published_at = now()
WHERE claimed_by = %(claim)s AND published_at IS NULL;

-- name: release_claim
-- That try did not succeed: Airflow recorded none of its asset events; emit them again.
UPDATE detection_model_events SET claimed_by = NULL, claimed_at = NULL
WHERE claimed_by = %(claim)s AND published_at IS NULL;

-- name: claim
-- The oldest unpublished events, each model's in seq order from its first unpublished one (a
-- model's later events are visible only once its earlier ones committed: seq is gapless).
WITH picked AS (
    SELECT id FROM detection_model_events
    WHERE published_at IS NULL AND claimed_by IS NULL
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE
)
UPDATE detection_model_events e SET claimed_by = %(claim)s, claimed_at = now()
FROM picked WHERE e.id = picked.id
RETURNING e.id, e.model_id, e.seq, e.payload;

-- name: events_of_model
SELECT id, seq, kind, payload, published_at FROM detection_model_events
WHERE model_id = %(model_id)s
ORDER BY seq;

-- name: backlog
SELECT count(*) FILTER (WHERE published_at IS NULL), min(created_at) FILTER (WHERE published_at IS NULL)
FROM detection_model_events;
