-- A post by an account with many followers queues one row here in its transaction, not a
-- delivery per follower's server: the delivery worker expands it into deliveries a chunk of
-- followers at a time (`db::deliveries::expand_fanout`), resuming after `after_follower`.
-- Inserting 50,000 deliveries in the post's own transaction made the post answer in 630 ms
-- on PostgreSQL.
CREATE TABLE fanouts (
    activity_id BIGINT PRIMARY KEY REFERENCES activities (id),
    followee_id BIGINT NOT NULL,
    after_follower BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A chunk of an account's accepted followers in id order, from where the last one ended.
CREATE INDEX follows_accepted_followers ON follows (followee_id, follower_id) WHERE accepted;

-- A chunk skips the inboxes earlier chunks (or the post's mentions) already queued.
CREATE INDEX deliveries_activity_inbox ON deliveries (activity_id, inbox);
DROP INDEX deliveries_activity;
