package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/courierhq/courier/client"
)

// serverSample is the control plane's state at one moment.
type serverSample struct {
	proc       procStats
	goroutines float64
	heapInuse  float64
	stackInuse float64
	agents     int // courier_agents_connected (replica scenario)
	at         time.Time
}

// sample reads the server after a forced GC (through pprof, when the tool
// started the server) so heap figures are live memory, not garbage.
func (r *Runner) sample(ctx context.Context) (serverSample, error) {
	s := serverSample{at: time.Now()}
	// RSS first, as the process holds it: the forced GC below goes through
	// pprof's heap endpoint, whose profile of a large fleet allocates
	// megabytes that would still be resident when /proc is read after it.
	if r.srv != nil {
		var err error
		if s.proc, err = r.srv.stats(); err != nil {
			return s, err
		}
	}
	if r.pprof != "" {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.pprof+"/debug/pprof/heap?gc=1", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}
	m, err := scrapeMetrics(ctx, r.url, "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes")
	if err != nil {
		return s, fmt.Errorf("reading /metrics: %w", err)
	}
	s.goroutines, s.heapInuse, s.stackInuse = m["go_goroutines"], m["go_memstats_heap_inuse_bytes"], m["go_memstats_stack_inuse_bytes"]
	return s, nil
}

func (r *Runner) baseline(ctx context.Context) (serverSample, error) { return r.sample(ctx) }

// SteadyResult is the idle fleet's cost on the control plane.
type SteadyResult struct {
	IdleSecs float64 `json:"idle_seconds"`
	// RSSBaseBytes is the server's RSS after setup, before any agent.
	RSSBaseBytes int64 `json:"rss_base_bytes"`
	RSSBytes     int64 `json:"rss_bytes"`
	// RSSPerAgentKiB is (RSS − base) / agents.
	RSSPerAgentKiB       float64 `json:"rss_per_agent_kib"`
	HeapPerAgentKiB      float64 `json:"heap_inuse_per_agent_kib"`
	StackPerAgentKiB     float64 `json:"stack_inuse_per_agent_kib"`
	GoroutinesPerAgent   float64 `json:"goroutines_per_agent"`
	CPUPerAgentMsPerMin  float64 `json:"cpu_ms_per_agent_per_minute"`
	ServerCPUPercentIdle float64 `json:"server_cpu_percent_idle"`
}

// steady holds the fleet idle for Idle and measures the server.
func (r *Runner) steady(ctx context.Context, base serverSample) (SteadyResult, error) {
	r.say(fmt.Sprintf("steady: holding %d agents idle for %s", len(r.fleet.agents), r.cfg.Idle))
	s0, err := r.sample(ctx)
	if err != nil {
		return SteadyResult{}, err
	}
	select {
	case <-ctx.Done():
		return SteadyResult{}, ctx.Err()
	case <-time.After(r.cfg.Idle):
	}
	s1, err := r.sample(ctx)
	if err != nil {
		return SteadyResult{}, err
	}
	n := float64(len(r.fleet.agents))
	secs := s1.at.Sub(s0.at).Seconds()
	cpu := s1.proc.CPUSecs - s0.proc.CPUSecs
	res := SteadyResult{IdleSecs: secs, RSSBaseBytes: base.proc.RSSBytes, RSSBytes: s1.proc.RSSBytes,
		RSSPerAgentKiB:       float64(s1.proc.RSSBytes-base.proc.RSSBytes) / n / 1024,
		HeapPerAgentKiB:      (s1.heapInuse - base.heapInuse) / n / 1024,
		StackPerAgentKiB:     (s1.stackInuse - base.stackInuse) / n / 1024,
		GoroutinesPerAgent:   (s1.goroutines - base.goroutines) / n,
		CPUPerAgentMsPerMin:  cpu * 1000 / n / (secs / 60),
		ServerCPUPercentIdle: cpu / secs * 100}
	r.say(fmt.Sprintf("steady: RSS %.1f KiB/agent, heap %.1f KiB/agent, stacks %.1f KiB/agent, %.2f goroutines/agent, server CPU %.1f%% idle",
		res.RSSPerAgentKiB, res.HeapPerAgentKiB, res.StackPerAgentKiB, res.GoroutinesPerAgent, res.ServerCPUPercentIdle))
	return res, nil
}

