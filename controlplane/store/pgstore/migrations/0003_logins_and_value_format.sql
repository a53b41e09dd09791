-- Mirrors the SQLite store's 0003. Failed-login counters shared by every
-- replica (login throttling), and the format of each stored secret value.
-- The key is BYTEA, where SQLite has TEXT: it holds a username as typed at a
-- login, which may be any bytes, and PostgreSQL text refuses NUL and
-- invalid UTF-8.
CREATE TABLE login_counters (
	key          BYTEA PRIMARY KEY,            -- "account:…" or "address:…", chosen by the control plane
	failures     INTEGER NOT NULL,
	last_at      BIGINT NOT NULL,              -- Unix nanoseconds of the last counted attempt
	locked_until BIGINT NOT NULL               -- Unix nanoseconds; 0 when not locked
);

-- value_format: 0 unknown (written before this migration), 1 plain, 2 sealed.
ALTER TABLE secrets ADD COLUMN value_format SMALLINT NOT NULL DEFAULT 0;
