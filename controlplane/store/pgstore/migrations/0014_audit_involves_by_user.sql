-- audit_involves keyed by (user_id, rec) alone, as in SQLite's 0014: 0013
-- kept two B-trees for it, the primary key (rec, user_id) and an index
-- (user_id, rec), and the chaining step inserted every entry into both.
-- Reads only walk one user's records in order; pruning deletes the pruned
-- records' entries by key (see PruneAudit).
ALTER TABLE audit_involves DROP CONSTRAINT audit_involves_pkey;
DROP INDEX audit_involves_user;
ALTER TABLE audit_involves ADD PRIMARY KEY (user_id, rec);
