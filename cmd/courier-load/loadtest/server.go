package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/controlplane"
)

// Environment of the child control plane (see ServeChild).
const (
	envChild   = "COURIER_LOAD_CHILD"
	envListen  = "COURIER_LOAD_LISTEN"
	envDataDir = "COURIER_LOAD_DATA_DIR"
	envPprof   = "COURIER_LOAD_PPROF"
	// The replica scenario's: the database, this replica's address as the
	// others reach it, the file of the secret replicas share (relayed SSH),
	// and the rebalance interval.
	envPostgres      = "COURIER_LOAD_POSTGRES_URL"
	envAdvertise     = "COURIER_LOAD_ADVERTISE_URL"
	envReplicaSecret = "COURIER_LOAD_REPLICA_SECRET_FILE"
	envRebalance     = "COURIER_LOAD_REBALANCE_INTERVAL"
)

// ServeChild runs the child the load tool started (it re-executes itself)
// when this process is one, and reports whether it was: a control plane,
// or a shard of the replica scenario's agents (shard.go). The control
// plane is what `courier server` runs — controlplane.New and Run, on
// SQLite, or on PostgreSQL as one of several replicas — with the lowest
// bcrypt cost, so that creating the fleet's users does not dominate the
// setup, and optionally net/http/pprof on a second loopback address. It
// returns when SIGTERM or SIGINT ends ctx (a shard also when its stdin
// closes).
func ServeChild(ctx context.Context) (bool, error) {
	switch os.Getenv(envChild) {
	case "serve":
	case "shard":
		return true, serveShard(ctx, os.Stdin, os.Stdout, os.Stderr)
	default:
		return false, nil
	}
	cfg := controlplane.DefaultConfig()
	cfg.Listen = os.Getenv(envListen)
	cfg.DataDir = os.Getenv(envDataDir)
	cfg.PostgresURL = os.Getenv(envPostgres)
	cfg.AdvertiseURL = os.Getenv(envAdvertise)
	cfg.ReplicaSecretFile = os.Getenv(envReplicaSecret)
	if v := os.Getenv(envRebalance); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return true, fmt.Errorf("%s: %w", envRebalance, err)
		}
		cfg.RebalanceInterval = d
	}
	cfg.BcryptCost = bcrypt.MinCost
	cfg.ShutdownTimeout = 5 * time.Second
	logger, err := zap.NewProduction()
	if err != nil {
		return true, err
	}
	logger = logger.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	defer func() { _ = logger.Sync() }()
	if addr := os.Getenv(envPprof); addr != "" {
		stop, err := servePprof(addr)
		if err != nil {
			return true, err
		}
		defer stop()
	}
	srv, err := controlplane.New(cfg, logger)
	if err != nil {
		return true, err
	}
	err = srv.Run(ctx)
	return true, errors.Join(err, srv.Close())
}

// serverProc is a control plane child process.
type serverProc struct {
	exe, listen, dataDir, pprof string
	logTo                       io.Writer
	// env is added to the child's environment (the replica scenario's).
	env []string

	cmd  *exec.Cmd
	exit chan error
	// pid is the running child's (0: none), for stats, which the progress
	// reporter calls while a restart replaces cmd.
	pid atomic.Int64
}

// serverGODEBUG is the runtime setting the deployment files give the
// control plane (deploy/images/server/Dockerfile,
// deploy/courier-server.service): goroutines start with 2 KiB of stack, not
// the runtime's running average, which the agent sessions' deep reads make
// 4 KiB (see agentapi's wsConn.Write).
const serverGODEBUG = "adaptivestackstart=0"

// withServerGODEBUG returns env with serverGODEBUG added to GODEBUG, unless
// GODEBUG already says adaptivestackstart (to measure without it, run the
// tool with GODEBUG=adaptivestackstart=1).
func withServerGODEBUG(env []string) []string {
	out := make([]string, 0, len(env)+1)
	cur := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			cur = v
			continue
		}
		out = append(out, kv)
	}
	switch {
	case strings.Contains(cur, "adaptivestackstart="):
	case cur == "":
		cur = serverGODEBUG
	default:
		cur += "," + serverGODEBUG
	}
	return append(out, "GODEBUG="+cur)
}

// start runs the child and waits until /healthz answers 200.
func (p *serverProc) start(ctx context.Context) error {
	cmd := exec.Command(p.exe)
	cmd.Env = append(withServerGODEBUG(os.Environ()), envChild+"=serve", envListen+"="+p.listen, envDataDir+"="+p.dataDir)
	cmd.Env = append(cmd.Env, p.env...)
	if p.pprof != "" {
		cmd.Env = append(cmd.Env, envPprof+"="+p.pprof)
	}
	cmd.Stdout, cmd.Stderr = p.logTo, p.logTo
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	p.cmd, p.exit = cmd, make(chan error, 1)
	p.pid.Store(int64(cmd.Process.Pid))
	go func() { p.exit <- cmd.Wait() }()
	return p.waitHealthy(ctx)
}

func (p *serverProc) url() string { return "http://" + p.listen }

func (p *serverProc) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exit:
			p.exit <- err
			return fmt.Errorf("the control plane exited at start: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		resp, err := hc.Get(p.url() + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("the control plane did not become healthy within 60s")
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 15 s).
func (p *serverProc) stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.exit:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		err = <-p.exit
	}
	p.pid.Store(0)
	p.cmd = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() { // killed by our signal
		return nil
	}
	return err
}

// kill ends the child with SIGKILL, as a crash would, and waits for it.
func (p *serverProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exit
	p.pid.Store(0)
	p.cmd = nil
}

// procStats is what /proc says of the server process.
type procStats struct {
	RSSBytes int64   `json:"rss_bytes"`
	CPUSecs  float64 `json:"cpu_seconds"`
}

func (p *serverProc) stats() (procStats, error) {
	pid := p.pid.Load()
	if pid == 0 {
		return procStats{}, errors.New("no control plane process")
	}
	return readProc(int(pid))
}

// readProc reads VmRSS from /proc/PID/status and utime+stime from
// /proc/PID/stat (clock ticks of 1/100 s, as on every Linux this runs on).
func readProc(pid int) (procStats, error) {
	var ps procStats
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			ps.RSSBytes = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) > 13 {
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		ps.CPUSecs = (ut + st) / 100
	}
	return ps, nil
}

// scrapeMetrics reads the named unlabelled gauges of a Prometheus text page.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				out[n], _ = strconv.ParseFloat(strings.TrimSpace(val), 64)
			}
		}
	}
	return out, sc.Err()
}
