"""The replica scenario's rows of scripts/bench.sh's table, read from the
JSON courier-load --replicas wrote (replicas.json), and the table printer."""
import json


def fleet_rows(out):
    d = json.load(open(f"{out}/replicas.json"))
    f = d["fleet"]
    n, reps, lbs = d["agents"], f["replicas"], f["balancers"]
    ssh = d.get("ssh") or {}
    if not f.get("steady") or not f.get("kill") or not (f.get("settle") or {}).get("samples"):
        # The run failed before its end: what it reached, and its errors.
        return [(f"{n:,} agents on {reps} replicas ({lbs} haproxy): the run stopped early",
                 f'connect {d.get("connect_all_seconds", 0):.1f} s, {d["failures"]} failures {d.get("errors")}', "see progress.log")]
    k, s, pg = f["kill"], f["settle"], f["postgres"]
    first, last = s["samples"][0]["agents"], s["samples"][-1]["agents"]
    mid = s["samples"][len(s["samples"]) // 2]
    rows = [
        (f"{n:,} agents on {reps} replicas ({lbs} haproxy, {f['shards']} load processes): all applied once",
         f'{d["connect_all_seconds"]:.1f} s, {d["failures"]} failures', "30,000 on three replicas, 0 errors"),
        ("  ... CPU meanwhile: replicas / PostgreSQL / haproxy / load shards, of the machine's", cpu(f.get("connect_cpu")), "-"),
        (f"{n:,} idle agents: server RSS per agent, each replica",
         " / ".join(f'{r["rss_per_agent_kib"]:.1f} KiB ({r["agents"]:,})' for r in f["steady"]), "<= 32 KiB (perf)"),
        (f"{n:,} idle agents: PostgreSQL connections, PSS, CPU idle",
         f'{pg["connections"]}, {pg["pss_bytes"] / 2**20:.0f} MiB, {pg["cpu_percent_idle"]:.1f} % of a core', "-"),
        (f"replica killed under {n:,}: its {k['lost']:,} agents re-applied (last / p50)",
         f'{k["all_reapplied_seconds"]:.1f} s / {k["reapply"]["p50_ms"] / 1000:.1f} s, {k["not_reapplied"]} not', "<= 30 s, 0 errors"),
        ("  ... CPU meanwhile (live replicas): replicas / PostgreSQL / haproxy / load shards, of the machine's", cpu(k.get("cpu")), "-"),
        (f"replica killed under {n:,}: re-applies per second", " ".join(map(str, k["spread"]["per_second"])), "no herd"),
        (f"replica killed under {n:,}: secret changed in the outage seen by every agent",
         f'{k["change_seen_seconds"]:.1f} s after the kill, {k["stale_revision"]} agents without it, {k["update_errors"]} write errors', "every agent"),
        (f"replica killed under {n:,}: the {k['secret_updates']} writes in the outage (16 at a time): all / each p50, p99",
         f'{k["update_seconds"]:.1f} s / {k.get("update_latency", {}).get("p50_ms", 0):.0f} ms, {k.get("update_latency", {}).get("p99_ms", 0):.0f} ms', "-"),
        (f"replica killed under {n:,}: failures (all kinds)", f'{d["failures"]} {d["errors"]}', "0"),
        (f"killed replica back: agents per replica at 0 s / {mid['seconds']:.0f} s / {s['samples'][-1]['seconds']:.0f} s",
         f'{first} / {mid["agents"]} / {last} (largest {s["max_over_share"]:.2f}x its share, {s["moved"]:,} moved)', "not lopsided forever"),
    ]
    st = f.get("stall")
    if st:
        rows.insert(4, (f"balancer frozen {st['stall_seconds']:.0f} s (SIGSTOP), {st['agents_behind']:,} agents behind it: sessions lost",
                        f'{st["lost"]} lost, {st["not_reapplied"]} not re-applied at the watch's end (30 s); errors {st.get("errors") or {}}', "0 for a stall under 5 s"))
    if ssh:
        rows.append((f"SSH fan-out {ssh['sessions']} through a balancer ({ssh['concurrency']} at once): p50 / p99",
                     f'{ssh["session"]["p50_ms"]:.1f} / {ssh["session"]["p99_ms"]:.1f} ms, {ssh["errors"]} errors', "-"))
    return rows


def cpu(c):
    """Where the machine's CPU went in a phase (CPUShare), in core-seconds."""
    if not c or not c.get("wall_seconds"):
        return "not measured"
    cap = c["wall_seconds"] * c["cores"]
    parts = [c["replicas_cpu_seconds"], c["postgres_cpu_seconds"], c["balancers_cpu_seconds"], c["shards_cpu_seconds"]]
    return (" / ".join(f"{p:.1f}" for p in parts) +
            f' s of {cap:.0f} ({c["cores"]} cores x {c["wall_seconds"]:.1f} s; busy {c["machine_cpu_seconds"]:.0f} s);'
            f' the harness (haproxy + shards) {100 * (parts[2] + parts[3]) / max(c["machine_cpu_seconds"], 1e-9):.0f} % of the busy time')


def table(rows):
    w = max(len(a) for a, _, _ in rows)
    v = max(len(b) for _, b, _ in rows)
    print(f'{"figure":<{w}} | {"measured":<{v}} | target')
    print(f'{"-" * w}-|-{"-" * v}-|-------')
    for a, b, t in rows:
        print(f"{a:<{w}} | {b:<{v}} | {t}")
