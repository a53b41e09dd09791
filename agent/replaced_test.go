package agent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// logLines decodes a JSON log into its entries.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func withMsg(entries []map[string]any, snippet string) []map[string]any {
	var out []map[string]any
	for _, e := range entries {
		if msg, _ := e["msg"].(string); strings.Contains(msg, snippet) {
			out = append(out, e)
		}
	}
	return out
}

func exactMsg(entries []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, e := range entries {
		if e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// TestTwoAgentsOneTokenDoNotFight: a second agent with the same token
// replaces the first (newest wins); the first is told why, logs it once at
// error level and waits its longest backoff instead of reconnecting and
// replacing the second in turn. The control plane warns naming both peers
// and the workspace's status shows the replacement.
//
// MaxBackoff is an hour, so "does not reconnect in a loop" is observable in
// a bounded window without timing: during the window the replaced agent
// must not connect even once more (a fighting agent reconnects within its
// 20 ms initial backoff).
func TestTwoAgentsOneTokenDoNotFight(t *testing.T) {
	c := newCP(t, nil)
	c.setSecrets(store.Secret{Name: "tok", Value: []byte(canary), EnvName: "TOK", FilePath: "~/tok"})
	c.up()
	patient := func(cfg *Config) { cfg.MaxBackoff = time.Hour }
	homeA, logA, _ := startAgentWith(t, c, patient)
	eventually(t, "agent A's apply", func() bool { return readFile(filepath.Join(homeA, "tok")) == canary })
	homeB, logB, _ := startAgentWith(t, c, patient)
	eventually(t, "agent B's apply", func() bool { return readFile(filepath.Join(homeB, "tok")) == canary })
	eventually(t, "agent A to learn it was replaced", func() bool {
		return len(withMsg(logLines(t, logA.String()), "replaced this one")) > 0
	})

	// The bounded window: both agents keep running; the fight, if any,
	// would show as more connections.
	time.Sleep(500 * time.Millisecond)

	a := logLines(t, logA.String())
	if n := len(exactMsg(a, "connected to the control plane")); n != 1 {
		t.Errorf("agent A connected %d times, want once: it must not reconnect before its longest backoff", n)
	}
	errs := 0
	for _, e := range a {
		if e["level"] == "error" {
			errs++
			if msg, _ := e["msg"].(string); !strings.Contains(msg, "replaced this one") || e["retry_in"] != float64(3600) {
				t.Errorf("unexpected error line: %v", e)
			}
		}
	}
	if errs != 1 {
		t.Errorf("agent A logged %d error lines, want exactly 1", errs)
	}
	if n := len(withMsg(logLines(t, logB.String()), "replaced")); n != 0 {
		t.Errorf("agent B, the newest, was replaced %d times", n)
	}

	srv := logLines(t, c.log.String())
	connects := exactMsg(srv, "agent connected")
	warns := withMsg(srv, "replaced by a newer one")
	if len(connects) != 2 || len(warns) != 1 {
		t.Fatalf("control plane saw %d connections and %d replacement warnings, want 2 and 1", len(connects), len(warns))
	}
	w := warns[0]
	if w["level"] != "warn" || w["old_remote"] != connects[0]["remote"] || w["new_remote"] != connects[1]["remote"] ||
		w["old_remote"] == w["new_remote"] || w["workspace"] != "dev" {
		t.Errorf("replacement warning %v does not name both peers (connections %v, %v)", w, connects[0]["remote"], connects[1]["remote"])
	}
	st, err := c.st.AgentStatus(context.Background(), "w")
	if err != nil || st.ReplacedAt.IsZero() || !st.Connected || st.RemoteAddr != connects[1]["remote"] ||
		!strings.Contains(st.ReplacedNote, connects[1]["remote"].(string)) {
		t.Errorf("status = %+v, %v", st, err)
	}
	for name, log := range map[string]string{"A": logA.String(), "B": logB.String(), "control plane": c.log.String()} {
		if strings.Contains(log, canary) {
			t.Errorf("the %s log holds a secret value", name)
		}
	}
}
