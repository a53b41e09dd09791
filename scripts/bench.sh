#!/usr/bin/env bash
# Reruns the figures of BENCHMARKS.md and prints them as one table.
#
#   scripts/bench.sh                # the full set (15,000 agents: ~4 minutes, ~1.5 GiB of RAM)
#                                   # and the replica scenario's small form (3,000 agents)
#   AGENTS=2000 scripts/bench.sh    # a smaller fleet
#   scripts/bench.sh --fleet-full   # the replica scenario in full: 30,000 agents, 3 replicas,
#                                   # 4 haproxy (~6 minutes, ~4 GiB of RAM)
#   scripts/bench.sh --fleet-only   # the replica scenario alone (with or without --fleet-full)
#   FLEET_AGENTS=12000 scripts/bench.sh --fleet-only   # another size (also FLEET_BALANCERS,
#                                   # FLEET_SETTLE, FLEET_TIMEOUT)
#
# The replica scenario (courier-load --replicas) starts its own PostgreSQL
# cluster (fsync on), the replicas on it and haproxy in front; it needs
# Debian's postgresql and haproxy packages, and root or the postgres user.
#
# Loopback only. Every run starts its own control plane in a temporary
# directory and removes it. Needs Go and python3 (to read the JSON); the SSH
# figure also needs OpenSSH's sshd and root, and is marked skipped without.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-15000}
FLEET_AGENTS=${FLEET_AGENTS:-3000} FLEET_BALANCERS=${FLEET_BALANCERS:-2} FLEET_SETTLE=${FLEET_SETTLE:-60s}
FLEET_TIMEOUT=${FLEET_TIMEOUT:-5m} fleet_only=false
for arg in "$@"; do
  case "$arg" in
  --fleet-full) FLEET_AGENTS=30000 FLEET_BALANCERS=4 FLEET_SETTLE=150s FLEET_TIMEOUT=15m ;;
  --fleet-only) fleet_only=true ;;
  *) echo "bench.sh: unknown argument $arg (--fleet-full, --fleet-only)" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
# BENCH_KEEP=DIR keeps the JSON summaries, the progress log and the replica
# scenario's children's log (replicas, haproxy, load shards) there.
trap '[ -n "${BENCH_KEEP:-}" ] && mkdir -p "$BENCH_KEEP" && cp "$out"/*.json "$out"/*.log "$BENCH_KEEP"/ 2>/dev/null; rm -rf "$out"' EXIT
go build -o "$out/courier-load" ./cmd/courier-load
load() { "$out/courier-load" "$@" 2>>"$out/progress.log" >/dev/null || { tail -20 "$out/progress.log"; exit 1; }; }

# The replica scenario runs last. A run with failures (a transient dial
# timeout counts) still wrote its summary: the table is printed from it,
# and then bench.sh exits non-zero.
fleet_rc=0
fleet() {
  echo "10/10 replicas: $FLEET_AGENTS agents, 3 replicas on their own PostgreSQL, $FLEET_BALANCERS haproxy; one balancer frozen 5 s; one replica killed and brought back; SSH fan-out 500 (50 at once)" >&2
  "$out/courier-load" -agents "$FLEET_AGENTS" -replicas 3 -balancers "$FLEET_BALANCERS" -dialers 200 -idle 20s \
    -settle "$FLEET_SETTLE" -stall-balancer 5s -ssh-sessions 500 -ssh-concurrency 50 -timeout "$FLEET_TIMEOUT" -o "$out/replicas.json" \
    -children-log "$out/children.log" \
    2>>"$out/progress.log" >/dev/null || { fleet_rc=$?; tail -20 "$out/progress.log"; }
  [ -s "$out/replicas.json" ] || exit 1
}
if $fleet_only; then
  fleet
  python3 - "$out" <<'PY'
import sys; sys.path.insert(0, "scripts")
from bench_fleet import fleet_rows, table
table(fleet_rows(sys.argv[1]))
PY
  exit $fleet_rc
