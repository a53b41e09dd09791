package loadtest

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

// TestSplitAgents: every agent lands in exactly one shard, shards hold at
// most perShard and differ by one at most, and the balancers take turns.
func TestSplitAgents(t *testing.T) {
	for _, tc := range []struct {
		agents, perShard int
		urls             []string
		wantShards       int
	}{
		{30000, 10000, []string{"a", "b", "c", "d"}, 3},
		{30001, 10000, []string{"a", "b", "c", "d"}, 4},
		{1500, 600, []string{"a", "b"}, 3},
		{1, 10000, []string{"a"}, 1},
		{7, 1, []string{"a", "b", "c"}, 7},
	} {
		t.Run(fmt.Sprint(tc.agents, "/", tc.perShard), func(t *testing.T) {
			in := make([]shardAgent, tc.agents)
			for i := range in {
				in[i] = shardAgent{Workspace: fmt.Sprint("w", i), Token: fmt.Sprint("t", i)}
			}
			shards := splitAgents(in, tc.perShard, tc.urls)
			if len(shards) != tc.wantShards {
				t.Fatalf("%d shards, want %d", len(shards), tc.wantShards)
			}
			seen := map[string]bool{}
			perURL := map[string]int{}
			lo, hi := tc.agents, 0
			for _, s := range shards {
				lo, hi = min(lo, len(s)), max(hi, len(s))
				if len(s) > tc.perShard {
					t.Fatalf("a shard of %d agents, more than %d", len(s), tc.perShard)
				}
				for _, a := range s {
					if seen[a.Workspace] || a.Token != "t"+strings.TrimPrefix(a.Workspace, "w") {
						t.Fatalf("agent %+v twice or with another's token", a)
					}
					seen[a.Workspace] = true
					perURL[a.URL]++
				}
			}
			if len(seen) != tc.agents || hi-lo > 1 {
				t.Fatalf("%d agents placed, shard sizes %d..%d", len(seen), lo, hi)
			}
			for _, u := range tc.urls {
				if want := tc.agents / len(tc.urls); perURL[u] < want || perURL[u] > want+1 {
					t.Fatalf("balancer %s has %d agents, want about %d", u, perURL[u], want)
				}
			}
		})
	}
	for name, got := range map[string][][]shardAgent{
		"no agents":    splitAgents(nil, 10, []string{"a"}),
		"no balancers": splitAgents(make([]shardAgent, 3), 10, nil),
		"zero shard":   splitAgents(make([]shardAgent, 3), 0, []string{"a"}),
	} {
		if got != nil {
			t.Errorf("%s: %v, want nil", name, got)
		}
	}
}

// TestMergeReplies: counts add up, errors merge by kind, re-apply times
// come out sorted, and the distributions are over every shard's samples
// (not an average of the shards' percentiles).
func TestMergeReplies(t *testing.T) {
	ms := func(vs ...int) []int64 {
		out := make([]int64, len(vs))
		for i, v := range vs {
			out[i] = int64(time.Duration(v) * time.Millisecond)
		}
		return out
	}
	// One shard has 99 fast applies, the other one slow one: a p99 of
	// the merged samples is the slow one's neighbour, not a mean.
	fast := make([]int, 99)
	for i := range fast {
		fast[i] = 10
	}
	m := mergeReplies([]shardReply{
		{Agents: 99, Connected: 98, FirstApplied: 99, Errors: map[string]int{"session_lost": 3, "dial_other": 1},
			Lost: 5, ReappliedAt: []int64{30, 10}, NotReapplied: 1, StaleRevision: 2, Apply: ms(fast...)},
		{Agents: 1, Connected: 1, FirstApplied: 1, Errors: map[string]int{"session_lost": 2},
			Lost: 1, ReappliedAt: []int64{20}, Apply: ms(5000)},
	})
	if m.Agents != 100 || m.Connected != 99 || m.FirstApplied != 100 || m.Lost != 6 || m.NotReapplied != 1 || m.StaleRevision != 2 {
		t.Fatalf("counts: %+v", m)
	}
	if m.Errors["session_lost"] != 5 || m.Errors["dial_other"] != 1 || len(m.Errors) != 2 {
		t.Fatalf("errors: %v", m.Errors)
	}
	if fmt.Sprint(m.ReappliedAt) != "[10 20 30]" {
		t.Fatalf("re-apply times %v, want sorted", m.ReappliedAt)
	}
	if m.Apply.N != 100 || m.Apply.P50 != 10 || m.Apply.Max != 5000 || m.Apply.P99 != 5000 {
		t.Fatalf("apply dist %+v", m.Apply)
	}
	if e := mergeReplies(nil); e.Agents != 0 || e.Apply.N != 0 || e.Errors == nil {
		t.Fatalf("no replies: %+v", e)
	}
}

