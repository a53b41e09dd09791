-- Control-plane replicas sharing one database register here: relay_url is
-- where the others reach this one to relay an SSH stream to an agent it
-- holds ('' when it has none), heartbeat_at (Unix nanoseconds) shows it is
-- alive. agent_status.replica_id names the replica holding the agent's
-- connection while connected ('' otherwise), so a starting replica resets
-- only its own agents and those of replicas whose heartbeat stopped.
CREATE TABLE replicas (
	id           TEXT PRIMARY KEY,
	relay_url    TEXT NOT NULL DEFAULT '',
	heartbeat_at INTEGER NOT NULL
);
ALTER TABLE agent_status ADD COLUMN replica_id TEXT NOT NULL DEFAULT '';