fi
echo "1/10 one agent, control plane down 10 s, three times" >&2
load -agents 1 -scenarios restart,restart,restart -down 10s -o "$out/outage.json"
echo "2/10 $AGENTS agents: steady (20 s idle) and one restart" >&2
load -agents "$AGENTS" -dialers 200 -scenarios steady,restart -idle 20s -timeout 3m -o "$out/fleet.json"
echo "3/10 2,000 agents: churn (10 s) and SSH fan-out (500 sessions, 50 at once)" >&2
load -agents 2000 -scenarios churn,ssh -churn 10s -ssh-sessions 500 -ssh-concurrency 50 -o "$out/churn.json"
echo "4/10 API create+list+delete, 100 clients, SQLite (the paced form ten times in a row)" >&2
go test -run '^$' -bench 'CreateList$' -benchtime 3000x ./controlplane/ >"$out/api.txt"
go test -run '^$' -bench 'CreateListAt3300$' -benchtime 9000x -count 10 ./controlplane/ >"$out/api3000.txt"
echo "5/10 the same through two replicas on PostgreSQL (its own cluster, fsync on)" >&2
# Its own directory in /tmp: the postgres user must reach it ($out is root's, 0700).
pgdir=$(mktemp -u /tmp/courier-bench-pg.XXXXXX)
pgenv=(COURIER_PG_DIR="$pgdir" COURIER_PG_PORT=25439 COURIER_PG_FSYNC=on)
if pgurl=$(env "${pgenv[@]}" .ci/postgres.sh 2>>"$out/progress.log"); then
  COURIER_TEST_POSTGRES_URL="$pgurl" go test -run '^$' -bench 'CreateListTwoReplicasAt3300$' -benchtime 9000x ./controlplane/ >"$out/apipg.txt" || true
  env "${pgenv[@]}" .ci/postgres.sh stop 2>>"$out/progress.log"
  rm -rf "$pgdir"
else
  echo "no PostgreSQL (Debian's postgresql package)" >"$out/apipg.txt"
fi
echo "6/10 the audit log's cost: create+list+delete with recording on and off, alternating (SQLite)" >&2
go test -run '^$' -bench AuditOverhead -benchtime 6000x ./controlplane/ >"$out/audit.txt"
echo "7/10 apply of 50 files vs serial baseline" >&2
go test -run '^$' -bench ApplyRatio -benchtime 100x ./inject/ >"$out/apply.txt"
echo "8/10 ssh ws true through Courier vs OpenSSH sshd (skipped without sshd or root)" >&2
go test -run '^$' -bench BenchmarkSSHTrueVsOpenSSH -benchtime 20x ./cmd/courier-agent/ >"$out/sshtrue.txt"
echo "9/10 an idle agent with 17 secrets applied: RSS and CPU over 60 s" >&2
COURIER_BENCH_IDLE=60s go test -run '^$' -bench IdleAgent -benchtime 1x ./cmd/courier-agent/ >"$out/idle.txt"
fleet

python3 - "$out" "$AGENTS" <<'PY'
import json, re, sys
sys.path.insert(0, "scripts")
from bench_fleet import fleet_rows, table
out, agents = sys.argv[1], sys.argv[2]
o = json.load(open(f"{out}/outage.json"))
f = json.load(open(f"{out}/fleet.json"))
c = json.load(open(f"{out}/churn.json"))
api = open(f"{out}/api.txt").read()
api3 = open(f"{out}/api3000.txt").read()
app = open(f"{out}/apply.txt").read()
sst = open(f"{out}/sshtrue.txt").read()
apipg = open(f"{out}/apipg.txt").read()
aud = open(f"{out}/audit.txt").read()
idle = open(f"{out}/idle.txt").read()
p99s = [float(x) for x in re.findall(r"([\d.]+) p99-ms", api3)]
def metric(text, unit):
    m = re.search(r"([\d.]+) " + re.escape(unit), text)
    return m.group(1) if m else "?"
