-- A local account's blocks and mutes of other accounts (kind 'block' or 'mute'). A block ends
-- follows both ways and is sent to a remote account's server; a mute stays on this node.
-- hide_notifications: a mute that also silences notifications (blocks always do).
CREATE TABLE blocks (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES actors (id),
    target_id BIGINT NOT NULL REFERENCES actors (id),
    kind TEXT NOT NULL,
    hide_notifications BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, target_id, kind)
);
CREATE INDEX blocks_target ON blocks (target_id);
