-- A user's own audit records (audit.Filter.Involving) through a side
-- table, as in SQLite's 0013. The indexes of 0009 on actor_id and
-- target_owner served no query (each filter ORs them with an unindexed
-- column). Here the chaining step (chainPending), which already moves
-- records in batches under the head's lock, fills audit_involves in the
-- same transaction, so it always holds every chained record.
DROP INDEX audit_log_actor;
DROP INDEX audit_log_owner;
CREATE TABLE audit_involves (
	rec     BIGINT NOT NULL,
	user_id TEXT NOT NULL,
	PRIMARY KEY (rec, user_id)
);
CREATE INDEX audit_involves_user ON audit_involves(user_id, rec);
INSERT INTO audit_involves(rec, user_id)
	SELECT seq, actor_id FROM audit_log WHERE actor_kind = 'user' AND actor_id <> ''
	UNION SELECT seq, target_id FROM audit_log WHERE target_kind = 'user' AND target_id <> ''
	UNION SELECT seq, target_owner FROM audit_log WHERE target_owner <> ''
	ON CONFLICT DO NOTHING;
