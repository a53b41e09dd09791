package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/courierhq/courier/client"
)

// sampleReplica reads one replica after a forced GC: process figures and
// its connected-agents gauge.
func sampleReplica(ctx context.Context, p *serverProc) (serverSample, error) {
	s := serverSample{at: time.Now()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.pprof+"/debug/pprof/heap?gc=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
	}
	m, err := scrapeMetrics(ctx, p.url(), "courier_agents_connected", "go_goroutines")
	if err != nil {
		return s, fmt.Errorf("reading a replica's /metrics: %w", err)
	}
	s.agents, s.goroutines = int(m["courier_agents_connected"]), m["go_goroutines"]
	s.proc, err = p.stats()
	return s, err
}

// agentsPerReplica reads every live replica's gauge (-1 for one that is
// down or does not answer).
func (fr *fleetRun) agentsPerReplica(ctx context.Context) []int {
	out := make([]int, len(fr.replicas))
	for i, p := range fr.replicas {
		out[i] = -1
		// pid, not cmd: the killer goroutine clears cmd while this runs.
		if p.pid.Load() == 0 {
			continue
		}
		if m, err := scrapeMetrics(ctx, p.url(), "courier_agents_connected"); err == nil {
			out[i] = int(m["courier_agents_connected"])
		}
	}
	return out
}

// steady holds the fleet idle for Idle and measures every replica and
// PostgreSQL.
func (fr *fleetRun) steady(ctx context.Context, res *FleetResult, base []serverSample, pgBase pgStats) error {
	r := fr.r
	s0 := make([]serverSample, len(fr.replicas))
	var err error
	for i, p := range fr.replicas {
		if s0[i], err = sampleReplica(ctx, p); err != nil {
			return err
		}
	}
	pg0, err := fr.pg.stats(ctx)
	if err != nil {
		return err
	}
	for _, sp := range fr.shards {
		if ps, err := readProc(sp.cmd.Process.Pid); err == nil {
			res.ShardCPUSecsConnect += ps.CPUSecs
		}
	}
	r.say(fmt.Sprintf("steady: holding the fleet idle for %s", r.cfg.Idle))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.cfg.Idle):
	}
	for i, p := range fr.replicas {
		s1, err := sampleReplica(ctx, p)
		if err != nil {
			return err
		}
		secs := s1.at.Sub(s0[i].at).Seconds()
		rs := ReplicaSteady{Agents: s1.agents, RSSBaseBytes: base[i].proc.RSSBytes, RSSBytes: s1.proc.RSSBytes,
			CPUPercentIdle: (s1.proc.CPUSecs - s0[i].proc.CPUSecs) / secs * 100,
			CPUSecsConnect: s0[i].proc.CPUSecs - base[i].proc.CPUSecs}
		if s1.agents > 0 {
			rs.RSSPerAgentKiB = float64(s1.proc.RSSBytes-base[i].proc.RSSBytes) / float64(s1.agents) / 1024
		}
		res.Steady = append(res.Steady, rs)
		r.say(fmt.Sprintf("steady: replica %d holds %d agents, RSS %.0f MiB (%.1f KiB/agent), CPU %.1f%% idle (%.1fs while the fleet connected)",
			i, rs.Agents, float64(rs.RSSBytes)/(1<<20), rs.RSSPerAgentKiB, rs.CPUPercentIdle, rs.CPUSecsConnect))
	}
	pg1, err := fr.pg.stats(ctx)
	if err != nil {
		return err
	}
	res.Postgres = PostgresSteady{pgStats: pg1, CPUSecsConnect: pg0.CPUSecs - pgBase.CPUSecs,
		CPUPercentIdle: (pg1.CPUSecs - pg0.CPUSecs) / r.cfg.Idle.Seconds() * 100}
	r.say(fmt.Sprintf("steady: PostgreSQL %d connections, %d processes, PSS %.0f MiB, CPU %.1f%% idle (%.1fs while the fleet connected; the shards %.1fs)",
		pg1.Connections, pg1.Processes, float64(pg1.PSSBytes)/(1<<20), res.Postgres.CPUPercentIdle, res.Postgres.CPUSecsConnect, res.ShardCPUSecsConnect))
	return nil
}

