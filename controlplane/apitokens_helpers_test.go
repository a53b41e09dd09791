package controlplane

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// touchCounter wraps a store and counts its TouchAPITokens calls, to show
// that requests made with an API token cost no write of their own.
type touchCounter struct {
	store.Store
	mu    sync.Mutex
	calls int
	uses  int
}

func (c *touchCounter) TouchAPITokens(ctx context.Context, uses []store.APITokenUse) error {
	c.mu.Lock()
	c.calls++
	c.uses += len(uses)
	c.mu.Unlock()
	return c.Store.TouchAPITokens(ctx, uses)
}

func (c *touchCounter) counts() (calls, uses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.uses
}

// neverTicks is a clock whose interval never ends: the recorder writes
// only when a test calls Flush, or at Close.
type neverTicks struct{}

func (neverTicks) After(time.Duration) <-chan time.Time { return nil }

// newTokenTestServer is newTestServer with the API tokens' use recorder
// writing through a touchCounter, only on Flush or at shutdown.
func newTokenTestServer(t *testing.T, mutate ...func(*Config)) (*testServer, *touchCounter) {
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
	counter := &touchCounter{Store: srv.api.store}
	srv.api.uses = identity.NewUseRecorder(identity.UseRecorderConfig{Store: counter, Clock: neverTicks{}})
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
		text := logs.String()
		if strings.Contains(text, canary) {
			t.Errorf("canary value leaked into the log")
		}
		if tok := identity.TokenPattern.FindString(text); tok != "" {
			t.Errorf("an API token is in the server's log")
		}
	})
	return ts, counter
}

// createToken creates a token for the caller of session and returns it.
func (ts *testServer) createToken(session string, body map[string]any) CreatedAPITokenResponse {
	ts.t.Helper()
	var c CreatedAPITokenResponse
	ts.want(ts.do("POST", "/api/v2/users/me/tokens", session, body), 201).json(ts.t, &c)
	return c
}
