// Package loadtest simulates a fleet of Courier agents against one control
// plane, or against replicas on PostgreSQL behind haproxy, and measures
// it: connect, fetch and apply latencies, errors by kind, the control
// plane's memory and CPU per connected agent, and its behaviour through a
// restart, under secret churn, under SSH fan-out, and when a replica is
// killed. Every simulated agent speaks the real protocol with the
// agent/conn client and applies with inject and filewriter (on an
// in-memory filesystem).
//
// It is the engine of cmd/courier-load. It talks to loopback addresses only
// and is bounded in agents and time.
package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrConfig is wrapped by Config.Validate failures.
var ErrConfig = errors.New("invalid load config")

// Scenario names.
const (
	ScenarioSteady  = "steady"
	ScenarioRestart = "restart"
	ScenarioChurn   = "churn"
	ScenarioSSH     = "ssh"
)

// MaxAgents bounds Config.Agents: the open-file limit of this kind of
// machine (20,000 per process) less room for the tool's own files.
const MaxAgents = 19000

// Config is one load run.
type Config struct {
	// Agents is how many agents to simulate. Default 100, at most MaxAgents.
	Agents int
	// AgentsPerUser is how many workspaces each simulated user owns; a
	// user's secrets go to all of them. Default 50.
	AgentsPerUser int
	// SecretsPerUser is how many secrets each user has at the start (files
	// and env variables alternately). Default 4.
	SecretsPerUser int
	// Scenarios run in the order given, after every agent has connected and
	// applied once. Default steady, restart.
	Scenarios []string
	// Dialers bounds how many agents connect at once at the start.
	// Default 50.
	Dialers int
	// SetupWorkers bounds concurrent API calls during setup. Default 16.
	SetupWorkers int
	// Idle is how long the steady scenario holds the fleet idle before it
	// measures. Default 10s.
	Idle time.Duration
	// Down is how long the control plane stays stopped in the restart
	// scenario. Default 0: started again at once.
	Down time.Duration
	// Churn is how long the churn scenario runs. Default 10s.
	Churn time.Duration
	// ChurnDropsPerSec is how many agents per second the churn scenario
	// disconnects. Default Agents/20, at least 1.
	ChurnDropsPerSec int
	// ChurnWritesPerSec is how many secret creates or updates per second
	// the churn scenario makes through the API. Default 20.
	ChurnWritesPerSec int
	// SSHSessions is how many SSH sessions the ssh scenario runs in all,
	// SSHConcurrency at once. Defaults 200 and 50.
	SSHSessions, SSHConcurrency int
	// Timeout bounds each phase (first connect, re-apply after a restart).
	// Default 2m.
	Timeout time.Duration
	// URL targets a running control plane (loopback only) instead of
	// starting one; AdminUser and AdminPassword log in there. The restart
	// scenario needs a control plane the tool started.
	URL, AdminUser, AdminPassword string
	// Exe is the program re-executed as the control plane child (see
	// ServeChild). Default the running executable.
	Exe string
	// Fleet, when Fleet.Replicas is not 0, runs the replica scenario
	// instead of Scenarios (see fleet_scenario.go). Default off.
	Fleet FleetConfig
}

// FleetConfig is the replica scenario: its own PostgreSQL, Replicas
// control planes on it, Balancers haproxy instances each in front of all
// of them, and the agents sharded over processes of at most ShardAgents.
type FleetConfig struct {
	// Replicas is how many control planes share the database: 0 (off) or
	// 2..MaxReplicas. Default 0.
	Replicas int
	// Balancers is how many haproxy instances the agents are split over.
	// Default 1.
	Balancers int
	// ShardAgents bounds the agents one process simulates. Default 10,000.
	ShardAgents int
	// Settle is how long the distribution of agents over the replicas is
	// watched after the killed replica is back. Default 60s.
	Settle time.Duration
	// RebalanceInterval is passed to every replica (see
	// controlplane.Config.RebalanceInterval). Default 0: the replica's.
	RebalanceInterval time.Duration
	// StallBalancer, when positive, freezes the first balancer (SIGSTOP)
	// for this long once the fleet is steady, then resumes it (SIGCONT)
	// and watches its agents for StallWatch: a balancer starved of CPU or
	// paused by its host, as on a saturated machine. Default 0: off.
	StallBalancer time.Duration
	// ChildrenLog is where the replicas', balancers' and shards' output
	// goes. Default "": a file in the run's temporary directory, removed
	// with it (its last lines are shown if the run fails).
	ChildrenLog string
}

// Bounds of the replica scenario, from the 20,000 descriptors a process
// may hold here: a balancer holds two per agent, a replica one per agent
// (and must take a killed one's share).
const (
	MaxReplicas        = 5
	MaxBalancers       = 8
	MaxFleetAgents     = 100000
	maxAgentsPerLB     = 9000
	maxAgentsPerServer = 18000
)