// KillResult is one replica killed (SIGKILL) under the fleet.
type KillResult struct {
	// Replica is the index of the replica killed: the one holding the
	// most agents; AgentsOnIt its gauge just before.
	Replica    int `json:"replica"`
	AgentsOnIt int `json:"agents_on_it"`
	// Lost is how many agents lost their session (those of the killed
	// replica); Reapply is when each applied again, from the kill.
	Lost             int     `json:"lost"`
	AllReappliedSecs float64 `json:"all_reapplied_seconds"`
	Reapply          Dist    `json:"reapply"`
	Spread           Spread  `json:"spread"`
	NotReapplied     int     `json:"not_reapplied"`
	// SecretUpdates is one secret of every user changed just after the
	// kill, through a balancer, each tried up to 5 times a second apart
	// (as an operator would retry a 503): UpdateRetries counts the failed
	// attempts, UpdateErrors the updates that never succeeded, and
	// UpdateKinds the failed attempts by kind.
	SecretUpdates int            `json:"secret_updates"`
	UpdateRetries int            `json:"update_retries"`
	UpdateErrors  int            `json:"update_errors"`
	UpdateKinds   map[string]int `json:"update_error_kinds,omitempty"`
	UpdateSecs    float64        `json:"update_seconds"`
	// UpdateLatency is each successful update's own request, as the
	// client saw it: under the reconnect storm, how long a write takes.
	UpdateLatency Dist `json:"update_latency"`
	// ChangeSeenSecs is from the kill until every agent had applied or
	// been told of a revision newer than before the kill; StaleRevision
	// counts the agents that had not when the wait ended.
	ChangeSeenSecs float64 `json:"change_seen_seconds"`
	StaleRevision  int     `json:"stale_revision"`
	// After is each replica's gauge once every lost agent re-applied.
	After []int `json:"agents_after"`
	// CPU is where the machine's CPU went from the kill until every lost
	// agent had re-applied and every agent had seen the change (the live
	// replicas only).
	CPU CPUShare `json:"cpu"`
}

// killOne kills the replica holding the most agents, changes one secret
// of every user during the outage, and waits until the killed replica's
// agents re-applied through the balancers and every agent has seen the
// change.
func (fr *fleetRun) killOne(ctx context.Context) (KillResult, error) {
	r := fr.r
	var res KillResult
	before := fr.agentsPerReplica(ctx)
	for i, n := range before {
		if n > before[res.Replica] {
			res.Replica = i
		}
	}
	res.AgentsOnIt = before[res.Replica]
	if _, err := fr.shards.callAll(opMark); err != nil {
		return res, err
	}
	r.say(fmt.Sprintf("kill: SIGKILL to replica %d, which holds %d agents (per replica: %v)", res.Replica, res.AgentsOnIt, before))
	cpu0 := fr.markCPU(ctx)
	killedAt := time.Now()
	fr.replicas[res.Replica].kill()

	t := time.Now()
	var took []time.Duration
	res.SecretUpdates, res.UpdateRetries, res.UpdateErrors, res.UpdateKinds, took = fr.changeOneSecretEach(ctx)
	res.UpdateSecs = time.Since(t).Seconds()
	res.UpdateLatency = distOf(took)
	r.say(fmt.Sprintf("kill: changed one secret of each of %d users in %.1fs (each p50 %.0f ms, p99 %.0f ms, max %.0f ms), %d failed attempts %v, %d never succeeded",
		res.SecretUpdates, res.UpdateSecs, res.UpdateLatency.P50, res.UpdateLatency.P99, res.UpdateLatency.Max, res.UpdateRetries, res.UpdateKinds, res.UpdateErrors))

	var last merged
	seen := false
	werr := fr.waitOutage(ctx, "kill", func(m merged) bool {
		last = m
		if !seen && m.StaleRevision == 0 {
			seen = true
			res.ChangeSeenSecs = time.Since(killedAt).Seconds()
		}
		return m.Lost >= res.AgentsOnIt && m.NotReapplied == 0 && m.StaleRevision == 0
	})
	res.Lost, res.NotReapplied, res.StaleRevision = last.Lost, last.NotReapplied, last.StaleRevision
	ds := make([]time.Duration, len(last.ReappliedAt))
	for i, at := range last.ReappliedAt {
		ds[i] = time.Unix(0, at).Sub(killedAt)
	}
	res.Reapply, res.Spread = distOf(ds), spreadOf(ds)
	res.AllReappliedSecs = res.Reapply.Max / 1000
	res.CPU = fr.markCPU(ctx).since(cpu0)
	res.After = fr.agentsPerReplica(ctx)
	r.say(res.CPU.say("kill"))
	r.say(fmt.Sprintf("kill: %d agents lost their session, %d re-applied (p50 %.0f ms, p99 %.0f ms, last %.1fs after the kill), %d not; per second %v; "+
		"change seen by every agent after %.1fs (%d not); per replica now %v",
		res.Lost, len(ds), res.Reapply.P50, res.Reapply.P99, res.AllReappliedSecs, res.NotReapplied, res.Spread.PerSecond,
		res.ChangeSeenSecs, res.StaleRevision, res.After))
	return res, werr
}

