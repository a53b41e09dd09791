package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/startlogs"
	"github.com/courierhq/courier/controlplane/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	token  = "agent-test-token-0123456789abcdef"
	canary = "CANARY-agent-c0ffee"
)

// cp is an in-process control plane: SQLite store + agentapi, served on a
// fixed address that can go down and come back, and whose connections can
// be cut.
type cp struct {
	t    *testing.T
	addr string
	st   *store.SQLite
	srv  *agentapi.Server
	// log is the agent endpoint's log.
	log *syncBuf

	mu    sync.Mutex
	hs    *http.Server
	ln    net.Listener
	conns map[net.Conn]bool
	done  chan struct{}
}

func newCP(t *testing.T, scripts []proto.Script) *cp {
	t.Helper()
	return newCPTemplate(t, store.Template{Env: map[string]string{"FROM_TEMPLATE": "t"}, Scripts: scripts})
}

// newCPTemplate is newCP with the workspace's whole template given.
func newCPTemplate(t *testing.T, tmpl store.Template) *cp {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	ctx := context.Background()
	_ = st.CreateUser(ctx, store.User{ID: "u", Username: "dev", Email: "d@x", CreatedAt: time.Now()})
	if err := st.CreateWorkspace(ctx, store.Workspace{ID: "w", Name: "dev", OwnerID: "u", AgentTokenHash: sum[:],
		CreatedAt: time.Now(), Template: tmpl}); err != nil {
		t.Fatal(err)
	}
	srvLog := &syncBuf{}
	// The startup logs are stored, as the control plane does, so tests
	// can read what the agent's scripts printed from st.
	logs, err := startlogs.New(startlogs.Config{Store: st, MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agentapi.New(agentapi.Config{Store: st, Open: func(s store.Secret) (string, error) { return string(s.Value), nil },
		Logger: zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), srvLog, zap.DebugLevel)),
		Logs:   logs})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cp{t: t, addr: ln.Addr().String(), st: st, srv: srv, log: srvLog, conns: map[net.Conn]bool{}}
	_ = ln.Close() // down until up() is called
	t.Cleanup(func() { c.down(); _ = srv.Close(); _ = st.Close() })
	return c
}

func (c *cp) url() string { return "http://" + c.addr }

func (c *cp) up() {
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(proto.ConnectPath, c.srv)
	hs := &http.Server{Handler: mux, ConnState: func(nc net.Conn, s http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch s {
		case http.StateNew:
			c.conns[nc] = true
		case http.StateClosed:
			delete(c.conns, nc)
		}
	}}
	done := make(chan struct{})
	c.mu.Lock()
	c.hs, c.ln, c.done = hs, ln, done
	c.mu.Unlock()
	go func() { defer close(done); _ = hs.Serve(ln) }()
}

// cut closes every connection (hijacked websockets included) but keeps
// listening: the agent must reconnect.
func (c *cp) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for nc := range c.conns {
		_ = nc.Close()
	}
}

func (c *cp) down() {
	c.mu.Lock()
	hs, done := c.hs, c.done
	c.hs = nil
	c.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close()
	c.cut()
	<-done
}

// setSecrets replaces the owner's secrets with secs, all enabled.
func (c *cp) setSecrets(secs ...store.Secret) {
	for i := range secs {
		secs[i].Enabled = true
	}
	c.setSecretsAsIs(secs...)
}

// setSecretsAsIs is setSecrets keeping each secret's Enabled.
func (c *cp) setSecretsAsIs(secs ...store.Secret) {
	ctx := context.Background()
	old, _ := c.st.ListSecrets(ctx, "u")
	for _, o := range old {
		_ = c.st.DeleteSecret(ctx, "u", o.Name)
	}
	for i := range secs {
		secs[i].ID, secs[i].CreatedAt = secs[i].Name, time.Now()
		if secs[i].UpdatedAt.IsZero() {
			secs[i].UpdatedAt = time.Now()
		}
	}
	if err := c.st.CreateSecrets(ctx, "u", secs, nil); err != nil {
		c.t.Fatal(err)
	}
}

// syncBuf collects the agent's log.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) Sync() error                 { return nil }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startAgent(t *testing.T, c *cp) (home string, logs *syncBuf, stop func()) {
	t.Helper()
	return startAgentWith(t, c, nil)
}

// startAgentWith is startAgent with the config changed by mutate.
func startAgentWith(t *testing.T, c *cp, mutate func(*Config)) (home string, logs *syncBuf, stop func()) {
	t.Helper()
	return startAgentAt(t, c.url(), t.TempDir(), mutate)
}

