package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/agent/conn"
)

// TestMain doubles as the control plane child: Runner re-executes the test
// binary, and ServeChild serves in it.
func TestMain(m *testing.M) {
	if child, err := ServeChild(context.Background()); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestSmallFleetAllScenarios runs every scenario with 20 agents against a
// real control plane child and checks the run is clean and complete.
func TestSmallFleetAllScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane process")
	}
	cfg := DefaultConfig()
	cfg.Agents, cfg.AgentsPerUser, cfg.Dialers = 20, 5, 10
	cfg.Scenarios = []string{ScenarioSteady, ScenarioSSH, ScenarioChurn, ScenarioRestart}
	cfg.Idle, cfg.Churn, cfg.ChurnDropsPerSec, cfg.ChurnWritesPerSec = 500*time.Millisecond, time.Second, 5, 10
	cfg.SSHSessions, cfg.SSHConcurrency = 10, 5
	var progress bytes.Buffer
	r, err := New(cfg, &progress, false)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	if sum.Failures != 0 {
		t.Errorf("%d failures: %v", sum.Failures, sum.Errors)
	}
	if sum.Agents != 20 || sum.Users != 4 {
		t.Errorf("agents %d users %d, want 20 and 4", sum.Agents, sum.Users)
	}
	// 20 first applies, 20 after the restart, one per churn drop.
	if want := 40 + sum.Churn.Drops; sum.Apply.N < want {
		t.Errorf("%d applies, want at least %d", sum.Apply.N, want)
	}
	if sum.Steady == nil || sum.Steady.RSSBytes <= 0 || sum.Steady.GoroutinesPerAgent <= 0 {
		t.Errorf("steady figures missing: %+v", sum.Steady)
	}
	if len(sum.Restarts) != 1 || sum.Restarts[0].NotReapplied != 0 || sum.Restarts[0].Reapply.N != 20 {
		t.Errorf("restart: %+v", sum.Restarts)
	}
	if sum.SSH == nil || sum.SSH.Session.N != 10 || sum.SSH.Errors != 0 {
		t.Errorf("ssh: %+v", sum.SSH)
	}
	if sum.Churn == nil || sum.Churn.Writes == 0 || sum.Churn.APIErrors != 0 || sum.Churn.NotReapplied != 0 {
		t.Errorf("churn: %+v", sum.Churn)
	}
	// No secret value reaches the progress output or the summary.
	js, _ := json.Marshal(sum)
	for name, out := range map[string]string{"progress": progress.String(), "summary": string(js)} {
		if strings.Contains(out, "value-") {
			t.Errorf("%s holds a secret value:\n%s", name, out)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no agents":        func(c *Config) { c.Agents = 0 },
		"too many agents":  func(c *Config) { c.Agents = MaxAgents + 1 },
		"unknown scenario": func(c *Config) { c.Scenarios = []string{"steady", "../etc"} },
		"remote url":       func(c *Config) { c.URL, c.AdminUser, c.AdminPassword = "http://10.0.0.1:80", "a", "b" },
		"restart on url": func(c *Config) {
			c.URL, c.AdminUser, c.AdminPassword, c.Scenarios = "http://127.0.0.1:80", "a", "b", []string{"restart"}
		},
		"url without admin": func(c *Config) { c.URL, c.Scenarios = "http://localhost:80", []string{"steady"} },
		"unbounded idle":    func(c *Config) { c.Idle = time.Hour },
		"negative down":     func(c *Config) { c.Down = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestDialKind(t *testing.T) {
	for want, err := range map[string]error{
		"dial_refused":        fmt.Errorf("connecting: %w", syscall.ECONNREFUSED),
		"dial_503":            &conn.UnavailableError{RetryAfter: time.Second},
		"dial_token_rejected": fmt.Errorf("%w: no", conn.ErrTokenRejected),
		"dial_other":          errors.New("something else"),
		"dial_http_502":       fmt.Errorf("dial: %w", &conn.StatusError{Code: 502, Err: errors.New("bad status")}),
	} {
		if got := dialKind(err); got != want {
			t.Errorf("dialKind(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestDistAndSpread(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*30*time.Millisecond)
	}
	d := distOf(ds)
	if d.N != 100 || d.P50 != 1530 || d.P99 != 3000 || d.Max != 3000 {
		t.Errorf("dist = %+v", d)
	}
	sp := spreadOf(ds)
	if len(sp.PerSecond) != 4 || sp.PerSecond[0] != 33 || sp.PerSecond[3] != 1 {
		t.Errorf("spread = %v", sp.PerSecond)
	}
}
