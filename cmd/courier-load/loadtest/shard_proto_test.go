package loadtest

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// TestShardProtocol runs a shard in-process, over pipes, with 6 agents of
// two users against a real control plane child: they all apply; after a
// mark, the control plane restarts and one user's secret changes; the
// outage reply says all 6 lost their session and re-applied, and that the
// other user's 3 agents saw no newer revision; the final reply holds every
// apply; closing stdin ends the shard.
func TestShardProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane process")
	}
	ctx := t.Context()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := &serverProc{exe: exe, listen: listen, dataDir: filepath.Join(t.TempDir(), "data"), logTo: io.Discard}
	if err := srv.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.stop() }()
	cfg := DefaultConfig()
	cfg.Agents, cfg.AgentsPerUser, cfg.SecretsPerUser = 6, 3, 2
	f, err := setup(ctx, cfg, srv.url(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer f.transport.CloseIdleConnections()
	var agents []shardAgent
	for _, a := range f.agents {
		agents = append(agents, shardAgent{Workspace: a.workspace, Token: a.token})
	}
	parts := splitAgents(agents, 10, []string{srv.url()})

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serveShard(ctx, inR, outW, io.Discard)
		_ = outW.Close()
	}()
	p := &shardProc{in: inW, enc: json.NewEncoder(inW), dec: json.NewDecoder(outR)}
	if err := p.enc.Encode(shardStart{Agents: parts[0], Dialers: 3}); err != nil {
		t.Fatal(err)
	}
	ss := shards{p}
	poll := func(op, what string, cond func(merged) bool) merged {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			m, err := ss.callAll(op)
			if err != nil {
				t.Fatal(err)
			}
			if cond(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %+v", what, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	poll(opStatus, "6 first applies", func(m merged) bool { return m.FirstApplied == 6 && m.Connected == 6 })
	if _, err := ss.callAll(opMark); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.start(ctx); err != nil {
		t.Fatal(err)
	}
	u := f.users[0]
	v := "value-changed"
	if _, err := u.api.UpdateSecret(ctx, "me", u.secrets[0], client.UpdateSecretRequest{Value: &v}); err != nil {
		t.Fatal(err)
	}
	m := poll(opOutage, "6 re-applies and the change at user 0's agents", func(m merged) bool {
		return m.Lost == 6 && m.NotReapplied == 0 && m.StaleRevision == 3
	})
	if len(m.ReappliedAt) != 6 {
		t.Fatalf("%d re-apply times, want 6", len(m.ReappliedAt))
	}
	if _, err := p.call("no-such-op"); err == nil {
		t.Fatal("an unknown command was answered without an error")
	}
	fin, err := ss.callAll(opFinal)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Apply.N < 12 || fin.Connect.N < 12 || fin.Errors["session_lost"] < 6 {
		t.Fatalf("final: %d applies, %d connects, errors %v; want at least 12, 12 and 6 sessions lost", fin.Apply.N, fin.Connect.N, fin.Errors)
	}
	_ = inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shard ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the shard did not end when its stdin closed")
	}
}
