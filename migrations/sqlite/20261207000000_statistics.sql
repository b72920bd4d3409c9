-- PostgreSQL's migration of this name sets which columns its planner keeps statistics on.
-- SQLite's planner keeps none unless ANALYZE is run, which the node does not: nothing to do.
SELECT 1;
