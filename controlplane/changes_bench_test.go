package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkSecretChangeReachesAgent measures how long a change takes from
// the start of a REST PATCH to the secrets-changed message arriving at a
// connected agent (the agent endpoint over a real websocket and yamux). It
// reports the median and p99 in milliseconds; the target is well under a
// second.
func BenchmarkSecretChangeReachesAgent(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.BcryptCost = "127.0.0.1:0", b.TempDir(), bcrypt.MinCost
	srv, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done; _ = srv.Close() }()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	call := func(method, path, token string, body, out any) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL()+path, bytes.NewReader(j))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(HeaderSessionToken, token)
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		if out != nil {
			_ = json.Unmarshal(raw, out)
		}
	}
	call("POST", "/api/v2/users/first", "", map[string]string{"username": "root", "email": "root@example.com", "password": testPassword}, nil)
	var lr LoginResponse
	call("POST", "/api/v2/users/login", "", map[string]string{"username": "root", "password": testPassword}, &lr)
	var ws CreatedWorkspaceResponse
	call("POST", "/api/v2/workspaces", lr.SessionToken, map[string]any{"name": "dev", "owner": "root", "template": map[string]any{}}, &ws)
	call("POST", "/api/v2/users/me/secrets", lr.SessionToken, map[string]string{"name": "k", "value": "v"}, nil)
	agent := dialAgent(b, srv, ws.AgentToken)

	lats := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		call("PATCH", "/api/v2/users/me/secrets/k", lr.SessionToken, map[string]string{"description": string(rune('a' + i%26))}, nil)
		select {
		case <-agent.changed:
		case <-time.After(30 * time.Second):
			b.Fatal("no secrets-changed message")
		}
		lats = append(lats, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
}
