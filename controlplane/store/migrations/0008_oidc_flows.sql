-- Single sign-on steps in progress (an authorization request waiting for
-- its callback, a code the CLI redeems, a device authorization): kept in
-- the database so that any replica can finish a step and each is used once
-- (deleted when consumed). key_hash is the SHA-256 of the step's handle;
-- data is the identity package's JSON; times are Unix nanoseconds.
CREATE TABLE oidc_flows (
	key_hash   BLOB PRIMARY KEY,
	kind       TEXT NOT NULL,
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows(expires_at);
