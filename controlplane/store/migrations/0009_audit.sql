-- The audit log (issue 20): one hash chain per database. audit_head is its
-- one-row head (seq and hash of the newest record), read and updated in
-- the transaction of every append; audit_checkpoint is the seq and hash of
-- the last record retention pruned (0 and empty when none), from which the
-- chain verifies. details is text, never reparsed: its bytes are hashed.
CREATE TABLE audit_log (
	seq          INTEGER PRIMARY KEY,
	at           INTEGER NOT NULL,
	actor_kind   TEXT NOT NULL,
	actor_id     TEXT NOT NULL,
	actor_name   TEXT NOT NULL,
	source       TEXT NOT NULL,
	user_agent   TEXT NOT NULL,
	action       TEXT NOT NULL,
	target_kind  TEXT NOT NULL,
	target_id    TEXT NOT NULL,
	target_name  TEXT NOT NULL,
	target_owner TEXT NOT NULL,
	outcome      TEXT NOT NULL,
	reason       TEXT NOT NULL,
	details      TEXT NOT NULL,
	request_id   TEXT NOT NULL,
	replica      TEXT NOT NULL,
	prev_hash    BLOB NOT NULL,
	hash         BLOB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor_id);
CREATE INDEX audit_log_owner ON audit_log(target_owner);
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
);
INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, x'');
CREATE TABLE audit_checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
);
INSERT INTO audit_checkpoint(id, seq, hash) VALUES (1, 0, x'');
