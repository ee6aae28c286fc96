-- The replayed AIS positions, one set per cycle (its window plus the history the detectors
-- look back at), in the registry schema. Owned by example_models, not by models_core's
-- migrations: created on first use, idempotently.

-- name: lock_positions
-- One writer at a time: concurrent first runs would race on CREATE TABLE IF NOT EXISTS.
SELECT pg_advisory_xact_lock(hashtextextended('example_models.ais_positions', 0));

-- name: create_table
CREATE TABLE IF NOT EXISTS ais_positions (
    cycle_started_at timestamptz NOT NULL,
    mmsi bigint NOT NULL,
    fix_time timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    sog_kn double precision,
    cog_deg double precision,
    recorded_at timestamptz NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ais_positions_cycle_idx ON ais_positions (cycle_started_at, mmsi, fix_time);
CREATE INDEX IF NOT EXISTS ais_positions_loaded_idx ON ais_positions (loaded_at);

-- name: delete_cycle
DELETE FROM ais_positions WHERE cycle_started_at = %(cycle)s;

-- name: delete_expired
-- By load time, not cycle time: a backfill of last year stays until it is as old as the rest.
DELETE FROM ais_positions WHERE loaded_at < now() - %(hours)s * interval '1 hour';

-- name: copy_positions
COPY ais_positions (cycle_started_at, mmsi, fix_time, lat, lon, sog_kn, cog_deg, recorded_at) FROM STDIN;

-- name: cycle_positions
SELECT mmsi, extract(epoch FROM fix_time)::float8, lat, lon, sog_kn, cog_deg,
       extract(epoch FROM recorded_at)::float8
FROM ais_positions
WHERE cycle_started_at = %(cycle)s
ORDER BY mmsi, fix_time;
