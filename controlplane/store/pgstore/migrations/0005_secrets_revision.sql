-- Twin of the SQLite migration 0005: a per-user counter every secret write
-- (create, update, delete) raises in its own transaction, so "changes
-- pending" is the owner's revision being newer than the one last applied.
ALTER TABLE users ADD COLUMN secrets_revision BIGINT NOT NULL DEFAULT 0;