// DefaultConfig returns a Config with every default filled.
func DefaultConfig() Config {
	return Config{Agents: 100, AgentsPerUser: 50, SecretsPerUser: 4,
		Scenarios: []string{ScenarioSteady, ScenarioRestart}, Dialers: 50, SetupWorkers: 16,
		Idle: 10 * time.Second, Churn: 10 * time.Second, ChurnWritesPerSec: 20,
		SSHSessions: 200, SSHConcurrency: 50, Timeout: 2 * time.Minute,
		Fleet: FleetConfig{Balancers: 1, ShardAgents: 10000, Settle: time.Minute}}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	switch {
	case c.Fleet.Replicas != 0:
		return c.Fleet.validate(c)
	case c.Agents < 1 || c.Agents > MaxAgents:
		return bad("agents must be 1..%d, got %d", MaxAgents, c.Agents)
	case c.AgentsPerUser < 1:
		return bad("agents per user must be at least 1")
	case c.SecretsPerUser < 0 || c.SecretsPerUser > 40:
		return bad("secrets per user must be 0..40 (the cap is 50 and churn adds some)")
	case c.Dialers < 1 || c.SetupWorkers < 1:
		return bad("dialers and setup workers must be at least 1")
	case c.Idle < 0 || c.Down < 0 || c.Churn < 0 || c.Timeout <= 0:
		return bad("durations must not be negative, and the timeout must be positive")
	case c.Idle > 10*time.Minute || c.Down > 10*time.Minute || c.Churn > 10*time.Minute || c.Timeout > 30*time.Minute:
		return bad("durations are bounded: idle, down and churn 10m, timeout 30m")
	case c.SSHSessions < 0 || c.SSHConcurrency < 1 || c.ChurnWritesPerSec < 0 || c.ChurnDropsPerSec < 0:
		return bad("ssh sessions, ssh concurrency and churn rates must be positive")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains([]string{ScenarioSteady, ScenarioRestart, ScenarioChurn, ScenarioSSH}, s) {
			return bad("unknown scenario %q (steady, restart, churn, ssh)", s)
		}
		if s == ScenarioRestart && c.URL != "" {
			return bad("the restart scenario needs a control plane the tool starts (no --url)")
		}
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" {
			return bad("url must be http:// or https://")
		}
		if !isLoopback(u.Hostname()) {
			return bad("url must be a loopback address (127.0.0.0/8, ::1, localhost), got %q", u.Hostname())
		}
		if c.AdminUser == "" || c.AdminPassword == "" {
			return bad("url needs an admin user and password")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks the replica scenario's part of c (and the common fields
// it uses).
func (f FleetConfig) validate(c Config) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case f.Replicas < 2 || f.Replicas > MaxReplicas:
		return bad("replicas must be 0 (off) or 2..%d, got %d", MaxReplicas, f.Replicas)
	case f.Balancers < 1 || f.Balancers > MaxBalancers:
		return bad("balancers must be 1..%d, got %d", MaxBalancers, f.Balancers)
	case f.ShardAgents < 1 || f.ShardAgents > MaxAgents:
		return bad("agents per shard must be 1..%d, got %d", MaxAgents, f.ShardAgents)
	case c.Agents < 1 || c.Agents > MaxFleetAgents:
		return bad("agents must be 1..%d with replicas, got %d", MaxFleetAgents, c.Agents)
	case (c.Agents+f.Balancers-1)/f.Balancers > maxAgentsPerLB:
		return bad("%d agents over %d balancers is more than %d a balancer (two descriptors each); add balancers",
			c.Agents, f.Balancers, maxAgentsPerLB)
	case (c.Agents+f.Replicas-2)/(f.Replicas-1) > maxAgentsPerServer:
		return bad("%d agents over %d replicas, one killed, is more than %d a replica; add replicas",
			c.Agents, f.Replicas, maxAgentsPerServer)
	case c.URL != "":
		return bad("the replica scenario starts its own control planes (no --url)")
	case f.Settle < 0 || f.Settle > 30*time.Minute || f.RebalanceInterval < 0:
		return bad("settle must be 0..30m and the rebalance interval not negative")
	case f.StallBalancer < 0 || f.StallBalancer > 5*time.Minute:
		return bad("a balancer's stall must be 0 (none) to 5m, got %s", f.StallBalancer)
	case c.AgentsPerUser < 1 || c.SecretsPerUser < 1 || c.SecretsPerUser > 40:
		return bad("agents per user must be at least 1, secrets per user 1..40 (one is changed during the outage)")
	case c.Dialers < 1 || c.SetupWorkers < 1 || c.Timeout <= 0 || c.Timeout > 30*time.Minute || c.Idle < 0 || c.Idle > 10*time.Minute:
		return bad("dialers and setup workers at least 1, timeout 0..30m, idle 0..10m")
	case c.SSHSessions < 0 || c.SSHConcurrency < 1:
		return bad("ssh sessions must not be negative, ssh concurrency at least 1")
	}
	return nil
}
