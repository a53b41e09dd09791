#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for Courier's tests and prints its URL
# on stdout (everything else goes to stderr):
#
#   export COURIER_TEST_POSTGRES_URL=$(.ci/postgres.sh)      # start (or reuse)
#   .ci/postgres.sh running && echo up                         # is it up?
#   .ci/postgres.sh stop                                       # stop it
#
# It needs Debian's `postgresql` package (initdb and pg_ctl under
# /usr/lib/postgresql/<version>/bin). The cluster lives in $COURIER_PG_DIR
# (default /tmp/courier-pg), listens on 127.0.0.1:$COURIER_PG_PORT only
# (default 25432: below the kernel's ephemeral range, so no client
# connection's local port can hold it while the server is down), and has
# one role and database, both "courier", password "courier" (a test
# server: nothing of value is in it). Run as root, the
# server runs as the "postgres" user, since PostgreSQL refuses to run as
# root. Running it again while the server is up just prints the URL.
# fsync is off (a test server) unless COURIER_PG_FSYNC=on (benchmarks).
set -euo pipefail

dir="${COURIER_PG_DIR:-/tmp/courier-pg}"
port="${COURIER_PG_PORT:-25432}"
url="postgres://courier:courier@127.0.0.1:${port}/courier?sslmode=disable"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: no PostgreSQL server binaries; install Debian's postgresql package" >&2
  exit 1
fi

# as runs a command as the cluster's owner: "postgres" when we are root.
as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

up() { [ -f "$dir/data/PG_VERSION" ] && as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

if [ "${1:-start}" = running ]; then
  up
  exit
fi

if [ "${1:-start}" = stop ]; then
  if [ -f "$dir/data/PG_VERSION" ]; then
    as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  exit 0
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  pwfile="$dir/pwfile"
  as sh -c "umask 077; echo postgres > '$pwfile'"
  as "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
  rm -f "$pwfile"
fi

if ! up; then
  as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${COURIER_PG_FSYNC:-off}" start >&2
fi

psql() { as "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql -c "SELECT count(*) FROM pg_roles WHERE rolname = 'courier'")" = 0 ]; then
  psql -c "CREATE ROLE courier LOGIN PASSWORD 'courier'" >&2
fi
if [ "$(psql -c "SELECT count(*) FROM pg_database WHERE datname = 'courier'")" = 0 ]; then
  psql -c "CREATE DATABASE courier OWNER courier" >&2
fi
echo "$url"