// RestartResult is one control-plane restart under the fleet.
type RestartResult struct {
	DownSecs float64 `json:"down_seconds"`
	// StartSecs is how long the new process took to answer /healthz.
	StartSecs float64 `json:"start_seconds"`
	// AllReappliedSecs is from /healthz answering until the last agent
	// re-applied.
	AllReappliedSecs float64 `json:"all_reapplied_seconds"`
	// Reapply is each agent's re-apply, from /healthz answering.
	Reapply      Dist   `json:"reapply"`
	Spread       Spread `json:"spread"`
	NotReapplied int    `json:"not_reapplied"`
	// ServerCPUSecs is the new process's CPU time until the last re-apply;
	// ToolCPUSecs the load tool's own over the same time (the simulated
	// agents share the machine with the server).
	ServerCPUSecs float64 `json:"server_cpu_seconds"`
	ToolCPUSecs   float64 `json:"tool_cpu_seconds"`
}

// restart stops the control plane (SIGTERM), keeps it down for Down,
// starts it again on the same address and data, and waits until every
// agent has applied again.
func (r *Runner) restart(ctx context.Context) (RestartResult, error) {
	res := RestartResult{DownSecs: r.cfg.Down.Seconds()}
	before := make([]int64, len(r.fleet.agents))
	for i, a := range r.fleet.agents {
		before[i] = a.applies.Load()
	}
	r.say(fmt.Sprintf("restart: stopping the control plane under %d agents (down %s)", len(before), r.cfg.Down))
	if err := r.srv.stop(); err != nil {
		return res, fmt.Errorf("stopping the control plane: %w", err)
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(r.cfg.Down):
	}
	t := time.Now()
	if err := r.srv.start(ctx); err != nil {
		return res, err
	}
	back := time.Now()
	tool0, _ := readProc(os.Getpid())
	res.StartSecs = back.Sub(t).Seconds()
	r.say(fmt.Sprintf("restart: control plane back after %.2fs of start-up", res.StartSecs))
	reapplied := func() bool {
		for i, a := range r.fleet.agents {
			if a.applies.Load() <= before[i] {
				return false
			}
		}
		return true
	}
	werr := r.waitFor(ctx, r.cfg.Timeout, reapplied, "every agent to re-apply")
	if ps, err := r.srv.stats(); err == nil {
		res.ServerCPUSecs = ps.CPUSecs
	}
	if ps, err := readProc(os.Getpid()); err == nil {
		res.ToolCPUSecs = ps.CPUSecs - tool0.CPUSecs
	}
	var ds []time.Duration
	for i, a := range r.fleet.agents {
		if a.applies.Load() <= before[i] {
			res.NotReapplied++
			continue
		}
		ds = append(ds, time.Unix(0, a.lastApply.Load()).Sub(back))
	}
	res.Reapply, res.Spread = distOf(ds), spreadOf(ds)
	res.AllReappliedSecs = res.Reapply.Max / 1000
	r.say(fmt.Sprintf("restart: %d re-applied, p50 %.0f ms, p99 %.0f ms, last %.2fs after the control plane was back (CPU: server %.1fs, tool %.1fs); per second %v",
		len(ds), res.Reapply.P50, res.Reapply.P99, res.AllReappliedSecs, res.ServerCPUSecs, res.ToolCPUSecs, res.Spread.PerSecond))
	return res, werr
}

// ChurnResult is secrets changing while agents reconnect.
type ChurnResult struct {
	Secs      float64        `json:"seconds"`
	Drops     int            `json:"drops"`
	Writes    int            `json:"writes"`
	API       Dist           `json:"api"`
	APIErrors int            `json:"api_errors"`
	APIKinds  map[string]int `json:"api_error_kinds,omitempty"`
	// Reconnect is from a drop to that agent's next completed apply.
	Reconnect    Dist `json:"reconnect"`
	NotReapplied int  `json:"not_reapplied"`
}

