-- Where the notes of a local account that moved went: looked up on the new account's node
-- (which imported them from the archive) the first time an old note is asked for. new_ap_id
-- is NULL when the new node did not know the note; that answer is asked again after an hour.
CREATE TABLE note_moves (
    note_id BIGINT PRIMARY KEY REFERENCES notes (id),
    new_ap_id TEXT,
    checked_at BIGINT NOT NULL
);
