-- Twin of the SQLite migration 0009: the audit log, its one-row head and
-- the retention checkpoint, plus audit_pending (below). details is TEXT,
-- not JSONB: its bytes are hashed and must come back unchanged.
CREATE TABLE audit_log (
	seq          BIGINT PRIMARY KEY,
	at           BIGINT NOT NULL,
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
	prev_hash    BYTEA NOT NULL,
	hash         BYTEA NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor_id);
CREATE INDEX audit_log_owner ON audit_log(target_owner);
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash BYTEA NOT NULL
);
INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, '\x');
CREATE TABLE audit_checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash BYTEA NOT NULL
);
INSERT INTO audit_checkpoint(id, seq, hash) VALUES (1, 0, '\x');
-- Records written by a change's transaction wait here, unchained, so that
-- writers never queue on the chain's head: the head's lock would be held
-- through every writer's commit, serializing the whole database's writes
-- (measured: half the API's throughput at 100 clients). A chainer (any
-- replica, one at a time under the head's lock) moves them into audit_log
-- in id order, assigning seq and hashes, within about a second and before
-- every read of the log.
CREATE TABLE audit_pending (
	id           BIGSERIAL PRIMARY KEY,
	at           BIGINT NOT NULL,
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
	replica      TEXT NOT NULL
);
