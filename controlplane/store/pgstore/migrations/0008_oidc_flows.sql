-- Twin of the SQLite migration 0008: single sign-on steps in progress,
-- consumed (deleted) once. Times are Unix nanoseconds.
CREATE TABLE oidc_flows (
	key_hash   BYTEA PRIMARY KEY,
	kind       TEXT NOT NULL,
	data       BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows(expires_at);
