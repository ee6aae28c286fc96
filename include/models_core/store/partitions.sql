-- name: table_exists
SELECT to_regclass(%(qualified)s) IS NOT NULL;

-- name: partition_attached
-- Whether the table of that name is attached to the parent now (a detached one keeps its name).
SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = %(parent)s::regclass AND c.relname = %(name)s);

-- name: list_partitions
-- Every partition of a table with its bound expression, e.g.
-- FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00'), or DEFAULT.
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %(parent)s::regclass
ORDER BY c.relname;
