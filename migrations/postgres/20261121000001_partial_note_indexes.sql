-- Most notes are neither replies nor boosts: index only the ones that are. Every query on
-- these columns compares them with `=` or `IN`, which implies NOT NULL, so the planner still
-- uses these indexes; each top-level note now costs three index inserts fewer.
DROP INDEX notes_reply;
DROP INDEX notes_reply_ap;
DROP INDEX notes_reblog;
CREATE INDEX notes_reply ON notes (in_reply_to_id) WHERE in_reply_to_id IS NOT NULL;
CREATE INDEX notes_reply_ap ON notes (in_reply_to_ap_id) WHERE in_reply_to_ap_id IS NOT NULL;
CREATE INDEX notes_reblog ON notes (reblog_of_id) WHERE reblog_of_id IS NOT NULL;
