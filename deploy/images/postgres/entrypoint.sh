#!/bin/sh
# Creates the cluster on first start, then runs PostgreSQL in the
# foreground (exec: SIGINT from `docker stop` is a fast shutdown). The
# password is read from POSTGRES_PASSWORD_FILE and never printed.
set -eu
user="${POSTGRES_USER:-courier}"
: "${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE to a file holding the password}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null
	{ echo "host all all 0.0.0.0/0 scram-sha-256"; echo "host all all ::/0 scram-sha-256"; } >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	# The password goes through psql's stdin, never a process argument.
	{
		printf "CREATE ROLE \"%s\" LOGIN PASSWORD '" "$user"
		sed "s/'/''/g" "$POSTGRES_PASSWORD_FILE" | tr -d '\n'
		printf "';\nCREATE DATABASE \"%s\" OWNER \"%s\";\n" "$user" "$user"
	} | psql -q -v ON_ERROR_STOP=1 -U postgres -d postgres >/dev/null
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql
