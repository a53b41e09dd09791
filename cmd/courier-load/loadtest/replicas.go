package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// FleetResult is the replica scenario's part of the summary.
type FleetResult struct {
	Replicas  int `json:"replicas"`
	Balancers int `json:"balancers"`
	Shards    int `json:"shards"`
	// Steady is each replica after the fleet idled for Idle.
	Steady []ReplicaSteady `json:"steady"`
	// Postgres is the database over the same idle time.
	Postgres PostgresSteady `json:"postgres"`
	// ShardCPUSecsConnect is the shard processes' CPU time until every
	// agent had applied once: the simulated agents share the machine.
	ShardCPUSecsConnect float64 `json:"shard_cpu_seconds_connect"`
	// ConnectCPU is where the machine's CPU went from the shards' start
	// until every agent had applied once.
	ConnectCPU CPUShare      `json:"connect_cpu"`
	Stall      *StallResult  `json:"stall,omitempty"`
	Kill       *KillResult   `json:"kill,omitempty"`
	Settle     *SettleResult `json:"settle,omitempty"`
}

// ReplicaSteady is one replica with the fleet idle.
type ReplicaSteady struct {
	// Agents is its courier_agents_connected gauge.
	Agents       int   `json:"agents"`
	RSSBaseBytes int64 `json:"rss_base_bytes"` // after setup, before any agent
	RSSBytes     int64 `json:"rss_bytes"`
	// RSSPerAgentKiB is (RSS − base) / Agents.
	RSSPerAgentKiB float64 `json:"rss_per_agent_kib"`
	CPUPercentIdle float64 `json:"cpu_percent_idle"`
	// CPUSecsConnect is its CPU time from setup's end until every agent
	// had applied once.
	CPUSecsConnect float64 `json:"cpu_seconds_connect"`
}

// PostgresSteady is PostgreSQL under the idle fleet.
type PostgresSteady struct {
	pgStats
	CPUPercentIdle float64 `json:"cpu_percent_idle"`
	// CPUSecsConnect is its CPU time from setup's end until every agent
	// had applied once.
	CPUSecsConnect float64 `json:"cpu_seconds_connect"`
}

// fleetRun is the state of one replica scenario run.
type fleetRun struct {
	r         *Runner
	dir       string
	pg        *pgCluster
	replicas  []*serverProc
	balancers []*balancer
	shards    shards
	logf      *os.File
}

// runFleet runs the replica scenario (see FleetConfig): PostgreSQL, the
// replicas, the balancers, the setup, the shards; then steady, SSH
// fan-out, a replica killed and brought back, and the distribution
// settling.
func (r *Runner) runFleet(ctx context.Context, sum Summary) (_ Summary, err error) {
	cfg := r.cfg
	fr := &fleetRun{r: r}
	res := &FleetResult{Replicas: cfg.Fleet.Replicas, Balancers: cfg.Fleet.Balancers}
	sum.Fleet = res
	if fr.dir, err = os.MkdirTemp("", "courier-load-fleet-"); err != nil {
		return sum, err
	}
	defer os.RemoveAll(fr.dir)
	logPath := cfg.Fleet.ChildrenLog
	if logPath == "" {
		logPath = filepath.Join(fr.dir, "children.log")
	}
	if fr.logf, err = os.Create(logPath); err != nil {
		return sum, err
	}
	defer fr.logf.Close()
	defer func() {
		if err != nil {
			r.say("the children's log follows (last 40 lines)")
			r.say(tailFile(fr.logf.Name(), 40))
		}
		err = errors.Join(err, fr.stop())
	}()
	if err := fr.start(ctx); err != nil {
		return sum, err
	}

	t := time.Now()
	r.fleet, err = setup(ctx, cfg, fr.balancers[0].url(), r.say)
	if err != nil {
		return sum, fmt.Errorf("setup: %w", err)
	}
	sum.Users = len(r.fleet.users)
	sum.SetupSecs = time.Since(t).Seconds()
	r.say(fmt.Sprintf("setup done in %.1fs: %d users, %d workspaces", sum.SetupSecs, sum.Users, cfg.Agents))
	defer r.fleet.transport.CloseIdleConnections()

	base := make([]serverSample, len(fr.replicas))
	for i, p := range fr.replicas {
		if base[i], err = sampleReplica(ctx, p); err != nil {
			return sum, err
		}
	}
	pg0, err := fr.pg.stats(ctx)
	if err != nil {
		return sum, err
	}

	var urls []string
	for _, b := range fr.balancers {
		urls = append(urls, b.url())
	}
	all := make([]shardAgent, len(r.fleet.agents))
	for i, a := range r.fleet.agents {
		all[i] = shardAgent{Workspace: a.workspace, Token: a.token}
	}
	parts := splitAgents(all, cfg.Fleet.ShardAgents, urls)
	res.Shards = len(parts)
	cpu0 := fr.markCPU(ctx)
	t = time.Now()
	for _, part := range parts {
		sp, err := startShard(cfg.Exe, shardStart{Agents: part, Dialers: max(1, cfg.Dialers/len(parts))}, fr.logf)
		if err != nil {
			return sum, err
		}
		fr.shards = append(fr.shards, sp)
	}
	r.say(fmt.Sprintf("%d agents in %d shard processes, over %d balancers and %d replicas",
		cfg.Agents, len(parts), len(fr.balancers), len(fr.replicas)))
	if err := fr.waitShards(ctx, "every agent to apply once", func(m merged) bool {
		return m.FirstApplied == int64(cfg.Agents)
	}); err != nil {
		return fr.finish(sum, res), err
	}
	sum.ConnectAll = time.Since(t).Seconds()
	res.ConnectCPU = fr.markCPU(ctx).since(cpu0)
	r.say(fmt.Sprintf("all %d agents applied in %.1fs", cfg.Agents, sum.ConnectAll))
	r.say(res.ConnectCPU.say("connect"))

	if err := fr.steady(ctx, res, base, pg0); err != nil {
		return fr.finish(sum, res), err
	}
	if cfg.Fleet.StallBalancer > 0 {
		stall, err := fr.stallBalancer(ctx, cfg.Fleet.StallBalancer)
		res.Stall = &stall
		if err != nil {
			return fr.finish(sum, res), err
		}
	}
	if cfg.SSHSessions > 0 {
		// While the fleet is steady: during a rebalance a session to an
		// agent that is being moved fails (it is between replicas for
		// about a second), as at any reconnect.
		ssh, err := r.sshFanOut(ctx)
		sum.SSH = &ssh
		if err != nil {
			return fr.finish(sum, res), err
		}
	}
	kill, err := fr.killOne(ctx)
	res.Kill = &kill
	if err != nil {
		return fr.finish(sum, res), err
	}
	settle, err := fr.restartAndSettle(ctx, kill.Replica)
	res.Settle = &settle
	if err != nil {
		return fr.finish(sum, res), err
	}
	return fr.finish(sum, res), nil
}

