-- Running Courier for a team: roles, suspension, single sign-on links,
-- personal API tokens and agent-token expiry.
--
-- role is 'admin', 'member' or 'auditor'; the old admin flag becomes the
-- role and is kept in step by the store (older code read it). suspended_at
-- is Unix nanoseconds, 0 while active. oidc_issuer and oidc_subject link a
-- user to an OpenID Connect identity ('' when none).
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
UPDATE users SET role = 'admin' WHERE admin != 0;
ALTER TABLE users ADD COLUMN suspended_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject != '';
CREATE INDEX sessions_user ON sessions(user_id);

-- Personal API tokens: only the SHA-256 of a token is stored. scope is
-- 'read' or 'write'. last_used_at (Unix nanoseconds, 0 before first use)
-- and last_used_addr are written in coalesced batches, not per request.
CREATE TABLE api_tokens (
	id             TEXT PRIMARY KEY,
	user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	token_hash     BLOB NOT NULL UNIQUE,
	scope          TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	last_used_at   INTEGER NOT NULL DEFAULT 0,
	last_used_addr TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX api_tokens_name ON api_tokens(user_id, name);

-- An agent token may expire (Unix nanoseconds; 0: never).
ALTER TABLE workspaces ADD COLUMN agent_token_expires_at INTEGER NOT NULL DEFAULT 0;
