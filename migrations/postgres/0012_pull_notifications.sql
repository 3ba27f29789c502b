-- Replicas on PostgreSQL keep what pulls read in memory (src/domain/cache.rs)
-- and must learn of every change to it, whichever replica, job or tool made
-- it: every change to a repository's tags, to the manifests linked to it, or
-- to the repository itself notifies the channel `berth_pulls` with the
-- repository's name (src/metadata/changes.rs listens). PostgreSQL delivers a
-- notification when its transaction commits, and folds repeats of one name
-- within a transaction into one.
--
-- Inserting a link to a manifest makes nothing cached wrong (only manifests
-- found are cached), so only its updates and deletes notify; an inserted
-- tag changes the repository's tag list, so tags notify on every change.

CREATE FUNCTION berth_pulls_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT;
BEGIN
    IF TG_TABLE_NAME = 'repositories' THEN
        PERFORM pg_notify('berth_pulls', OLD.name);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- Rows deleted with their repository find no name: the
        -- repository's own row has told.
        SELECT name INTO changed FROM repositories WHERE id = OLD.repository_id;
        IF changed IS NOT NULL THEN
            PERFORM pg_notify('berth_pulls', changed);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT name INTO changed FROM repositories WHERE id = NEW.repository_id;
        IF changed IS NOT NULL THEN
            PERFORM pg_notify('berth_pulls', changed);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tags_notify_pulls
    AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION berth_pulls_changed();

CREATE TRIGGER repository_manifests_notify_pulls
    AFTER UPDATE OR DELETE ON repository_manifests
    FOR EACH ROW EXECUTE FUNCTION berth_pulls_changed();

CREATE TRIGGER repositories_notify_pulls
    AFTER UPDATE OR DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_pulls_changed();
