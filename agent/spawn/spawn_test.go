package spawn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	canaryToken  = "canary-agent-token-7f3a"
	canarySecret = "canary-secret-value-91c2"
)

// newSpawner returns a Spawner over a fixed base env and the observed logs.
func newSpawner(t *testing.T) (*Spawner, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	sp, err := New(Config{
		Base: []string{
			"PATH=" + os.Getenv("PATH"),
			"FROMBASE=base",
			"FOO=base",
			"COURIER_AGENT_TOKEN=" + canaryToken,
			"COURIER_AGENT_TOKEN_FILE=/run/token",
			"COURIER_SESSION_TOKEN=" + canaryToken + "-cli",
		},
		Logger:    zap.New(core),
		Shell:     "/bin/sh",
		Home:      t.TempDir(),
		WaitDelay: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { assertNoCanary(t, logs) })
	return sp, logs
}

func assertNoCanary(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		if strings.Contains(line, canarySecret) || strings.Contains(line, canaryToken) {
			t.Errorf("log line leaks a canary: %s", line)
		}
	}
}

// childEnv runs `env -0` as spec's program and parses what the child saw.
func childEnv(t *testing.T, sp *Spawner, session, client map[string]string) map[string]string {
	t.Helper()
	return childEnvOf(t, sp, Spec{Session: session, Client: client})
}

