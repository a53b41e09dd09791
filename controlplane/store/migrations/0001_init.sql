-- Users, sessions, workspaces and secrets. Timestamps are Unix nanoseconds (UTC).
CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL,
	email         TEXT NOT NULL,
	password_hash BLOB NOT NULL,
	admin         INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username ON users(lower(username));
CREATE UNIQUE INDEX users_email ON users(lower(email));

CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE workspaces (
	id               TEXT PRIMARY KEY,
	name             TEXT NOT NULL,
	owner_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	template         TEXT NOT NULL,
	agent_token_hash BLOB NOT NULL UNIQUE,
	created_at       INTEGER NOT NULL,
	state            TEXT NOT NULL DEFAULT '',
	state_at         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces(owner_id, name);

CREATE TABLE secrets (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	env_name    TEXT NOT NULL DEFAULT '',
	file_path   TEXT NOT NULL DEFAULT '',
	value       BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX secrets_name ON secrets(user_id, name);
CREATE UNIQUE INDEX secrets_env ON secrets(user_id, env_name) WHERE env_name != '';
CREATE UNIQUE INDEX secrets_file ON secrets(user_id, file_path) WHERE file_path != '';
