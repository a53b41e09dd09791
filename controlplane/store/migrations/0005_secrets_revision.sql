-- A per-user counter every secret write (create, update, delete) raises in
-- its own transaction. Agents are told of it when the secrets change, and
-- an agent's apply report records the revision it applied, so "changes
-- pending" is the owner's revision being newer than the applied one.
ALTER TABLE users ADD COLUMN secrets_revision INTEGER NOT NULL DEFAULT 0;