// waitOutage polls opOutage every 250 ms until cond holds or Timeout
// passes.
func (fr *fleetRun) waitOutage(ctx context.Context, step string, cond func(merged) bool) error {
	deadline := time.Now().Add(fr.r.cfg.Timeout)
	lastSay := time.Now()
	for {
		m, err := fr.shards.callAll(opOutage)
		if err != nil {
			return err
		}
		if cond(m) {
			return nil
		}
		if time.Since(lastSay) > 5*time.Second {
			lastSay = time.Now()
			fr.r.say(fmt.Sprintf("%s: %d lost, %d re-applied, %d not yet; %d agents without a newer revision; errors %v",
				step, m.Lost, len(m.ReappliedAt), m.NotReapplied, m.StaleRevision, m.Errors))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: timed out after %s waiting for the lost agents to re-apply (%d lost, %d not re-applied, %d without the change)",
				step, fr.r.cfg.Timeout, m.Lost, m.NotReapplied, m.StaleRevision)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// changeOneSecretEach gives the first secret of every user a new value,
// through the first balancer, 16 at a time, each tried up to 5 times; took
// is how long each successful attempt's request took.
func (fr *fleetRun) changeOneSecretEach(ctx context.Context) (n, retries, errs int, kinds map[string]int, took []time.Duration) {
	kinds = map[string]int{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, u := range fr.r.fleet.users {
		u.mu.Lock()
		name := u.secrets[0]
		u.mu.Unlock()
		g.Go(func() error {
			v := "value-" + randomHex(32)
			var err error
			for try := range 5 {
				if try > 0 {
					select {
					case <-gctx.Done():
						return nil
					case <-time.After(time.Second):
					}
				}
				start := time.Now()
				if _, err = u.api.UpdateSecret(gctx, "me", name, client.UpdateSecretRequest{Value: &v}); err == nil {
					mu.Lock()
					took = append(took, time.Since(start))
					mu.Unlock()
					break
				}
				mu.Lock()
				retries++
				kinds[apiKind(err)]++
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			n++
			if err != nil {
				errs++
			}
			return nil
		})
	}
	_ = g.Wait()
	return n, retries, errs, kinds, took
}

// SettleResult is the distribution of agents over the replicas after the
// killed one is back.
type SettleResult struct {
	// StartSecs is how long the restarted replica took to answer.
	StartSecs float64 `json:"start_seconds"`
	// Samples are every replica's gauge every 5 s.
	Samples []SettleSample `json:"samples"`
	// Share is agents / replicas; MaxOverShare the largest replica's
	// agents over it at the end (1.0 is perfectly even).
	Share        float64 `json:"share"`
	MaxOverShare float64 `json:"max_over_share"`
	// Moved is how many sessions ended (and reconnected) meanwhile: the
	// rebalancing's cost.
	Moved int `json:"moved"`
}

// SettleSample is the gauges at one moment.
type SettleSample struct {
	Secs   float64 `json:"seconds"`
	Agents []int   `json:"agents"`
}

// restartAndSettle starts replica i again and watches the agents'
// distribution for Settle, then waits until every agent is connected.
func (fr *fleetRun) restartAndSettle(ctx context.Context, i int) (SettleResult, error) {
	r := fr.r
	var res SettleResult
	m0, err := fr.shards.callAll(opStatus)
	if err != nil {
		return res, err
	}
	t := time.Now()
	if err := fr.replicas[i].start(ctx); err != nil {
		return res, fmt.Errorf("restarting replica %d: %w", i, err)
	}
	res.StartSecs = time.Since(t).Seconds()
	back := time.Now()
	r.say(fmt.Sprintf("settle: replica %d back after %.1fs; watching the distribution for %s", i, res.StartSecs, r.cfg.Fleet.Settle))
	res.Share = float64(r.cfg.Agents) / float64(len(fr.replicas))
	for {
		s := SettleSample{Secs: time.Since(back).Seconds(), Agents: fr.agentsPerReplica(ctx)}
		res.Samples = append(res.Samples, s)
		r.say(fmt.Sprintf("settle: %.0fs: per replica %v", s.Secs, s.Agents))
		if time.Since(back) >= r.cfg.Fleet.Settle {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(min(5*time.Second, r.cfg.Fleet.Settle)):
		}
	}
	werr := fr.waitShards(ctx, "every agent to be connected after the settle", func(m merged) bool {
		return m.Connected == int64(r.cfg.Agents)
	})
	m1, err := fr.shards.callAll(opStatus)
	if err != nil {
		return res, err
	}
	res.Moved = m1.Errors["session_lost"] - m0.Errors["session_lost"]
	final := fr.agentsPerReplica(ctx)
	for _, n := range final {
		res.MaxOverShare = max(res.MaxOverShare, float64(n)/res.Share)
	}
	r.say(fmt.Sprintf("settle: at the end per replica %v (largest %.2f× its share), %d sessions moved", final, res.MaxOverShare, res.Moved))
	return res, werr
}