// churn drops agents at ChurnDropsPerSec and creates or updates secrets at
// ChurnWritesPerSec for Churn, then waits for every dropped agent to have
// applied again.
func (r *Runner) churn(ctx context.Context) (ChurnResult, error) {
	cfg := r.cfg
	drops := cfg.ChurnDropsPerSec
	if drops == 0 {
		drops = max(1, len(r.fleet.agents)/20)
	}
	r.say(fmt.Sprintf("churn: %s of %d drops/s and %d secret writes/s", cfg.Churn, drops, cfg.ChurnWritesPerSec))
	res := ChurnResult{Secs: cfg.Churn.Seconds(), APIKinds: map[string]int{}}
	api := &recorder{}
	type dropped struct {
		a      *simAgent
		at     time.Time
		before int64
	}
	var (
		mu      sync.Mutex
		pending []dropped
	)
	cctx, cancel := context.WithTimeout(ctx, cfg.Churn)
	defer cancel()
	g, gctx := errgroup.WithContext(cctx)
	g.Go(func() error { // drops, in ticks of 100 ms
		acc := 0.0
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			for acc += float64(drops) / 10; acc >= 1; acc-- {
				a := r.fleet.agents[rand.IntN(len(r.fleet.agents))]
				n := a.applies.Load()
				if a.drop() {
					mu.Lock()
					pending = append(pending, dropped{a, time.Now(), n})
					res.Drops++
					mu.Unlock()
				}
			}
		}
	})
	if cfg.ChurnWritesPerSec > 0 {
		every := time.Second / time.Duration(cfg.ChurnWritesPerSec)
		g.Go(func() error {
			var wg sync.WaitGroup
			defer wg.Wait()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-time.After(every):
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					u := r.fleet.users[rand.IntN(len(r.fleet.users))]
					t := time.Now()
					err := r.writeSecret(ctx, u)
					mu.Lock()
					defer mu.Unlock()
					res.Writes++
					if err != nil {
						res.APIErrors++
						res.APIKinds[apiKind(err)]++
						return
					}
					api.add(time.Since(t))
				}()
			}
		})
	}
	_ = g.Wait()
	mu.Lock()
	defer mu.Unlock()
	werr := r.waitFor(ctx, cfg.Timeout, func() bool {
		for _, d := range pending {
			if d.a.applies.Load() <= d.before {
				return false
			}
		}
		return true
	}, "every dropped agent to re-apply")
	var ds []time.Duration
	for _, d := range pending {
		// lastApply is the re-apply unless the agent was dropped again.
		if d.a.applies.Load() <= d.before {
			res.NotReapplied++
			continue
		}
		ds = append(ds, time.Unix(0, d.a.lastApply.Load()).Sub(d.at))
	}
	res.API, res.Reconnect = api.dist(), distOf(ds)
	r.say(fmt.Sprintf("churn: %d drops, reconnect+apply p50 %.0f ms p99 %.0f ms; %d writes, API p99 %.1f ms, %d API errors",
		res.Drops, res.Reconnect.P50, res.Reconnect.P99, res.Writes, res.API.P99, res.APIErrors))
	return res, werr
}

// writeSecret creates a secret for u while it has few, else updates one.
func (r *Runner) writeSecret(ctx context.Context, u *simUser) error {
	u.mu.Lock()
	n := len(u.secrets)
	var name string
	if n > 0 {
		name = u.secrets[rand.IntN(n)]
	}
	u.mu.Unlock()
	if n < r.cfg.SecretsPerUser+5 {
		return u.createSecret(ctx, n)
	}
	v := "value-" + randomHex(32)
	_, err := u.api.UpdateSecret(ctx, "me", name, client.UpdateSecretRequest{Value: &v})
	return err
}

func apiKind(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("http_%d", e.StatusCode)
	}
	return "transport"
}
