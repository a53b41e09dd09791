package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// serverProc is a `courier server` process that can be killed with SIGKILL
// and started again on the same address and data dir.
type serverProc struct {
	t       *testing.T
	bin     string
	addr    string
	dataDir string
	extra   []string
	log     *logBuf
	cmd     *exec.Cmd
	done    chan struct{}
}

func newServerProc(t *testing.T, courier string, extra ...string) *serverProc {
	t.Helper()
	s := &serverProc{t: t, bin: courier, addr: freePort(t), dataDir: filepath.Join(t.TempDir(), "data"), extra: extra, log: &logBuf{}}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *serverProc) url() string { return "http://" + s.addr }

// start runs the server and waits until /healthz answers.
func (s *serverProc) start() {
	s.t.Helper()
	args := append([]string{"server", "--listen", s.addr, "--data-dir", s.dataDir, "--log-level", "debug"}, s.extra...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { _ = cmd.Wait(); close(done) }()
	waitUntil(s.t, "the control plane", func() bool {
		select {
		case <-done:
			s.t.Fatalf("courier server exited; log:\n%s", s.log.String())
		default:
		}
		r, err := http.Get(s.url() + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *serverProc) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// TestAgentRecoversFromControlPlaneKill: a real agent process and a real
// control plane process. Each round changes the secret (acknowledged), kills
// the control plane with SIGKILL and starts it again on the same address
// and data dir; the agent notices, reconnects by itself and writes the
// acknowledged value. A reader polls the file all along and only ever sees
// a whole value.
func TestAgentRecoversFromControlPlaneKill(t *testing.T) {
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	srv := newServerProc(t, courier)

	api, _ := firstUser(t, srv.url(), "dev", "dev@kill.test", "correct-horse")
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Scripts: []client.Script{{Name: "count", Script: "echo run >> ~/runs"}}}})
	if err != nil {
		t.Fatal(err)
	}
	value := func(i int) string { return fmt.Sprintf("kill-canary-%d-%s", i, strings.Repeat("x", 8<<10)) }
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "k", Value: value(0), FilePath: "~/.config/k"}); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(ws.AgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", srv.url(), "--token-file", tokenFile, "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--home", home, "--max-backoff", "500ms", "--keepalive", "500ms")
	agent.Env = append(os.Environ(), "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { _ = agent.Wait(); close(agentDone) }()
	t.Cleanup(func() { _ = agent.Process.Kill(); <-agentDone })

	file := filepath.Join(home, ".config", "k")
	waitUntil(t, "the first apply", func() bool { return read(file) == value(0) })

	const rounds = 3
	allowed := map[string]bool{}
	for i := 0; i <= rounds; i++ {
		allowed[value(i)] = true
	}
	var (
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
		torn  []int
		reads int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(file); err == nil {
				mu.Lock()
				reads++
				if !allowed[string(b)] {
					torn = append(torn, len(b))
				}
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()

	for i := 1; i <= rounds; i++ {
		v := value(i)
		if _, err := api.UpdateSecret(ctx, "me", "k", client.UpdateSecretRequest{Value: &v}); err != nil {
			t.Fatalf("round %d update: %v", i, err)
		}
		connects := strings.Count(agentLog.String(), "connected to the control plane")
		srv.kill()
		select {
		case <-agentDone:
			t.Fatalf("the agent exited when the control plane died:\n%s", agentLog.String())
		default:
		}
		srv.start()
		waitUntil(t, fmt.Sprintf("round %d: the agent's apply after the restart", i), func() bool {
			return read(file) == v && strings.Count(agentLog.String(), "connected to the control plane") > connects
		})
	}
	close(stop)
	wg.Wait()
	if len(torn) > 0 || reads == 0 {
		t.Fatalf("%d reads, %d saw a partial file (sizes %v)", reads, len(torn), torn)
	}
	if n := strings.Count(read(filepath.Join(home, "runs")), "run"); n != 1 {
		t.Errorf("the startup script ran %d times across reconnects, want once", n)
	}
	for name, l := range map[string]string{"agent": agentLog.String(), "server": srv.log.String()} {
		if strings.Contains(l, "kill-canary-") || strings.Contains(l, ws.AgentToken) {
			t.Errorf("the %s log holds a value or the agent token", name)
		}
	}
	if t.Failed() {
		t.Log("agent log:\n" + agentLog.String())
	}
}

// TestAgentKilledMidApply kills the agent process with SIGKILL at moments
// spread over its start-up (before, during and after the apply of a 20 KiB
// file secret that changes every round). A reader polls the file
// throughout: it must only ever see one of the values whole. A last agent
// then applies the final value.
func TestAgentKilledMidApply(t *testing.T) {
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	srv := newServerProc(t, courier)
	api, _ := firstUser(t, srv.url(), "dev", "dev@kill.test", "correct-horse")
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 10
	value := func(i int) string {
		return fmt.Sprintf("agent-kill-%d-%s", i, strings.Repeat(string(rune('a'+i)), 20<<10))
	}
	allowed := map[string]bool{}
	for i := 0; i <= rounds; i++ {
		allowed[value(i)] = true
	}
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "k", Value: value(0), FilePath: "~/k"}); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(ws.AgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "agent")
	runAgent := func() (*exec.Cmd, *logBuf, chan struct{}) {
		log := &logBuf{}
		a := exec.Command(agentBin, "--url", srv.url(), "--token-file", tokenFile, "--data-dir", dataDir, "--home", home)
		a.Env = append(os.Environ(), "SHELL=/bin/sh")
		a.Stdout, a.Stderr = log, log
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = a.Wait(); close(done) }()
		return a, log, done
	}
	file := filepath.Join(home, "k")
	var (
		stop       = make(chan struct{})
		readerDone = make(chan struct{})
		torn       []int
		reads      int
	)
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(file); err == nil {
				reads++
				if !allowed[string(b)] {
					torn = append(torn, len(b))
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	applied := 0 // rounds whose agent finished the apply before its kill
	for i := 1; i <= rounds; i++ {
		v := value(i)
		if _, err := api.UpdateSecret(ctx, "me", "k", client.UpdateSecretRequest{Value: &v}); err != nil {
			t.Fatal(err)
		}
		a, _, done := runAgent()
		// Spread the kills over the start-up (0.5 to 50 ms after exec): on
		// an idle machine the apply is done a few milliseconds after exec,
		// on a loaded one tens of milliseconds.
		time.Sleep(time.Duration(i*i) * time.Millisecond / 2)
		_ = a.Process.Kill()
		<-done
		if read(file) == v {
			applied++
		}
	}
	a, log, done := runAgent()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last agent's log:\n%s", log.String())
		}
	})
	waitUntil(t, "the final apply", func() bool { return read(file) == value(rounds) })
	_ = a.Process.Kill()
	<-done
	close(stop)
	<-readerDone
	if len(torn) > 0 || reads == 0 {
		t.Fatalf("%d reads, %d saw a partial or foreign file (sizes %v)", reads, len(torn), torn)
	}
	// A killed write can leave its temporary file only between naming it
	// (just before its fsync) and the rename: then it holds a whole value,
	// is readable by its owner only, and the next agent to write into the
	// directory removes it once it is stale.
	leftovers, _ := filepath.Glob(filepath.Join(home, ".courier-tmp-*"))
	for _, l := range leftovers {
		st, err := os.Stat(l)
		if err != nil {
			continue
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("leftover temporary file %s has mode %v", filepath.Base(l), st.Mode().Perm())
		}
		if b, _ := os.ReadFile(l); !allowed[string(b)] {
			t.Errorf("leftover temporary file %s holds %d bytes that are not a whole value", filepath.Base(l), len(b))
		}
		old := time.Now().Add(-time.Hour)
		_ = os.Chtimes(l, old, old)
	}
	t.Logf("%d reads of the file; %d of %d killed agents had applied; %d temporary files left by killed writes",
		reads, applied, rounds, len(leftovers))
	if len(leftovers) > 0 {
		v := value(rounds) + "!"
		allowed[v] = true
		if _, err := api.UpdateSecret(ctx, "me", "k", client.UpdateSecretRequest{Value: &v}); err != nil {
			t.Fatal(err)
		}
		a, _, done := runAgent()
		waitUntil(t, "the sweeping agent's apply", func() bool { return read(file) == v })
		_ = a.Process.Kill()
		<-done
		if left, _ := filepath.Glob(filepath.Join(home, ".courier-tmp-*")); len(left) != 0 {
			t.Errorf("stale temporary files not removed by the next agent: %v", left)
		}
	}
	if strings.Contains(log.String(), "agent-kill-") {
		t.Error("the agent log holds a value")
	}
}
