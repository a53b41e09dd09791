-- A secret may be paused: it stays listed and keeps its env name and file
-- path reserved, but is not delivered to agents while enabled is 0.
ALTER TABLE secrets ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;

-- What the control plane knows of each workspace's agent, kept across
-- restarts. One row per workspace, created at the agent's first connect.
-- conn_id names the connection that set connected, so the end of a replaced
-- connection does not mark its successor disconnected. last_apply is the
-- agent's last apply report as JSON (names, paths, outcomes; never values).
CREATE TABLE agent_status (
	workspace_id    TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
	connected       INTEGER NOT NULL DEFAULT 0,
	conn_id         TEXT NOT NULL DEFAULT '',
	remote_addr     TEXT NOT NULL DEFAULT '',
	agent_version   TEXT NOT NULL DEFAULT '',
	connected_at    INTEGER NOT NULL DEFAULT 0,
	disconnected_at INTEGER NOT NULL DEFAULT 0,
	replaced_at     INTEGER NOT NULL DEFAULT 0,
	replaced_note   TEXT NOT NULL DEFAULT '',
	last_apply      TEXT NOT NULL DEFAULT ''
);
