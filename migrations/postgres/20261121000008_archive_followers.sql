-- The followers listed in an archive imported into a local account (`ferry/followers.json`): who
-- a move from a server that is gone (pull mode) is sent to.
CREATE TABLE archive_followers (
    account_id BIGINT NOT NULL REFERENCES actors (id),
    follower_ap_id TEXT NOT NULL,
    PRIMARY KEY (account_id, follower_ap_id)
);
