-- Notes imported from an account archive record the id they had on the old server: a second
-- import of the same archive finds them, and replies and boosts elsewhere can be re-pointed.
ALTER TABLE notes ADD COLUMN imported_from TEXT;
CREATE UNIQUE INDEX notes_imported_from ON notes (author_id, imported_from)
    WHERE imported_from IS NOT NULL;
