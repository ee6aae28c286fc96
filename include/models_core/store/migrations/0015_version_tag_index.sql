-- The tag filter's first page at 100,000 versions (issue 28). Through the versions' GIN index
-- (0010) a tag that 1 version in 12 of every model carries (a data version) matched 9,000
-- versions scattered over the whole table: every page of it read to learn their models, 30 to
-- 50 ms, before the first model could be listed. This table holds each version's tags one
-- (key, value) per row with the version's model, so the models carrying a tag come off a btree
-- in model order and the page stops at its last model: 0.1 ms for that tag, 0.6 ms for a
-- team's (all the versions of 1 model in 20).
--
-- It is derived from detection_model_versions.tags and written only by the trigger below (and
-- by the registry benchmark's seed, which loads versions with triggers off): every write to a
-- version's tags, by the product or by plain SQL, rewrites its rows in the same transaction.
CREATE TABLE detection_model_version_tags (
    key        text NOT NULL,
    value      text NOT NULL,
    model_id   varchar(64) NOT NULL,
    version_id bigint NOT NULL REFERENCES detection_model_versions (id) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (key, value, model_id, version_id)
);
-- KEY alone (any value): the models carrying the key, in order.
CREATE INDEX detection_model_version_tags_key_model ON detection_model_version_tags (key, model_id);
-- A version's rows, for the trigger's rewrite and the cascade.
CREATE INDEX detection_model_version_tags_version ON detection_model_version_tags (version_id);

-- A tag as long as the product allows (models_core.registry.metadata: keys up to 64 characters,
-- values up to 256) fits a btree entry; plain SQL could store longer ones, which no index entry
-- holds (2,704 bytes at most), so the trigger refuses them in the product's words, naming the
-- version and the tag, instead of failing on the index.
-- SECURITY DEFINER: the function writes the table as its owner, so the role the product runs as
-- (one that owns nothing, docs/how-to/existing-postgresql.md) registers and tags versions
-- without any privilege on this table, and can be given none to write it.
CREATE FUNCTION detection_model_version_tags_sync() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE
    too_long record;
BEGIN
    SELECT t.key, length(t.key) AS key_length, length(t.value) AS value_length INTO too_long
    FROM jsonb_each_text(NEW.tags) AS t(key, value)
    WHERE length(t.key) > 64 OR length(t.value) > 256
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = format('tag %s of %s@%s: the key is %s characters (at most 64), the value %s (at most 256)',
                             left(too_long.key, 64), NEW.model_id, NEW.version, too_long.key_length,
                             too_long.value_length);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- OLD.id and NEW.id: a changed id has already been cascaded to the rows.
        DELETE FROM detection_model_version_tags WHERE version_id IN (OLD.id, NEW.id);
    END IF;
    INSERT INTO detection_model_version_tags (key, value, model_id, version_id)
    SELECT t.key, t.value, NEW.model_id, NEW.id FROM jsonb_each_text(NEW.tags) AS t(key, value);
    RETURN NULL;
END $$;

CREATE TRIGGER detection_model_version_tags_sync
    AFTER INSERT OR UPDATE OF tags, model_id, id ON detection_model_versions
    FOR EACH ROW EXECUTE FUNCTION detection_model_version_tags_sync();

-- Existing tags (any longer than the limits, which only plain SQL could have written, are left
-- out of the filter rather than stop the migration).
INSERT INTO detection_model_version_tags (key, value, model_id, version_id)
SELECT t.key, t.value, v.model_id, v.id
FROM detection_model_versions v, jsonb_each_text(v.tags) AS t(key, value)
WHERE length(t.key) <= 64 AND length(t.value) <= 256;

-- Only the trigger above and the cascade of a version's delete or new id write the table: both
-- run inside another trigger, as the table's owner. A row written or removed by anyone else,
-- by hand or from a trigger of their own, would hide a model from a filter, and is refused.
-- TRUNCATE is not: it needs its own privilege, and TRUNCATE detection_model_versions CASCADE
-- empties this table with the versions.
CREATE FUNCTION detection_model_version_tags_derived() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF pg_trigger_depth() < 2
       OR current_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s is derived from the versions'' tags (%s by %s refused): change a version''s tags '
                             'instead (modelreg tag, modelreg untag)', TG_TABLE_NAME, TG_OP, current_user);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER detection_model_version_tags_derived
    BEFORE INSERT OR UPDATE OR DELETE ON detection_model_version_tags
    FOR EACH ROW EXECUTE FUNCTION detection_model_version_tags_derived();

-- Whoever may read the versions may read their tags here (the models page's filter does): the
-- roles granted SELECT on detection_model_versions now get it on this table too.
DO $$
DECLARE
    reader text;
BEGIN
    FOR reader IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
        FROM pg_class c, aclexplode(c.relacl) AS a
        WHERE c.oid = 'detection_model_versions'::regclass AND a.privilege_type = 'SELECT'
          AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT ON detection_model_version_tags TO %s', reader);
    END LOOP;
END $$;

-- Statistics now, not at autovacuum's next visit: the models page's plan depends on them.
ANALYZE detection_model_version_tags;