s, r = f["steady"], f["restarts"][0]
rows = [
    ("one agent, down 10 s: re-applied after back (3 runs)", ", ".join(f'{x["reapply"]["p50_ms"]:.0f} ms' for x in o["restarts"]), "p50 <= 1 s"),
    (f"{agents} agents: all applied once (50..200 dialing)", f'{f["connect_all_seconds"]:.1f} s', "-"),
    (f"{agents} idle agents: server RSS per agent", f'{s["rss_per_agent_kib"]:.1f} KiB', "<= 32 KiB"),
    (f"{agents} idle agents: heap / stacks / goroutines per agent", f'{s["heap_inuse_per_agent_kib"]:.1f} KiB / {s["stack_inuse_per_agent_kib"]:.1f} KiB / {s["goroutines_per_agent"]:.2f}', "-"),
    (f"{agents} idle agents: server CPU", f'{s["server_cpu_percent_idle"]:.1f} % of a core', "-"),
    (f"restart under {agents}: last re-applied after back", f'{r["all_reapplied_seconds"]:.1f} s (p50 {r["reapply"]["p50_ms"]/1000:.1f} s)', "<= 15 s"),
    (f"restart under {agents}: spread per second", " ".join(map(str, r["spread"]["per_second"])), "no herd"),
    (f"restart under {agents}: failures left", str(f["failures"]), "0"),
    ("churn 2,000: reconnect+apply p50 / p99", f'{c["churn"]["reconnect"]["p50_ms"]:.0f} / {c["churn"]["reconnect"]["p99_ms"]:.0f} ms', "-"),
    ("churn 2,000: API write p99, errors", f'{c["churn"]["api"]["p99_ms"]:.1f} ms, {c["churn"]["api_errors"]}', "-"),
    ("SSH fan-out 500 (50 at once): session p50 / p99", f'{c["ssh"]["session"]["p50_ms"]:.1f} / {c["ssh"]["session"]["p99_ms"]:.1f} ms, {c["ssh"]["errors"]} errors', "-"),
    ("API create+list+delete, 100 clients, closed loop", f'{metric(api, "req/s")} req/s, p99 {metric(api, "p99-ms")} ms', "-"),
    ("API create+list+delete, 100 clients, 3,333 req/s offered, 10 runs", f'{sum(p < 20 for p in p99s)} of {len(p99s)} runs p99 < 20 ms (p99 {min(p99s, default=0):.1f}..{max(p99s, default=0):.1f} ms; {metric(api3, "req/s")} req/s first)', ">= 3,000 req/s, p99 < 20 ms in 9 of 10"),
    ("the same, PostgreSQL (fsync on) through two replicas", f'{metric(apipg, "req/s")} req/s, p99 {metric(apipg, "p99-ms")} ms' if "req/s" in apipg else apipg.strip()[-80:], ">= 3,000 req/s, p99 < 30 ms"),
    ("audit log on / off, create+list+delete, SQLite", f'{metric(aud, "on/off")} ({metric(aud, "on-req/s")} / {metric(aud, "off-req/s")} req/s)', ">= 0.9"),
    ("apply 50 files / 200 KiB vs serial baseline", metric(app, "ratio"), "<= 0.5"),
    ("idle agent, 17 secrets: RSS (anon / file), CPU", f'{float(metric(idle, "rss-KiB"))/1024:.1f} MiB ({float(metric(idle, "anon-KiB"))/1024:.1f} / {float(metric(idle, "file-KiB"))/1024:.1f}), {metric(idle, "cpu-ms/min")} ms CPU a minute' if "rss-KiB" in idle else "?", "<= 10 MiB, ~0 CPU"),
    ("ssh ws true: Courier vs OpenSSH sshd on loopback", f'{metric(sst, "ratio")} ({metric(sst, "courier-ms/op")} / {metric(sst, "sshd-ms/op")} ms)' if "ratio" in sst else "skipped (no sshd or not root)", "<= 0.2"),
]
table(rows + fleet_rows(out))
PY
exit $fleet_rc
