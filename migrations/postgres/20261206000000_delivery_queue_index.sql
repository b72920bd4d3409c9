-- The delivery worker claims the oldest due rows: `WHERE status = 0 AND next_attempt_at <= now
-- … ORDER BY next_attempt_at, id LIMIT n`. Through `(status, next_attempt_at)` the database read
-- every queued row and sorted them all to find the first n, because a fan-out's rows share one
-- `next_attempt_at`: on PostgreSQL 50-117 ms per claim during a fan-out to 50,000 servers. This
-- index holds only queued rows, in the order claims take them, so a claim reads from its start
-- and stops after n (and the rows already leased). Nothing else needed the old index.
CREATE INDEX deliveries_queue ON deliveries (next_attempt_at, id) WHERE status = 0;
DROP INDEX deliveries_due;
