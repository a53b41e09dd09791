-- Twin of the SQLite migration 0011: startup script and app output
-- (masked by the agent), per-workspace cursors that only grow
-- (workspace_log_seq), and each script's or app's last run.
CREATE TABLE workspace_log_seq (
	workspace_id TEXT COLLATE "C" PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
	last_seq     BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE workspace_logs (
	workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	seq          BIGINT NOT NULL,
	source       TEXT NOT NULL,
	stream       TEXT NOT NULL,
	at           BIGINT NOT NULL,
	text         TEXT NOT NULL,
	bytes        INTEGER NOT NULL,
	PRIMARY KEY (workspace_id, seq)
);
CREATE TABLE workspace_script_runs (
	workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	source       TEXT NOT NULL,
	state        TEXT NOT NULL,
	exit_code    INTEGER NOT NULL DEFAULT 0,
	started_at   BIGINT NOT NULL DEFAULT 0,
	duration_ms  BIGINT NOT NULL DEFAULT 0,
	updated_at   BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (workspace_id, source)
);
