-- audit_involves keyed by (user_id, rec) alone. 0013 kept two B-trees for
-- it, the primary key (rec, user_id) and an index (user_id, rec): every
-- record a user is involved in was inserted twice once a second, inside
-- the group commit that every write waits for. Reads only ever walk one
-- user's records in order, which the new key serves; pruning deletes the
-- pruned records' entries by key (see PruneAudit) instead of by a range
-- of rec.
CREATE TABLE audit_involves_by_user (
	user_id TEXT NOT NULL,
	rec     INTEGER NOT NULL,
	PRIMARY KEY (user_id, rec)
) WITHOUT ROWID;
INSERT INTO audit_involves_by_user(user_id, rec) SELECT user_id, rec FROM audit_involves ORDER BY user_id, rec;
DROP TABLE audit_involves;
ALTER TABLE audit_involves_by_user RENAME TO audit_involves;
