-- Home feeds are derived from notes and follows: readers join `notes` (an entry for a note that
-- is gone shows nothing), and deleting a note or an actor deletes its entries. Without foreign
-- keys, as on PostgreSQL, where checking them made every entry lock its account's row. SQLite
-- cannot drop a constraint, so the table is rebuilt.
CREATE TABLE home_feed_new (
    account_id BIGINT NOT NULL,
    note_id BIGINT NOT NULL,
    PRIMARY KEY (account_id, note_id)
) WITHOUT ROWID;
INSERT INTO home_feed_new (account_id, note_id) SELECT account_id, note_id FROM home_feed;
DROP TABLE home_feed;
ALTER TABLE home_feed_new RENAME TO home_feed;

-- Deleting a note removes it from every home feed (`DELETE FROM home_feed WHERE note_id = …`).
-- The primary key starts with the account, so without this index each deletion read the whole
-- table. Note ids grow with time, so new entries append to it.
CREATE INDEX home_feed_note ON home_feed (note_id);
