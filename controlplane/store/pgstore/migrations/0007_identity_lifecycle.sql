-- Twin of the SQLite migration 0007: roles, suspension, single sign-on
-- links, personal API tokens and agent-token expiry. Times are Unix
-- nanoseconds (0: none).
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
UPDATE users SET role = 'admin' WHERE admin;
ALTER TABLE users ADD COLUMN suspended_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject != '';

CREATE TABLE api_tokens (
	id             TEXT COLLATE "C" PRIMARY KEY,
	user_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name           TEXT COLLATE "C" NOT NULL,
	token_hash     BYTEA NOT NULL UNIQUE,
	scope          TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	last_used_at   BIGINT NOT NULL DEFAULT 0,
	last_used_addr TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX api_tokens_name ON api_tokens(user_id, name);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

ALTER TABLE workspaces ADD COLUMN agent_token_expires_at BIGINT NOT NULL DEFAULT 0;
