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

CREATE FUNCTION detection_model_version_tags_sync() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
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

INSERT INTO detection_model_version_tags (key, value, model_id, version_id)
SELECT t.key, t.value, v.model_id, v.id
FROM detection_model_versions v, jsonb_each_text(v.tags) AS t(key, value);
-- Statistics now, not at autovacuum's next visit: the models page's plan depends on them.
ANALYZE detection_model_version_tags;
