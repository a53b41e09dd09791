-- Twin of the SQLite migration 0010: a secret's scope as a JSON array of
-- workspace names and globs ('' = every workspace). The unique indexes on
-- env name and file path go: two secrets may share one when their scopes
-- cannot overlap, which every write checks (store.SecretConflict) under
-- the user's row lock that serializes that user's secret writers across
-- replicas.
ALTER TABLE secrets ADD COLUMN workspaces TEXT COLLATE "C" NOT NULL DEFAULT '';
DROP INDEX secrets_env;
DROP INDEX secrets_file;
