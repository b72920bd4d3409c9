-- Counts shown on every rendering of an account (and so on every status in a timeline), kept as
-- counters instead of counted per request: for an account with 50,000 followers the live count
-- cost more than the request around it. Triggers keep them, so every path that writes follows
-- or notes (the API, inbound activities, moves, Delete of an actor) counts the same way.
--
-- `notes` counts local actors' notes only. A remote actor's notes arrive through the inbox
-- writers in batches; a counter row per author there would be one more write per note on the
-- hottest path, and a row lock that concurrent batches of one author would queue on. Remote
-- actors' notes are still counted live: only what this node has seen.
CREATE TABLE actor_stats (
    actor_id BIGINT PRIMARY KEY REFERENCES actors (id),
    notes BIGINT NOT NULL DEFAULT 0,
    followers BIGINT NOT NULL DEFAULT 0,
    following BIGINT NOT NULL DEFAULT 0
);

INSERT INTO actor_stats (actor_id, notes, followers, following)
SELECT a.id,
    (SELECT COUNT(*) FROM notes n WHERE n.author_id = a.id AND n.is_local
        AND n.deleted_at IS NULL AND n.reblog_of_id IS NULL),
    (SELECT COUNT(*) FROM follows f WHERE f.followee_id = a.id AND f.accepted),
    (SELECT COUNT(*) FROM follows f WHERE f.follower_id = a.id AND f.accepted)
FROM actors a;

CREATE FUNCTION actor_stats_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO actor_stats (actor_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER actor_stats_row AFTER INSERT ON actors
    FOR EACH ROW EXECUTE FUNCTION actor_stats_row();

-- A follow counts once accepted. One statement per change updates both sides: it locks the two
-- rows in key order (no deadlock between a follow and its reverse), and a follow of oneself
-- counts on both columns of the one row.
CREATE FUNCTION actor_stats_follows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.accepted THEN
            UPDATE actor_stats
            SET followers = followers - (actor_id = OLD.followee_id)::int,
                following = following - (actor_id = OLD.follower_id)::int
            WHERE actor_id IN (OLD.followee_id, OLD.follower_id);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.accepted THEN
            UPDATE actor_stats
            SET followers = followers + (actor_id = NEW.followee_id)::int,
                following = following + (actor_id = NEW.follower_id)::int
            WHERE actor_id IN (NEW.followee_id, NEW.follower_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER follows_counted AFTER INSERT ON follows
    FOR EACH ROW WHEN (NEW.accepted) EXECUTE FUNCTION actor_stats_follows();
CREATE TRIGGER follows_uncounted AFTER DELETE ON follows
    FOR EACH ROW WHEN (OLD.accepted) EXECUTE FUNCTION actor_stats_follows();
CREATE TRIGGER follows_recounted AFTER UPDATE OF accepted, follower_id, followee_id ON follows
    FOR EACH ROW WHEN (OLD.accepted <> NEW.accepted OR OLD.follower_id <> NEW.follower_id
        OR OLD.followee_id <> NEW.followee_id)
    EXECUTE FUNCTION actor_stats_follows();

-- A note counts while it is local, not deleted and not a boost. The WHEN clauses keep remote
-- notes (the inbox writers' batches) from calling the function at all.
CREATE FUNCTION actor_stats_notes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.is_local AND OLD.deleted_at IS NULL AND OLD.reblog_of_id IS NULL THEN
            UPDATE actor_stats SET notes = notes - 1 WHERE actor_id = OLD.author_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.is_local AND NEW.deleted_at IS NULL AND NEW.reblog_of_id IS NULL THEN
            UPDATE actor_stats SET notes = notes + 1 WHERE actor_id = NEW.author_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER notes_counted AFTER INSERT ON notes
    FOR EACH ROW WHEN (NEW.is_local AND NEW.deleted_at IS NULL AND NEW.reblog_of_id IS NULL)
    EXECUTE FUNCTION actor_stats_notes();
CREATE TRIGGER notes_uncounted AFTER DELETE ON notes
    FOR EACH ROW WHEN (OLD.is_local AND OLD.deleted_at IS NULL AND OLD.reblog_of_id IS NULL)
    EXECUTE FUNCTION actor_stats_notes();
CREATE TRIGGER notes_recounted AFTER UPDATE OF deleted_at, reblog_of_id, author_id, is_local
    ON notes
    FOR EACH ROW WHEN ((OLD.is_local OR NEW.is_local) AND (OLD.author_id <> NEW.author_id
        OR (OLD.is_local AND OLD.deleted_at IS NULL AND OLD.reblog_of_id IS NULL)
            IS DISTINCT FROM (NEW.is_local AND NEW.deleted_at IS NULL AND NEW.reblog_of_id IS NULL)))
    EXECUTE FUNCTION actor_stats_notes();
