package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sftpTestArg {
		os.Exit(serveSFTPForTest()) // audit_sshevents_test.go
	}
	goleak.VerifyTestMain(mainWithCleanup{m})
}

// mainWithCleanup removes the courier binary built for process tests.
type mainWithCleanup struct{ m *testing.M }

func (c mainWithCleanup) Run() int {
	code := c.m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}

// canary is planted as a secret value; it must never come back.
const canary = "CANARY-7f3e9a-never-print-me"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a real control plane (SQLite store) serving on a loopback
// port, with its log captured at debug level.
type testServer struct {
	*Server
	t    *testing.T
	logs *syncBuffer
	// bodies collects every response body, to scan for canaries.
	bodiesMu sync.Mutex
	bodies   bytes.Buffer
	client   *http.Client
}

func newTestServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerDialer(t, nil, mutate...)
}

// newTestServerDialer is newTestServer with the agent dialer replaced (if
// d is not nil) before the server starts.
func newTestServerDialer(t *testing.T, d agentDialer, mutate ...func(*Config)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BcryptCost = bcrypt.MinCost
	for _, m := range mutate {
		m(&cfg)
	}
	useTestStore(t, &cfg)
	logs := &syncBuffer{}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))
	srv, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if d != nil {
		srv.api.agents = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{Server: srv, t: t, logs: logs, client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ts.client.CloseIdleConnections()
		for name, text := range map[string]string{"log": logs.String(), "response bodies": ts.allBodies()} {
			if strings.Contains(text, canary) {
				t.Errorf("canary value leaked into the %s", name)
			}
		}
	})
	return ts
}

func (ts *testServer) allBodies() string {
	ts.bodiesMu.Lock()
	defer ts.bodiesMu.Unlock()
	return ts.bodies.String()
}

// resp is a response read in full.
type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (r resp) errResp(t *testing.T) ErrorResponse {
	t.Helper()
	var e ErrorResponse
	r.json(t, &e)
	if e.Message == "" {
		t.Fatalf("error response without message: %s", r.body)
	}
	return e
}

// do sends a request with token (if any) and body (a string sent as is, or a
// value marshalled to JSON) with Content-Type application/json.
func (ts *testServer) do(method, path, token string, body any) resp {
	ts.t.Helper()
	return ts.doCT(method, path, token, "application/json", body)
}

func (ts *testServer) doCT(method, path, token, ct string, body any) resp {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL()+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if rd != nil && ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set(HeaderSessionToken, token)
	}
	res, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		ts.t.Fatal(err)
	}
	ts.bodiesMu.Lock()
	ts.bodies.Write(b)
	ts.bodiesMu.Unlock()
	return resp{status: res.StatusCode, body: b, header: res.Header}
}

func (ts *testServer) want(r resp, status int) resp {
	ts.t.Helper()
	if r.status != status {
		ts.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// login returns a session token for username.
func (ts *testServer) login(username, password string) string {
	ts.t.Helper()
	r := ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": username, "password": password}), 201)
	var lr LoginResponse
	r.json(ts.t, &lr)
	if len(lr.SessionToken) < 43 {
		ts.t.Fatalf("short token %q", lr.SessionToken)
	}
	return lr.SessionToken
}

// people is a server with an admin and two ordinary users, logged in.
type people struct {
	admin, alice, bob       string // tokens
	adminID, aliceID, bobID string
}

const testPassword = "correct horse battery"

func (ts *testServer) setup() people {
	ts.t.Helper()
	var p people
	var u UserResponse
	ts.want(ts.do("POST", "/api/v2/users/first", "", map[string]string{
		"username": "root", "email": "root@example.com", "password": testPassword}), 201).json(ts.t, &u)
	p.adminID = u.ID
	p.admin = ts.login("root", testPassword)
	for _, name := range []string{"alice", "bob"} {
		ts.want(ts.do("POST", "/api/v2/users", p.admin, map[string]any{
			"username": name, "email": name + "@example.com", "password": testPassword}), 201).json(ts.t, &u)
		if name == "alice" {
			p.aliceID, p.alice = u.ID, ts.login(name, testPassword)
		} else {
			p.bobID, p.bob = u.ID, ts.login(name, testPassword)
		}
	}
	return p
}
