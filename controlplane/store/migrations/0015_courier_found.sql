-- PostgreSQL's 0015 adds courier_found, which a secret's delete uses to fail
-- on the server when there was nothing to delete (see pgstore/secrettx.go).
-- SQLite's writes check in Go before their commit and need nothing: this
-- file keeps the two schemas' version numbers in step.
SELECT 1;
