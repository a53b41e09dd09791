-- Scoped secrets (R1): a secret may name the workspaces it goes to. The
-- scope is a JSON array of workspace names and globs; '' means every
-- workspace. Two secrets may now share an env name or a file path when
-- their scopes cannot overlap, a rule the unique indexes cannot express:
-- they are dropped, and every write checks the rule (store.SecretConflict)
-- inside its transaction, which SQLite serializes.
ALTER TABLE secrets ADD COLUMN workspaces TEXT NOT NULL DEFAULT '';
DROP INDEX secrets_env;
DROP INDEX secrets_file;
