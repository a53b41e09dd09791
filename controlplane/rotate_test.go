package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/rotate"
	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
)

// writeKeys writes a key file holding keys in order (the first seals).
func writeKeys(t *testing.T, keys ...[]byte) string {
	t.Helper()
	var text string
	for _, k := range keys {
		text += base64.StdEncoding.EncodeToString(k) + "\n"
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, seal.KeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// agentValues fetches the workspace's secrets as its agent does.
func agentValues(t *testing.T, ts *testServer, token string) map[string]string {
	t.Helper()
	a := dialAgent(t, ts, token)
	var res proto.SecretsResponse
	if st := a.call(t, "GET", proto.PathSecrets, nil, &res); st != 200 {
		t.Fatalf("agent fetch: %d", st)
	}
	out := map[string]string{}
	for _, s := range res.Secrets {
		out[s.Name] = s.Value
	}
	return out
}

func rotateStore(t *testing.T, dir, keyFile string, reseal bool) rotate.Report {
	t.Helper()
	st := openTestStore(t, dir)
	defer st.Close()
	kr, err := seal.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rotate.DefaultConfig()
	cfg.Store, cfg.Keyring = st, kr
	run := rotate.Reseal
	if !reseal {
		run = rotate.Unseal
	}
	rep, err := run(context.Background(), cfg)
	if err != nil || rep.Failed != 0 || rep.Skipped != 0 {
		t.Fatalf("rotate: %+v, %v", rep, err)
	}
	return rep
}

func formats(t *testing.T, ts *testServer, userID string) map[string]store.ValueFormat {
	t.Helper()
	all, err := ts.store.ListSecrets(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.ValueFormat{}
	for _, s := range all {
		out[s.Name] = s.Format
	}
	return out
}

// TestKeyRotationThroughTheAgentPath walks a deployment through its life:
// values stored plain, a key added later (plain rows stay readable), a new
// key put first and every value resealed (the old key can then go), and a
// migration away (unseal, then no key). At each step the agent receives
// every value unchanged.
func TestKeyRotationThroughTheAgentPath(t *testing.T) {
	dir := t.TempDir()
	oldK, newK := randomKey(t), randomKey(t)
	want := map[string]string{"plain-one": canary + "-plain", "old-one": canary + "-old"}
	server := func(keyFile string) *testServer {
		return newTestServer(t, func(c *Config) { c.DataDir, c.EncryptionKeyFile = dir, keyFile })
	}
	check := func(ts *testServer, token string, names ...string) {
		t.Helper()
		got := agentValues(t, ts, token)
		for _, n := range names {
			if got[n] != want[n] {
				t.Fatalf("agent got a wrong value for %s", n)
			}
		}
	}

	ts := server("")
	p := ts.setup()
	var ws CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &ws)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "plain-one", "value": want["plain-one"]}), 201)
	_ = ts.Close()

	ts = server(writeKeys(t, oldK))
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "old-one", "value": want["old-one"]}), 201)
	// (Run logs its start-up warnings before it serves the first request.)
	if !strings.Contains(ts.logs.String(), "run `courier server reseal`") {
		t.Error("a server with a key and plain values stored did not tell the operator to reseal")
	}
	check(ts, ws.AgentToken, "plain-one", "old-one") // the plain row is still served once a key exists
	if f := formats(t, ts, p.aliceID); f["plain-one"] != store.FormatPlain || f["old-one"] != store.FormatSealed {
		t.Fatalf("formats %v", f)
	}
	_ = ts.Close()

	rep := rotateStore(t, dir, writeKeys(t, newK, oldK), true)
	if rep.Changed != 2 {
		t.Fatalf("reseal %+v", rep)
	}
	ts = server(writeKeys(t, newK)) // the old key is gone
	check(ts, ws.AgentToken, "plain-one", "old-one")
	if strings.Contains(ts.logs.String(), "courier server reseal") {
		t.Error("the reseal warning is still logged after a reseal")
	}
	if f := formats(t, ts, p.aliceID); f["plain-one"] != store.FormatSealed || f["old-one"] != store.FormatSealed {
		t.Fatalf("formats %v", f)
	}
	_ = ts.Close()

	rotateStore(t, dir, writeKeys(t, newK), false)
	ts = server("")
	check(ts, ws.AgentToken, "plain-one", "old-one")
	if strings.Contains(ts.logs.String(), "sealed but no encryption key") {
		t.Error("values still reported sealed after the unseal")
	}
	if f := formats(t, ts, p.aliceID); f["plain-one"] != store.FormatPlain || f["old-one"] != store.FormatPlain {
		t.Fatalf("formats %v", f)
	}
}

