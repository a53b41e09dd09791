-- Mirrors the SQLite store's 0003. Failed-login counters shared by every
-- replica (login throttling), and the format of each stored secret value.
CREATE TABLE login_counters (
	key          TEXT COLLATE "C" PRIMARY KEY, -- "account:…" or "address:…", chosen by the control plane
	failures     INTEGER NOT NULL,
	last_at      BIGINT NOT NULL,              -- Unix nanoseconds of the last counted attempt
	locked_until BIGINT NOT NULL               -- Unix nanoseconds; 0 when not locked
);

-- value_format: 0 unknown (written before this migration), 1 plain, 2 sealed.
ALTER TABLE secrets ADD COLUMN value_format SMALLINT NOT NULL DEFAULT 0;
