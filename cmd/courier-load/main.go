// Command courier-load simulates a fleet of Courier agents against one
// control plane, or several replicas behind haproxy (--replicas), and
// prints what it measured as JSON (see package
// cmd/courier-load/loadtest and BENCHMARKS.md). It only wires flags to the engine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/courierhq/courier/cmd/courier-load/loadtest"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "courier-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	// The control plane the tool starts is this program, re-executed.
	if child, err := loadtest.ServeChild(ctx); child {
		return err
	}
	cfg := loadtest.DefaultConfig()
	fs := flag.NewFlagSet("courier-load", flag.ContinueOnError)
	fs.IntVar(&cfg.Agents, "agents", cfg.Agents, "agents to simulate (at most 19000 on one server, 100000 with --replicas)")
	fs.IntVar(&cfg.AgentsPerUser, "agents-per-user", cfg.AgentsPerUser, "workspaces owned by each simulated user")
	fs.IntVar(&cfg.SecretsPerUser, "secrets-per-user", cfg.SecretsPerUser, "secrets each user starts with")
	scenarios := fs.String("scenarios", strings.Join(cfg.Scenarios, ","), "comma-separated, in order: steady, restart, churn, ssh")
	fs.IntVar(&cfg.Dialers, "dialers", cfg.Dialers, "agents connecting at once at the start")
	fs.DurationVar(&cfg.Idle, "idle", cfg.Idle, "steady: how long the fleet stays idle before measuring")
	fs.DurationVar(&cfg.Down, "down", cfg.Down, "restart: how long the control plane stays down")
	fs.DurationVar(&cfg.Churn, "churn", cfg.Churn, "churn: how long it runs")
	fs.IntVar(&cfg.ChurnDropsPerSec, "churn-drops", cfg.ChurnDropsPerSec, "churn: agents disconnected per second (0: agents/20)")
	fs.IntVar(&cfg.ChurnWritesPerSec, "churn-writes", cfg.ChurnWritesPerSec, "churn: secret creates/updates per second")
	fs.IntVar(&cfg.SSHSessions, "ssh-sessions", cfg.SSHSessions, "ssh: sessions in all")
	fs.IntVar(&cfg.SSHConcurrency, "ssh-concurrency", cfg.SSHConcurrency, "ssh: sessions at once")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound of each waiting phase")
	fs.StringVar(&cfg.URL, "url", "", "target a running control plane on loopback instead of starting one")
	fs.StringVar(&cfg.AdminUser, "admin-user", "", "with --url: an admin's username")
	adminPassFile := fs.String("admin-password-file", "", "with --url: file holding the admin's password")
	fs.IntVar(&cfg.Fleet.Replicas, "replicas", 0, "run the replica scenario with this many control planes on their own PostgreSQL (0: off)")
	fs.IntVar(&cfg.Fleet.Balancers, "balancers", cfg.Fleet.Balancers, "replicas: haproxy instances, each in front of every replica")
	fs.IntVar(&cfg.Fleet.ShardAgents, "shard-agents", cfg.Fleet.ShardAgents, "replicas: agents per shard process")
	fs.DurationVar(&cfg.Fleet.Settle, "settle", cfg.Fleet.Settle, "replicas: how long to watch the distribution after the killed replica is back")
	fs.DurationVar(&cfg.Fleet.RebalanceInterval, "rebalance-interval", 0, "replicas: the replicas' --rebalance-interval (0: their default)")
	fs.DurationVar(&cfg.Fleet.StallBalancer, "stall-balancer", 0, "replicas: freeze the first balancer (SIGSTOP) this long once the fleet is steady, then count the sessions lost (0: off)")
	fs.StringVar(&cfg.Fleet.ChildrenLog, "children-log", "", "replicas: write the replicas', balancers' and load shards' output to this file (default: a temporary file, removed at the end)")
	out := fs.String("o", "", "also write the JSON summary to this file")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the simulated agents, not the control plane) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg.Scenarios = nil
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	if *adminPassFile != "" {
		b, err := os.ReadFile(*adminPassFile)
		if err != nil {
			return err
		}
		cfg.AdminPassword = strings.TrimRight(string(b), "\r\n")
	}
	r, err := loadtest.New(cfg, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		// Where the harness's own CPU goes: on one machine it competes with
		// the control plane it measures.
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	sum, runErr := r.Run(ctx)
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if runErr == nil && sum.Failures > 0 {
		runErr = fmt.Errorf("%d failures (see \"errors\")", sum.Failures)
	}
	return runErr
}
