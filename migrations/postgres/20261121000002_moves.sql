-- Account moves. For a local account, the moves it made: a second move to another account
-- waits 30 days, and a re-sent one to the same target is allowed. For a remote account, the
-- moves this node accepted: a repeat to another target within 7 days is ignored.
CREATE TABLE moves (
    id BIGINT PRIMARY KEY,
    actor_id BIGINT NOT NULL REFERENCES actors (id),
    target_ap_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX moves_actor ON moves (actor_id, created_at);
