-- Users, sessions, workspaces and secrets: the PostgreSQL mirror of the
-- SQLite store's 0001_init.sql. Timestamps are Unix nanoseconds (UTC), as
-- in SQLite, so both stores give back exactly the time.Time they were given.
-- Identifiers and names compare bytewise (COLLATE "C"), as in SQLite, so
-- ordering does not depend on the database's locale.
CREATE TABLE users (
	id            TEXT COLLATE "C" PRIMARY KEY,
	username      TEXT NOT NULL,
	email         TEXT NOT NULL,
	password_hash BYTEA NOT NULL,
	admin         BOOLEAN NOT NULL DEFAULT false,
	created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users(lower(username));
CREATE UNIQUE INDEX users_email ON users(lower(email));

CREATE TABLE sessions (
	token_hash BYTEA PRIMARY KEY,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE workspaces (
	id               TEXT COLLATE "C" PRIMARY KEY,
	name             TEXT COLLATE "C" NOT NULL,
	owner_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	template         JSON NOT NULL,     -- JSON, not JSONB: jsonb refuses \u0000
	agent_token_hash BYTEA NOT NULL,
	created_at       BIGINT NOT NULL,
	state            TEXT NOT NULL DEFAULT '',
	state_at         BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces(owner_id, name);
CREATE UNIQUE INDEX workspaces_agent_token ON workspaces(agent_token_hash);

CREATE TABLE secrets (
	id          TEXT COLLATE "C" PRIMARY KEY,
	user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name        TEXT COLLATE "C" NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	env_name    TEXT COLLATE "C" NOT NULL DEFAULT '',
	file_path   TEXT COLLATE "C" NOT NULL DEFAULT '',
	value       BYTEA NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX secrets_name ON secrets(user_id, name);
CREATE UNIQUE INDEX secrets_env ON secrets(user_id, env_name) WHERE env_name <> '';
CREATE UNIQUE INDEX secrets_file ON secrets(user_id, file_path) WHERE file_path <> '';
