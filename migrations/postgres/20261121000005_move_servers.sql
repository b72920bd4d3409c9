-- For each outgoing move, the servers whose followers it must carry: how many followed the old
-- account from there when it moved (compared later with how many still do: the move's
-- progress), where to send the Move, and how often it was sent (it is re-sent, with growing
-- pauses, to servers whose followers have not moved).
CREATE TABLE move_servers (
    move_id BIGINT NOT NULL REFERENCES moves (id),
    domain TEXT NOT NULL,
    inbox TEXT NOT NULL,
    followers BIGINT NOT NULL,
    sends INTEGER NOT NULL DEFAULT 1,
    last_sent_at BIGINT NOT NULL,
    PRIMARY KEY (move_id, domain)
);
