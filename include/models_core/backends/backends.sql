-- The backend catalog, its health samples and state. Changes to the catalog and UP/DOWN
-- transitions are recorded by the triggers of migration 0006.

-- name: insert_backend
INSERT INTO detection_model_backends (name, base_url, health_path, status_path, timeout_s)
VALUES (%(name)s, %(base_url)s, %(health_path)s, %(status_path)s, %(timeout_s)s)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: delete_backend
DELETE FROM detection_model_backends WHERE name = %(name)s;

-- name: backends
SELECT name, base_url, health_path, status_path, timeout_s
FROM detection_model_backends
ORDER BY name;

-- name: backend_statuses
SELECT b.name, b.base_url, b.health_path, b.status_path, b.timeout_s,
       s.status, s.since, s.last_sample_at, s.latency_ms, s.baseline_ms, s.healthy_samples,
       s.load_class, s.active_jobs, s.error
FROM detection_model_backends b
LEFT JOIN detection_model_backend_state s ON s.backend = b.name
WHERE %(name)s::text IS NULL OR b.name = %(name)s
ORDER BY b.name;

-- name: lock_state
-- The state a probe continues from, locked until the probe's transaction ends.
SELECT status, since, baseline_ms, healthy_samples
FROM detection_model_backend_state
WHERE backend = %(backend)s
FOR UPDATE;

-- name: insert_sample
INSERT INTO detection_model_backend_samples
    (backend, taken_at, healthy, latency_ms, http_status, active_jobs, total_requests, baseline_ms, load_class, error)
VALUES (%(backend)s, %(taken_at)s, %(healthy)s, %(latency_ms)s, %(http_status)s, %(active_jobs)s,
        %(total_requests)s, %(baseline_ms)s, %(load_class)s, %(error)s);

-- name: upsert_state
INSERT INTO detection_model_backend_state
    (backend, status, since, last_sample_at, latency_ms, baseline_ms, healthy_samples, load_class, active_jobs, error)
VALUES (%(backend)s, %(status)s, %(since)s, %(taken_at)s, %(latency_ms)s, %(baseline_ms)s, %(healthy_samples)s,
        %(load_class)s, %(active_jobs)s, %(error)s)
ON CONFLICT (backend) DO UPDATE SET
    status = EXCLUDED.status, since = EXCLUDED.since, last_sample_at = EXCLUDED.last_sample_at,
    latency_ms = EXCLUDED.latency_ms, baseline_ms = EXCLUDED.baseline_ms,
    healthy_samples = EXCLUDED.healthy_samples, load_class = EXCLUDED.load_class,
    active_jobs = EXCLUDED.active_jobs, error = EXCLUDED.error;

-- name: delete_old_samples
DELETE FROM detection_model_backend_samples WHERE taken_at < %(before)s;

-- name: samples
SELECT taken_at, healthy, latency_ms, http_status, active_jobs, baseline_ms, load_class, error
FROM detection_model_backend_samples
WHERE backend = %(backend)s
ORDER BY taken_at, id;

-- name: active_versions_with_params
-- Which backend a version calls depends on its class and its params.
SELECT model_id, version, role, params
FROM detection_model_versions
WHERE status = 'ACTIVE'
ORDER BY model_id, version;
