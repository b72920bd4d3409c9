-- What a remote actor's server reports beyond what this node has seen: the `totalItems` of the
-- actor's outbox, followers and following collections, less what this node counted when it read
-- them (never below zero). An account shows what this node counts plus these, so a follow made
-- here after the read still moves the figure, as it does on the actor's own server.
-- `counts_read_at` (ms) spaces the reads: an account looked up often is read at most once an
-- hour.
ALTER TABLE actor_stats ADD COLUMN unseen_notes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE actor_stats ADD COLUMN unseen_followers BIGINT NOT NULL DEFAULT 0;
ALTER TABLE actor_stats ADD COLUMN unseen_following BIGINT NOT NULL DEFAULT 0;
ALTER TABLE actor_stats ADD COLUMN counts_read_at BIGINT NOT NULL DEFAULT 0;
