-- Mirrors the SQLite store's 0002. A secret may be paused: it stays listed
-- and keeps its env name and file path reserved, but is not delivered to
-- agents while enabled is false.
ALTER TABLE secrets ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT true;

-- What the control plane knows of each workspace's agent. One row per
-- workspace, created at the agent's first connect. conn_id names the
-- connection that set connected, so the end of a replaced connection does
-- not mark its successor disconnected. last_apply is the agent's last apply
-- report (names, paths, outcomes; never values), NULL before the first.
CREATE TABLE agent_status (
	workspace_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
	connected       BOOLEAN NOT NULL DEFAULT false,
	conn_id         TEXT NOT NULL DEFAULT '',
	remote_addr     TEXT NOT NULL DEFAULT '',
	agent_version   TEXT NOT NULL DEFAULT '',
	connected_at    BIGINT NOT NULL DEFAULT 0,
	disconnected_at BIGINT NOT NULL DEFAULT 0,
	replaced_at     BIGINT NOT NULL DEFAULT 0,
	replaced_note   TEXT NOT NULL DEFAULT '',
	last_apply      JSON  -- JSON, not JSONB: jsonb refuses \u0000
);
