-- Twin of the SQLite migration 0006: control-plane replicas register here
-- (relay_url: where the others relay SSH streams to it; heartbeat_at: Unix
-- nanoseconds of its last heartbeat), and agent_status.replica_id names the
-- replica holding each connected agent ('' otherwise).
CREATE TABLE replicas (
	id           TEXT COLLATE "C" PRIMARY KEY,
	relay_url    TEXT NOT NULL DEFAULT '',
	heartbeat_at BIGINT NOT NULL
);
ALTER TABLE agent_status ADD COLUMN replica_id TEXT NOT NULL DEFAULT '';
