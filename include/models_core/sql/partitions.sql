-- name: lock_partition_ddl
-- One creator per partition at a time; the others wait, then find it there.
SELECT pg_advisory_xact_lock(hashtext(%(partition)s));

-- name: partition_exists
SELECT to_regclass(%(qualified)s) IS NOT NULL;