// childEnvOf runs `env -0` with spec's env settings and parses what the
// child saw.
func childEnvOf(t *testing.T, sp *Spawner, spec Spec) map[string]string {
	t.Helper()
	spec.Path, spec.Args = "env", []string{"-0"}
	cmd, err := sp.Command(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(out, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestChildEnvLayers(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(
		map[string]string{"FOO": "template", "TONLY": "t", "BOTH": "template", "CLIENTVAR": "template"},
		map[string]string{"FOO": "secret", "SECRET_API": canarySecret, "BOTH": "secret"},
	)
	env := childEnv(t, sp,
		map[string]string{"SESSIONVAR": "s", "BOTH": "session"},
		map[string]string{"CLIENTVAR": "client", "SECRET_API": "client-override"},
	)
	cases := []struct {
		name, key, want string
		absent          bool
	}{
		{name: "secret beats template and base", key: "FOO", want: "secret"},
		{name: "template var set", key: "TONLY", want: "t"},
		{name: "base var kept", key: "FROMBASE", want: "base"},
		{name: "secret var set", key: "SECRET_API", want: canarySecret},
		{name: "session var set", key: "SESSIONVAR", want: "s"},
		{name: "session beats secret", key: "BOTH", want: "session"},
		{name: "client beats template", key: "CLIENTVAR", want: "client"},
		{name: "agent token absent", key: "COURIER_AGENT_TOKEN", absent: true},
		{name: "agent token file absent", key: "COURIER_AGENT_TOKEN_FILE", absent: true},
		{name: "inherited CLI session token absent", key: "COURIER_SESSION_TOKEN", absent: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := env[c.key]
			if c.absent {
				if ok {
					t.Fatalf("%s present in child env", c.key)
				}
				return
			}
			if got != c.want {
				t.Fatalf("%s = %q, want %q", c.key, got, c.want)
			}
		})
	}
}

func TestEnvMatchesChild(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, map[string]string{"SECRET_API": canarySecret})
	env, err := sp.Env(map[string]string{"X": "1"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(env, "\n")
	if !strings.Contains(joined, "SECRET_API="+canarySecret) || !strings.Contains(joined, "X=1") {
		t.Fatalf("Env lacks the secret or session var")
	}
	if strings.Contains(joined, canaryToken) {
		t.Fatalf("Env holds the agent token")
	}
}

func TestCommandWaitsForFirstUpdate(t *testing.T) {
	sp, _ := newSpawner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sp.Command(ctx, Spec{Command: "true"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Command before Update: err = %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sp.Command(context.Background(), Spec{Command: "true"})
		done <- err
	}()
	sp.Update(nil, nil)
	if err := <-done; err != nil {
		t.Fatalf("Command after Update: %v", err)
	}
}

func TestHoldBlocksCommand(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	release := sp.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sp.Command(ctx, Spec{Command: "true"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Command while held: err = %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sp.Command(context.Background(), Spec{Command: "true"})
		done <- err
	}()
	release()
	release() // idempotent
	if err := <-done; err != nil {
		t.Fatalf("Command after release: %v", err)
	}
}

func TestHoldWaitsForStartInFlight(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	entered, proceed := make(chan struct{}), make(chan struct{})
	var order []string
	startDone := make(chan struct{})
	go func() {
		defer close(startDone)
		cmd, err := sp.Start(context.Background(), Spec{Command: "true"}, func(c *exec.Cmd) error {
			close(entered)
			<-proceed
			order = append(order, "started")
			return c.Start()
		})
		if err == nil {
			_ = cmd.Wait()
		}
	}()
	<-entered
	holdDone := make(chan func())
	go func() {
		r := sp.Hold()
		order = append(order, "held")
		holdDone <- r
	}()
	// Wait until the Hold is registered and waiting on the in-flight start.
	for {
		sp.mu.Lock()
		h := sp.holds
		sp.mu.Unlock()
		if h == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(proceed)
	release := <-holdDone
	release()
	<-startDone
	if strings.Join(order, ",") != "started,held" {
		t.Fatalf("order = %v, want start before hold", order)
	}
}

func TestUpdateKeepsRunningProcessEnv(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, map[string]string{"TOKEN": "old"})
	var stdin io.WriteCloser
	var out bytes.Buffer
	cmd, err := sp.Start(context.Background(), Spec{Command: `read x; echo "$TOKEN"`}, func(c *exec.Cmd) error {
		c.Stdout = &out
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
		return c.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	sp.Update(nil, map[string]string{"TOKEN": "new"})
	_, _ = io.WriteString(stdin, "go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "old" {
		t.Fatalf("running process saw %q, want old", got)
	}
	if env := childEnv(t, sp, nil, nil); env["TOKEN"] != "new" {
		t.Fatalf("new process saw %q, want new", env["TOKEN"])
	}
}

func TestSecretsNeverInArgv(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, map[string]string{"SECRET_API": canarySecret})
	var (
		stdin  io.WriteCloser
		stdout io.ReadCloser
	)
	// The child says "ready" once the shell runs: before that, between fork
	// and exec, /proc/<pid>/environ still shows the test's own environment.
	cmd, err := sp.Start(context.Background(), Spec{Command: "echo ready; cat >/dev/null"}, func(c *exec.Cmd) error {
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
		if stdout, err = c.StdoutPipe(); err != nil {
			return err
		}
		return c.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child did not start: %q, %v", line, err)
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, canarySecret) {
			t.Fatalf("secret in cmd.Args")
		}
	}
	pid := cmd.Process.Pid
	argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if bytes.Contains(argv, []byte(canarySecret)) {
		t.Fatalf("secret in /proc/%d/cmdline", pid)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(environ, []byte("SECRET_API="+canarySecret)) {
		t.Fatalf("secret not in the child's environ: the test proves nothing")
	}
}

func TestLoginArgv0(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	cmd, err := sp.Command(context.Background(), Spec{Command: `echo "$0"`, Login: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "-sh" {
		t.Fatalf("argv0 = %q, want -sh", got)
	}
}

func TestDirDefaultsToHome(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	cmd, err := sp.Command(context.Background(), Spec{Path: "pwd"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != sp.Home() {
		t.Fatalf("dir = %q, want %q", got, sp.Home())
	}
}

func TestCancelSendsSIGTERM(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout io.ReadCloser
	cmd, err := sp.Start(ctx, Spec{Command: `trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done`}, func(c *exec.Cmd) error {
		var err error
		if stdout, err = c.StdoutPipe(); err != nil {
			return err
		}
		return c.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	rest, _ := io.ReadAll(r)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(string(rest), "term") {
		t.Fatalf("want the TERM trap to run (exit 7), got %v, output %q", err, rest)
	}
}

func TestCancelKillsAfterWaitDelay(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.cfg.WaitDelay = 100 * time.Millisecond
	sp.Update(nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout io.ReadCloser
	cmd, err := sp.Start(ctx, Spec{Command: `trap '' TERM; echo ready; while :; do sleep 0.05; done`}, func(c *exec.Cmd) error {
		var err error
		if stdout, err = c.StdoutPipe(); err != nil {
			return err
		}
		return c.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait = %v", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("want SIGKILL after WaitDelay, got %v", ws)
	}
}

func TestBadSpecAndEnv(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, map[string]string{"BAD": "x\x00" + canarySecret})
	cases := []struct {
		name string
		spec Spec
		want error
	}{
		{"nothing to run", Spec{}, ErrInvalidSpec},
		{"both command and path", Spec{Command: "true", Path: "true"}, ErrInvalidSpec},
		{"NUL in a secret value", Spec{Command: "true"}, ErrEnv},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sp.Command(context.Background(), c.spec)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), canarySecret) {
				t.Fatalf("error leaks the value: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"relative shell", Config{Shell: "sh"}, false},
		{"relative home", Config{Home: "home/coder"}, false},
		{"dotdot home", Config{Home: "../etc"}, false},
		{"negative wait delay", Config{WaitDelay: -time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if _, err := New(c.cfg); (err == nil) != c.ok {
				t.Fatalf("New = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestDefaultConfigStripsToken(t *testing.T) {
	cfg := DefaultConfig()
	found := false
	for _, p := range cfg.Env.Private {
		found = found || p == "COURIER_AGENT_TOKEN*"
	}
	if !found {
		t.Fatalf("default Private %v lacks COURIER_AGENT_TOKEN*", cfg.Env.Private)
	}
	if cfg.Shell == "" || cfg.Home == "" || cfg.WaitDelay != DefaultWaitDelay {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
}

// TestUnsetDropsOnlyTheBaseVariable: Unset removes the agent's own
// variable, never one a template, secret or session sets.
func TestUnsetDropsOnlyTheBaseVariable(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(map[string]string{"TVAR": "template"}, map[string]string{"SECRET_API": canarySecret})
	run := func(unset []string, session map[string]string) map[string]string {
		return childEnvOf(t, sp, Spec{Unset: unset, Session: session})
	}
	env := run([]string{"FROMBASE", "TVAR", "SECRET_API", "SESS"}, map[string]string{"SESS": "s"})
	if _, ok := env["FROMBASE"]; ok {
		t.Error("FROMBASE inherited from the base although unset")
	}
	if env["TVAR"] != "template" || env["SECRET_API"] != canarySecret || env["SESS"] != "s" {
		t.Errorf("Unset removed a template, secret or session variable: %v", env["TVAR"])
	}
	if env["FOO"] != "base" || env["PATH"] == "" {
		t.Error("Unset removed other base variables")
	}
	if env := run(nil, nil); env["FROMBASE"] != "base" {
		t.Error("without Unset the base variable is missing")
	}
}

// TestCommandArgv0IsTheShellsName: a command runs with argv[0] the
// shell's base name, as sshd runs it, so the shell's messages name "sh",
// not "/bin/sh".
func TestCommandArgv0IsTheShellsName(t *testing.T) {
	sp, _ := newSpawner(t)
	sp.Update(nil, nil)
	cmd, err := sp.Command(context.Background(), Spec{Command: `echo "$0"`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "sh" {
		t.Fatalf("$0 = %q (%v), want sh", out, err)
	}
}
