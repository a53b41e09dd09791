package main_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// idleSecrets is how many secrets the idle workspace has applied, as in
// the figure of issue 23: 9 env variables and 8 files of 64 B to 4 KiB.
const idleSecrets = 17

// BenchmarkIdleAgent measures what an idle agent costs its workspace: a
// real control plane and a real agent process, connected, 17 secrets
// applied and the startup script run; after the boot settles, each op is
// an idle window (COURIER_BENCH_IDLE, default 60s) over which the agent's
// CPU time (utime+stime) and wakeups (context switches of all its threads)
// are counted, and at its end its resident memory is read from /proc.
//
//	go test -run '^$' -bench IdleAgent -benchtime 1x ./cmd/courier-agent/
//
// Metrics: rss-KiB (VmRSS), anon-KiB and file-KiB (its anonymous and
// file-backed parts: heap and stacks, and the mapped binary), cpu-ms/min,
// wakeups/min, threads.
func BenchmarkIdleAgent(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	idle := time.Minute
	if v := os.Getenv("COURIER_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("COURIER_BENCH_IDLE: %v", err)
		}
		idle = d
	}
	dir := b.TempDir()
	courier, agentBin := filepath.Join(dir, "courier"), filepath.Join(dir, "courier-agent")
	for out, pkg := range map[string]string{courier: "cmd/courier", agentBin: "cmd/courier-agent"} {
		// Built as deploy/images/build.sh builds releases: static, stripped.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/courierhq/courier/"+pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, o)
		}
	}
	url := "http://127.0.0.1:" + benchPort(b)
	server := exec.Command(courier, "server", "--listen", url[len("http://"):], "--data-dir", filepath.Join(dir, "data"))
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	benchWait(b, func() bool {
		r, err := http.Get(url + "/healthz")
		return err == nil && r.Body.Close() == nil
	})
	ctx := context.Background()
	anon, _ := client.New(client.Config{URL: url})
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "dev", Email: "dev@bench.test", Password: "correct-horse"}); err != nil {
		b.Fatal(err)
	}
	token, err := anon.Login(ctx, client.LoginRequest{Username: "dev", Password: "correct-horse"})
	if err != nil {
		b.Fatal(err)
	}
	api := anon.WithToken(token)
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Env:     map[string]string{"EDITOR": "vi", "GOFLAGS": "-mod=mod"},
		Scripts: []client.Script{{Name: "hello", TimeoutSeconds: 30, Script: "echo ready > ~/.booted"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	var files []string
	for i := range idleSecrets {
		req := client.CreateSecretRequest{Name: fmt.Sprintf("secret-%02d", i), Value: strings.Repeat(strconv.Itoa(i%10), 64<<(i%7))}
		if i%2 == 0 {
			req.EnvName = fmt.Sprintf("BENCH_SECRET_%02d", i)
		} else {
			req.FilePath = fmt.Sprintf("~/.config/bench/secret-%02d", i)
			files = append(files, filepath.Join(home, ".config", "bench", fmt.Sprintf("secret-%02d", i)))
		}
		if _, err := api.CreateSecret(ctx, "me", req); err != nil {
			b.Fatal(err)
		}
	}
	agent := exec.Command(agentBin, "--url", url, "--data-dir", filepath.Join(dir, "agent"))
	agent.Env = append(os.Environ(), "HOME="+home, "SHELL=/bin/sh", "COURIER_AGENT_TOKEN="+ws.AgentToken)
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	benchWait(b, func() bool {
		for _, f := range append(files, filepath.Join(home, ".booted")) {
			if _, err := os.Stat(f); err != nil {
				return false
			}
		}
		st, err := api.AgentStatus(ctx, "dev")
		return err == nil && st.Connected && st.LastApply != nil && len(st.LastApply.Outcomes) == idleSecrets
	})
	// Past the boot: the apply, the script, the reports.
	time.Sleep(5 * time.Second)
	pid := agent.Process.Pid
	b.ResetTimer()
	var cpu, wakeups float64
	var last procSample
	for range b.N {
		s0 := readProcSample(b, pid)
		time.Sleep(idle)
		last = readProcSample(b, pid)
		cpu += last.cpuSecs - s0.cpuSecs
		wakeups += last.switches - s0.switches
	}
	b.StopTimer()
	mins := idle.Minutes() * float64(b.N)
	b.ReportMetric(float64(last.rssKiB), "rss-KiB")
	b.ReportMetric(float64(last.anonKiB), "anon-KiB")
	b.ReportMetric(float64(last.fileKiB), "file-KiB")
	b.ReportMetric(cpu*1000/mins, "cpu-ms/min")
	b.ReportMetric(wakeups/mins, "wakeups/min")
	b.ReportMetric(float64(last.threads), "threads")
	b.ReportMetric(0, "ns/op")
}

// procSample is what /proc says of a process at one moment.
type procSample struct {
	rssKiB, anonKiB, fileKiB, threads int
	cpuSecs                           float64
	// switches sums the voluntary and involuntary context switches of
	// every thread: each is a time the process was woken or preempted.
	switches float64
}

func readProcSample(b *testing.B, pid int) procSample {
	b.Helper()
	var s procSample
	kib := func(v string) int { n, _ := strconv.Atoi(strings.Fields(v)[0]); return n }
	for k, v := range procStatus(b, fmt.Sprintf("/proc/%d/status", pid)) {
		switch k {
		case "VmRSS":
			s.rssKiB = kib(v)
		case "RssAnon":
			s.anonKiB = kib(v)
		case "RssFile":
			s.fileKiB = kib(v)
		case "Threads":
			s.threads = kib(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th of the line, in clock ticks (100 a second here).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	s.cpuSecs = (ut + st) / 100
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		m := procStatus(b, t)
		v, _ := strconv.ParseFloat(strings.TrimSpace(m["voluntary_ctxt_switches"]), 64)
		n, _ := strconv.ParseFloat(strings.TrimSpace(m["nonvoluntary_ctxt_switches"]), 64)
		s.switches += v + n
	}
	return s
}

func procStatus(b *testing.B, path string) map[string]string {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