// startAgentAt runs an agent against the control plane at url with home,
// its config changed by mutate (if not nil).
func startAgentAt(t *testing.T, url, home string, mutate func(*Config)) (_ string, logs *syncBuf, stop func()) {
	t.Helper()
	logs = &syncBuf{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)
	cfg := Config{URL: url, Token: token, Home: home, DataDir: filepath.Join(t.TempDir(), "data"),
		Shell: "/bin/sh", Logger: zap.New(core), Base: []string{"PATH=" + os.Getenv("PATH"), "COURIER_AGENT_TOKEN=" + token},
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, WaitingLogAfter: 50 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = a.Close()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return home, logs, stop
}

// eventually polls cond (no fixed sleeps in assertions: polling only waits
// for the system to get there).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func TestBootWithControlPlaneDownScriptsWait(t *testing.T) {
	c := newCP(t, []proto.Script{{Name: "proof", TimeoutSeconds: 10,
		Script: `cat ~/.config/tok > ~/proof; echo "env=$TOK tmpl=$FROM_TEMPLATE agent_token=${COURIER_AGENT_TOKEN:-unset}" >> ~/proof; echo run >> ~/runs`}})
	c.setSecrets(store.Secret{Name: "tok", Value: []byte(canary), EnvName: "TOK", FilePath: "~/.config/tok"})
	home, logs, stop := startAgent(t, c)

	eventually(t, "the agent to say it is waiting", func() bool {
		return strings.Contains(logs.String(), "waiting for secrets from the control plane")
	})
	if _, err := os.Stat(filepath.Join(home, "runs")); err == nil {
		t.Fatal("a startup script ran before secrets were applied")
	}
	c.up()
	eventually(t, "the startup script", func() bool {
		if strings.Contains(readFile(filepath.Join(home, "proof")), "env=") {
			return true
		}
		if strings.Contains(logs.String(), "startup script failed") {
			t.Fatalf("log: %s", logs.String())
		}
		return false
	})
	proof := readFile(filepath.Join(home, "proof"))
	if want := canary + "env=" + canary + " tmpl=t agent_token=unset\n"; proof != want {
		t.Fatalf("proof = %q, want %q: the file must exist before the script and the env hold the secret, not the agent token", proof, want)
	}
	st, _ := os.Stat(filepath.Join(home, ".config", "tok"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", st.Mode().Perm())
	}
	eventually(t, "ready", func() bool {
		ws, _ := c.st.WorkspaceByID(context.Background(), "w")
		return ws.State == proto.StateReady
	})

	// Reconnect: secrets change, scripts do not run again.
	c.setSecrets(store.Secret{Name: "tok", Value: []byte(canary + "-v2"), EnvName: "TOK2", FilePath: "~/.config/tok2"})
	c.cut()
	eventually(t, "the new file after reconnect", func() bool { return readFile(filepath.Join(home, ".config", "tok2")) == canary+"-v2" })
	if readFile(filepath.Join(home, ".config", "tok")) != canary {
		t.Error("the old file changed or vanished (R7)")
	}
	eventually(t, "the orphan report", func() bool {
		return strings.Contains(logs.String(), "file left on disk by an earlier apply") && strings.Contains(logs.String(), filepath.Join(home, ".config", "tok"))
	})
	eventually(t, "the left-behind file in the stored status", func() bool {
		st, _ := c.st.AgentStatus(context.Background(), "w")
		return st.LastApply != nil && len(st.LastApply.LeftBehind) == 1 && st.LastApply.LeftBehind[0] == filepath.Join(home, ".config", "tok")
	})
	if n := strings.Count(readFile(filepath.Join(home, "runs")), "run"); n != 1 {
		t.Errorf("startup scripts ran %d times, want once per agent process", n)
	}
	stop()
	ws, _ := c.st.WorkspaceByID(context.Background(), "w")
	if ws.State != proto.StateOff {
		t.Errorf("state after shutdown = %q, want off", ws.State)
	}
	if strings.Contains(logs.String(), canary) || strings.Contains(logs.String(), token) {
		t.Error("the agent log holds a secret value or the agent token")
	}
	if sb, err := os.ReadFile(filepath.Join(filepath.Dir(home), "data", "state.json")); err == nil && strings.Contains(string(sb), canary) {
		t.Error("the state file holds a value")
	}
}

func TestStartupScriptFailureReported(t *testing.T) {
	c := newCP(t, []proto.Script{{Name: "broken", Script: "exit 3"}})
	c.up()
	_, logs, _ := startAgent(t, c)
	eventually(t, "start_error", func() bool {
		ws, _ := c.st.WorkspaceByID(context.Background(), "w")
		return ws.State == proto.StateStartError
	})
	if !strings.Contains(logs.String(), "broken") {
		t.Error("the failing script is not named in the log")
	}
}

func TestRejectedTokenKeepsRetrying(t *testing.T) {
	c := newCP(t, nil)
	c.up()
	logs := &syncBuf{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)
	a, err := New(Config{URL: c.url(), Token: "not-the-token", Home: t.TempDir(), DataDir: t.TempDir(),
		Logger: zap.New(core), InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	// One error line, then quiet retries (debug) at the longest backoff.
	eventually(t, "two refusals", func() bool { return strings.Count(logs.String(), "still refused") >= 2 })
	if n := strings.Count(logs.String(), "refused the agent token"); n != 1 {
		t.Errorf("the refusal is logged %d times at error level, want once", n)
	}
	// The token came from the environment: the advice says it cannot be
	// re-read.
	if !strings.Contains(logs.String(), "came from COURIER_AGENT_TOKEN, which cannot be re-read") {
		t.Error("the refusal of an environment token does not say it cannot be re-read")
	}
	_ = a.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "not-the-token") {
		t.Error("the token appears in the log")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{},
		{URL: "http://x"},
		{URL: "http://x", Token: "a", TokenFile: "/f"},
		{URL: "http://x", Token: "a", Home: "rel", DataDir: "/d"},
		{URL: "http://x", Token: "a", Home: "/h", DataDir: "/d", ChangeQuiet: -time.Second},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	// A URL that can never work is refused at start (exit 1), not retried
	// as if the network were down; the refusal never shows a password.
	for _, u := range []string{"127.0.0.1:7080", " http://127.0.0.1:7080", "ftp://h", "http://", "h/x",
		"http://u:CANARY-pw-81@h", "https://h/?x=1", "https://h/#f"} {
		_, err := New(Config{URL: u, Token: "a", Home: "/h", DataDir: "/d"})
		if !errors.Is(err, ErrConfig) {
			t.Errorf("URL %q: err = %v, want ErrConfig", u, err)
		} else if strings.Contains(err.Error(), "CANARY-pw-81") {
			t.Errorf("URL %q: the error shows the password: %v", u, err)
		}
	}
	for _, u := range []string{"http://h", "https://h:8443", "https://h/courier/", "http://[::1]:7080"} {
		if _, err := New(Config{URL: u, Token: "a", Home: "/h", DataDir: "/d"}); err != nil {
			t.Errorf("URL %q refused: %v", u, err)
		}
	}
	f := filepath.Join(t.TempDir(), "tok")
	_ = os.WriteFile(f, []byte("  from-file\n"), 0o600)
	a, err := New(Config{URL: "http://x", TokenFile: f, Home: "/h", DataDir: "/d"})
	if err != nil || a.token != "from-file" {
		t.Fatalf("token file: %v", err)
	}
	_ = os.WriteFile(f, []byte("\n"), 0o600)
	if _, err := New(Config{URL: "http://x", TokenFile: f, Home: "/h", DataDir: "/d"}); err == nil {
		t.Error("empty token file accepted")
	}
}

// TestFileSecretNeverReplacesTheAgentsOwnFiles: a file secret aimed at the
// agent's token file or into its data directory fails, and the agent keeps
// its token (a secret there would lock it out and send its value as the
// token at every connect); the other secrets are applied.
func TestFileSecretNeverReplacesTheAgentsOwnFiles(t *testing.T) {
	c := newCP(t, nil)
	c.up()
	own := t.TempDir()
	tokFile, dataDir := filepath.Join(own, "token"), filepath.Join(own, "data")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.setSecrets(
		store.Secret{Name: "clobber-token", Value: []byte(canary), FilePath: tokFile},
		store.Secret{Name: "clobber-state", Value: []byte(canary), FilePath: filepath.Join(dataDir, "state.json")},
		store.Secret{Name: "fine", Value: []byte("v"), FilePath: "~/fine"},
	)
	home, logs, _ := startAgentWith(t, c, func(cfg *Config) { cfg.Token, cfg.TokenFile, cfg.DataDir = "", tokFile, dataDir })
	eventually(t, "the apply", func() bool { return readFile(filepath.Join(home, "fine")) == "v" })
	eventually(t, "both refusals in the log", func() bool {
		return strings.Count(logs.String(), "the agent keeps its own files there") >= 2
	})
	if got := readFile(tokFile); got != token+"\n" {
		t.Fatalf("the token file was replaced: %q", got)
	}
	if strings.Contains(readFile(filepath.Join(dataDir, "state.json")), canary) {
		t.Fatal("a secret was written into the agent's state")
	}
	if strings.Contains(logs.String(), canary) {
		t.Fatal("the log shows a secret value")
	}
}