// TestSealedValueWithoutKeyIsNotDelivered: a server started without the key
// refuses to hand a sealed value to an agent rather than deliver ciphertext.
func TestSealedValueWithoutKeyIsNotDelivered(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, func(c *Config) { c.DataDir, c.EncryptionKeyFile = dir, writeKeys(t, randomKey(t)) })
	p := ts.setup()
	var ws CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &ws)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("sealed-one", "env_name", "SEALED_ONE")), 201)
	stored, _ := ts.store.GetSecret(context.Background(), p.aliceID, "sealed-one")
	_ = ts.Close()

	ts = newTestServer(t, func(c *Config) { c.DataDir = dir })
	a := dialAgent(t, ts, ws.AgentToken)
	var res proto.SecretsResponse
	st := a.call(t, "GET", proto.PathSecrets, nil, &res)
	for _, s := range res.Secrets {
		if s.Value == string(stored.Value) {
			t.Fatal("the agent was handed the sealed bytes as the value")
		}
	}
	if st != 200 || len(res.Secrets) != 0 {
		t.Fatalf("status %d, %d secrets; want 200 with the sealed one left out", st, len(res.Secrets))
	}
	if !strings.Contains(ts.logs.String(), "some secret values are sealed but no encryption key is configured") {
		t.Error("the server did not warn at start that sealed values cannot be delivered")
	}
	if !strings.Contains(ts.logs.String(), errSealedNoKey.Error()) {
		t.Fatal("the log does not say why the secret was not delivered")
	}
}

// TestResealWhileServing reseals a database that a running server keeps
// writing to (through a second connection, as another process would):
// every acknowledged update survives, and after at most a second run every
// value is sealed under the new key.
func TestResealWhileServing(t *testing.T) {
	dir := t.TempDir()
	oldK, newK := randomKey(t), randomKey(t)
	ts := newTestServer(t, func(c *Config) { c.DataDir, c.EncryptionKeyFile = dir, writeKeys(t, oldK) })
	p := ts.setup()
	var ws CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &ws)
	const n = 20
	last := map[string]string{}
	for i := range n {
		name := "s" + strconv.Itoa(i)
		last[name] = canary + "-" + name + "-0"
		ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": name, "value": last[name]}), 201)
	}
	_ = ts.Close()

	both := writeKeys(t, newK, oldK)
	ts = newTestServer(t, func(c *Config) { c.DataDir, c.EncryptionKeyFile = dir, both })
	stop, done, tick := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	var mu sync.Mutex
	go func() { // a user updating values while the reseal runs
		defer close(done)
		for gen := 1; ; gen++ {
			select {
			case <-stop:
				return
			default:
			}
			name := "s" + strconv.Itoa(gen%n)
			v := canary + "-" + name + "-" + strconv.Itoa(gen)
			r := ts.do("PATCH", "/api/v2/users/me/secrets/"+name, p.alice, map[string]string{"value": v})
			if r.status == 200 {
				mu.Lock()
				last[name] = v
				mu.Unlock()
				select {
				case tick <- struct{}{}:
				default:
				}
			}
		}
	}()
	st := openTestStore(t, dir)
	defer st.Close()
	kr, err := seal.LoadKeyFile(both)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rotate.DefaultConfig()
	cfg.Store, cfg.Keyring, cfg.BatchSize = &interleaved{Store: st, tick: tick}, kr, 3
	rep, err := rotate.Reseal(context.Background(), cfg)
	close(stop)
	<-done
	if err != nil || rep.Failed != 0 || rep.Scanned != n || rep.Changed+rep.Skipped+rep.Current != n {
		t.Fatalf("reseal while serving: %+v, %v", rep, err)
	}
	t.Logf("first run while serving: %+v", rep)
	cfg.Store = st
	rep, err = rotate.Reseal(context.Background(), cfg)
	if err != nil || rep.Changed != 0 || rep.Skipped != 0 || rep.Current != n {
		t.Fatalf("second run: %+v, %v; want every row current", rep, err)
	}
	_ = ts.Close()

	ts = newTestServer(t, func(c *Config) { c.DataDir, c.EncryptionKeyFile = dir, writeKeys(t, newK) })
	got := agentValues(t, ts, ws.AgentToken)
	for name, v := range last {
		if got[name] != v {
			t.Fatalf("%s: the agent does not get the last acknowledged value", name)
		}
	}
}

// interleaved lets the server's writer complete one update before each
// compare-and-swap, so the reseal and the writes really interleave.
type interleaved struct {
	store.Store
	tick <-chan struct{}
}

func (s *interleaved) SwapSecretValue(ctx context.Context, id string, old, value []byte, f store.ValueFormat) (bool, error) {
	select {
	case <-s.tick:
	case <-time.After(30 * time.Second): // a guard against a hang, not a timing assertion
		return false, errors.New("the writer stalled")
	}
	return s.Store.SwapSecretValue(ctx, id, old, value, f)
}
