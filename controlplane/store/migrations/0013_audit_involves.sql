-- A user's own records (audit.Filter.Involving: the account page, and
-- GET /api/v2/users/{user}/audit) come from a side table instead of
-- per-user indexes on audit_log.
--
-- The two indexes of 0009 on actor_id and target_owner served no query:
-- every filter on them ORs them with an unindexed column, so SQLite walked
-- the table by seq anyway. And each record cost a leaf page of each, its
-- user's page, dirtied in every group commit: with a hundred users writing,
-- a quarter of the API's throughput.
--
-- audit_involves holds (record, user) for each user a record involves: its
-- actor if a user, its target if a user, and its target's owner. The store
-- fills it in bulk, at most once a second (see indexInvolves), up to
-- audit_involves_mark.seq; the records after the mark are few and read by
-- scanning. It is not part of the hash chain: editing it can hide a record
-- from a user's page, never from courier audit verify.
DROP INDEX audit_log_actor;
DROP INDEX audit_log_owner;
CREATE TABLE audit_involves (
	rec     INTEGER NOT NULL,
	user_id TEXT NOT NULL,
	PRIMARY KEY (rec, user_id)
) WITHOUT ROWID;
CREATE INDEX audit_involves_user ON audit_involves(user_id, rec);
CREATE TABLE audit_involves_mark (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO audit_involves_mark(id, seq) SELECT 1, seq FROM audit_head WHERE id = 1;
INSERT OR IGNORE INTO audit_involves(rec, user_id)
	SELECT seq, actor_id FROM audit_log WHERE actor_kind = 'user' AND actor_id != ''
	UNION SELECT seq, target_id FROM audit_log WHERE target_kind = 'user' AND target_id != ''
	UNION SELECT seq, target_owner FROM audit_log WHERE target_owner != '';