// start starts PostgreSQL, the replicas (sharing a relay secret, each
// advertising its address) and the balancers.
func (fr *fleetRun) start(ctx context.Context) error {
	cfg := fr.r.cfg
	port, err := freePort()
	if err != nil {
		return err
	}
	if fr.pg, err = newPGCluster(ctx, port); err != nil {
		return err
	}
	// Each replica's pool (pgx: max(4, CPUs)) and the listener, with room.
	if err := fr.pg.start(ctx, 100+cfg.Fleet.Replicas*20); err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	fr.r.say(fmt.Sprintf("PostgreSQL started (%s, fsync on) on 127.0.0.1:%d", fr.pg.bin, fr.pg.port))
	secret := filepath.Join(fr.dir, "replica-secret")
	if err := os.WriteFile(secret, []byte(randomHex(32)), 0o600); err != nil {
		return err
	}
	env := []string{envPostgres + "=" + fr.pg.url(), envReplicaSecret + "=" + secret}
	if cfg.Fleet.RebalanceInterval > 0 {
		env = append(env, envRebalance+"="+cfg.Fleet.RebalanceInterval.String())
	}
	var addrs []string
	for i := range cfg.Fleet.Replicas {
		listen, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		pprof, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		p := &serverProc{exe: cfg.Exe, listen: listen, dataDir: filepath.Join(fr.dir, fmt.Sprint("unused-", i)),
			pprof: pprof, logTo: fr.logf, env: append(env, envAdvertise+"=http://"+listen)}
		if err := p.start(ctx); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		fr.replicas = append(fr.replicas, p)
		addrs = append(addrs, listen)
	}
	perLB := (cfg.Agents + cfg.Fleet.Balancers - 1) / cfg.Fleet.Balancers
	for i := range cfg.Fleet.Balancers {
		b, err := startBalancer(ctx, fr.dir, i, perLB+1000, addrs, fr.logf)
		if err != nil {
			return err
		}
		fr.balancers = append(fr.balancers, b)
	}
	fr.r.say(fmt.Sprintf("%d replicas and %d haproxy balancers started", len(fr.replicas), len(fr.balancers)))
	return nil
}

// stop stops everything start and the run started, in reverse.
func (fr *fleetRun) stop() error {
	errs := []error{fr.shards.stop()}
	for _, b := range fr.balancers {
		errs = append(errs, b.stop())
	}
	for _, p := range fr.replicas {
		errs = append(errs, p.stop())
	}
	if fr.pg != nil {
		errs = append(errs, fr.pg.stop())
	}
	return errors.Join(errs...)
}

// finish merges the shards' samples and errors into sum, and counts the
// failures.
func (fr *fleetRun) finish(sum Summary, res *FleetResult) Summary {
	m, err := fr.shards.callAll(opFinal)
	if err != nil {
		fr.r.say("collecting the shards' results: " + err.Error())
	}
	sum.Connect, sum.Fetch, sum.Apply, sum.Errors = m.Connect, m.Fetch, m.Apply, m.Errors
	for k, n := range sum.Errors {
		if !transientKinds[k] {
			sum.Failures += n
		}
	}
	if sum.SSH != nil {
		sum.Failures += sum.SSH.Errors
	}
	if st := res.Stall; st != nil {
		sum.Failures += st.Failures
	}
	if k := res.Kill; k != nil {
		sum.Failures += k.NotReapplied + k.StaleRevision + k.UpdateErrors
	}
	return sum
}

// waitShards polls the shards every 250 ms (progress every 5 s) until
// cond holds or Timeout passes.
func (fr *fleetRun) waitShards(ctx context.Context, what string, cond func(merged) bool) error {
	deadline := time.Now().Add(fr.r.cfg.Timeout)
	lastSay := time.Now()
	for {
		m, err := fr.shards.callAll(opStatus)
		if err != nil {
			return err
		}
		if cond(m) {
			return nil
		}
		if time.Since(lastSay) > 5*time.Second {
			lastSay = time.Now()
			fr.r.say(fmt.Sprintf("connected %d/%d, applied once %d, errors %v", m.Connected, m.Agents, m.FirstApplied, m.Errors))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", fr.r.cfg.Timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(addr)
	return strconv.Atoi(p)
}

// tailFile returns the last n lines of path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if lines++; lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
