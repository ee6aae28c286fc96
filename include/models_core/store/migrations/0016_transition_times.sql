-- The audit trail's times are times every reader can write as ISO 8601 and Python can hold
-- (issue 28's attack review): a row written by plain SQL at 'infinity', before year 1 or after
-- 9999 was served by the history as PostgreSQL writes it, which is not ISO 8601, and
-- `modelreg history` failed on it. A day inside either end, so that no session time zone moves
-- a time past year 1 or 9999. NOT VALID: the trail is append-only, the rows written stay; new
-- ones are refused.
ALTER TABLE detection_model_transitions
    ADD CONSTRAINT detection_model_transitions_at_in_range
    CHECK (at >= '0001-01-02 00:00:00+00' AND at < '9999-12-31 00:00:00+00') NOT VALID;
