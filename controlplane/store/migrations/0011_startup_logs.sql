-- Startup logs: the output of each workspace's startup scripts and apps,
-- as the agent streamed it (already masked of its owner's secret values),
-- kept in the database so every replica serves it and it survives a
-- restart. seq is the line's cursor: it only grows per workspace
-- (workspace_log_seq holds the last one handed out, so trimming never
-- makes a cursor repeat). bytes is len(text), summed to enforce the
-- per-workspace byte bound. Oldest lines are deleted past the bounds.
CREATE TABLE workspace_log_seq (
	workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
	last_seq     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE workspace_logs (
	workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	source       TEXT NOT NULL,
	stream       TEXT NOT NULL,
	at           INTEGER NOT NULL,
	text         TEXT NOT NULL,
	bytes        INTEGER NOT NULL,
	PRIMARY KEY (workspace_id, seq)
);
-- One row per script or app of a workspace: its last run as the agent
-- reported it. exit_code is meaningful for the states that end a run.
CREATE TABLE workspace_script_runs (
	workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	source       TEXT NOT NULL,
	state        TEXT NOT NULL,
	exit_code    INTEGER NOT NULL DEFAULT 0,
	started_at   INTEGER NOT NULL DEFAULT 0,
	duration_ms  INTEGER NOT NULL DEFAULT 0,
	updated_at   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (workspace_id, source)
);