// TestOutageReply: lost agents are those whose losses grew since the mark;
// a lost one re-applied when its applies grew; any agent whose seen
// revision did not grow is stale.
func TestOutageReply(t *testing.T) {
	mk := func(applies, losses, rev int64, mark agentMark) *simAgent {
		a := &simAgent{mark: mark}
		a.applies.Store(applies)
		a.losses.Store(losses)
		a.seenRevision.Store(rev)
		a.lastApply.Store(applies * 100)
		return a
	}
	m := agentMark{applies: 1, losses: 0, revision: 7}
	var rep shardReply
	outageReply([]*simAgent{
		mk(2, 1, 8, m), // lost, re-applied, saw the change
		mk(1, 1, 7, m), // lost, not yet back, stale
		mk(1, 0, 8, m), // stayed, told of the change
		mk(1, 0, 7, m), // stayed, not told yet
	}, &rep)
	if rep.Lost != 2 || rep.NotReapplied != 1 || rep.StaleRevision != 2 || fmt.Sprint(rep.ReappliedAt) != "[200]" {
		t.Fatalf("outage reply %+v", rep)
	}
}

func TestSeeRevisionKeepsNewest(t *testing.T) {
	var a simAgent
	for _, r := range []int64{3, 9, 2, -1, 9} {
		a.seeRevision(r)
	}
	if got := a.seenRevision.Load(); got != 9 {
		t.Fatalf("seen revision %d, want 9", got)
	}
}

func TestFleetConfigValidate(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.Agents, c.Fleet.Replicas, c.Fleet.Balancers = 30000, 3, 4
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("30,000 agents, 3 replicas, 4 balancers: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"one replica":           func(c *Config) { c.Fleet.Replicas = 1 },
		"too many replicas":     func(c *Config) { c.Fleet.Replicas = MaxReplicas + 1 },
		"negative replicas":     func(c *Config) { c.Fleet.Replicas = -3 },
		"no balancer":           func(c *Config) { c.Fleet.Balancers = 0 },
		"too many per balancer": func(c *Config) { c.Fleet.Balancers = 3 },
		"too many per survivor": func(c *Config) { c.Agents, c.Fleet.Replicas, c.Fleet.Balancers = 40000, 3, 8 },
		"too many agents":       func(c *Config) { c.Agents = MaxFleetAgents + 1 },
		"shard over the fd cap": func(c *Config) { c.Fleet.ShardAgents = MaxAgents + 1 },
		"with a url":            func(c *Config) { c.URL, c.AdminUser, c.AdminPassword = "http://127.0.0.1:1", "a", "b" },
		"no secret to change":   func(c *Config) { c.SecretsPerUser = 0 },
		"unbounded settle":      func(c *Config) { c.Fleet.Settle = time.Hour },
		"negative rebalance":    func(c *Config) { c.Fleet.RebalanceInterval = -time.Second },
		"no ssh concurrency":    func(c *Config) { c.SSHConcurrency = 0 },
		"unbounded idle":        func(c *Config) { c.Idle = time.Hour },
		"negative stall":        func(c *Config) { c.Fleet.StallBalancer = -time.Second },
		"unbounded stall":       func(c *Config) { c.Fleet.StallBalancer = time.Hour },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok()
			mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
}

func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig("127.0.0.1:9000", 8500, []string{"127.0.0.1:1", "127.0.0.1:2"})
	for _, want := range []string{"bind 127.0.0.1:9000", "maxconn 8500", "timeout tunnel 1h", "balance leastconn",
		"option httpchk GET /readyz", "option redispatch 1",
		"retry-on conn-failure empty-response", "http-request disable-l7-retry if !METH_GET",
		"server r0 127.0.0.1:1 check", "server r1 127.0.0.1:2 check"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestErrorsSince(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after map[string]int
		want          map[string]int
	}{
		{"none", nil, nil, nil},
		{"unchanged", map[string]int{"dial_503": 3}, map[string]int{"dial_503": 3}, nil},
		{"new kind", map[string]int{"dial_503": 3}, map[string]int{"dial_503": 3, "fetch": 2}, map[string]int{"fetch": 2}},
		{"grown", map[string]int{"dial_503": 3}, map[string]int{"dial_503": 7}, map[string]int{"dial_503": 4}},
		{"from nothing", nil, map[string]int{"apply": 1}, map[string]int{"apply": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := maps.Clone(tc.after)
			got := errorsSince(tc.before, tc.after)
			if !maps.Equal(got, tc.want) {
				t.Fatalf("errorsSince(%v, %v) = %v, want %v", tc.before, tc.after, got, tc.want)
			}
			if !maps.Equal(tc.after, after) {
				t.Fatalf("errorsSince changed its argument: %v, was %v", tc.after, after)
			}
		})
	}
}
