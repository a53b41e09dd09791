package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

const (
	pendingMsg = "secrets changed on the control plane; they will be applied at the agent's next start or reconnect"
	againMsg   = "secrets changed again; still pending until the next start or reconnect"
	liveMsg    = "secrets changed on the control plane; re-applying now (live files)"
)

// change sets the file secret's value in the store (raising the owner's
// revision) and tells connected agents, as the control plane does after a
// committed write.
func (c *cp) change(value string) {
	c.t.Helper()
	if _, err := c.st.UpdateSecret(context.Background(), "u", "cfg", store.SecretUpdate{Value: []byte(value)}, nil); err != nil {
		c.t.Fatal(err)
	}
	c.srv.SecretsChanged(context.Background(), notify.Batch{Users: []string{"u"}})
}

// revisions returns the revision of the workspace's last stored apply
// report (-1 before the first), and the owner's current revision.
func (c *cp) revisions() (applied, current int64) {
	c.t.Helper()
	st, err := c.st.AgentStatus(context.Background(), "w")
	if err != nil {
		c.t.Fatalf("agent status: %v", err)
	}
	if st.LastApply == nil {
		return -1, 0
	}
	cur, err := c.st.SecretsRevision(context.Background(), "u")
	if err != nil {
		c.t.Fatal(err)
	}
	return st.LastApply.SecretsRevision, cur
}

// TestSecretsChangedDefaultLogsOnce: without live files a change is logged
// once per pending period (a burst makes one line), the file is not
// rewritten, the status stays pending, and the next reconnect applies it
// and starts a new period. No log line holds a value.
func TestSecretsChangedDefaultLogsOnce(t *testing.T) {
	c := newCP(t, nil)
	c.setSecrets(store.Secret{Name: "cfg", Value: []byte(canary + "-1"), FilePath: "~/cfg"})
	c.up()
	home, logs, stop := startAgent(t, c)
	file := filepath.Join(home, "cfg")
	eventually(t, "the first apply", func() bool { return readFile(file) == canary+"-1" })
	eventually(t, "the first apply report", func() bool { a, _ := c.revisions(); return a > 0 })

	for i := range 3 {
		c.change(canary + "-2-" + string(rune('a'+i)))
	}
	eventually(t, "the pending log line", func() bool { return strings.Contains(logs.String(), pendingMsg) })
	c.change(canary + "-2-z")
	eventually(t, "the later change to be seen", func() bool { return strings.Contains(logs.String(), againMsg) })
	if n := strings.Count(logs.String(), pendingMsg); n != 1 {
		t.Fatalf("%d pending lines for one pending period, want 1", n)
	}
	if got := readFile(file); got != canary+"-1" {
		t.Fatalf("the file was rewritten without live files: %q", got)
	}
	if applied, cur := c.revisions(); applied >= cur {
		t.Fatalf("applied revision %d, current %d: want changes pending", applied, cur)
	}

	// A reconnect applies the change and ends the pending period.
	c.cut()
	eventually(t, "the reconnect's apply", func() bool { return readFile(file) == canary+"-2-z" })
	eventually(t, "the status to catch up", func() bool { a, cur := c.revisions(); return a == cur })
	c.change(canary + "-3")
	eventually(t, "a pending line for the new period", func() bool { return strings.Count(logs.String(), pendingMsg) == 2 })
	stop()
	if strings.Contains(logs.String(), canary) {
		t.Fatal("the agent log holds a value")
	}
	if strings.Contains(logs.String(), liveMsg) {
		t.Fatal("the agent re-applied without live files")
	}
}

// TestSecretsChangedLive: with live files — the agent's setting or the
// template's — a change rewrites the file at once, the apply is reported at
// the new revision, and startup scripts do not run again.
func TestSecretsChangedLive(t *testing.T) {
	script := []proto.Script{{Name: "count", Script: "echo run >> ~/script-runs"}}
	for _, tt := range []struct {
		name      string
		template  bool
		agentFlag bool
	}{
		{"agent flag", false, true},
		{"template setting", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCPTemplate(t, store.Template{Scripts: script, LiveFiles: tt.template})
			c.setSecrets(store.Secret{Name: "cfg", Value: []byte(canary + "-1"), FilePath: "~/cfg", EnvName: "CFG"})
			c.up()
			home, logs, stop := startAgentWith(t, c, func(cfg *Config) { cfg.LiveFiles = tt.agentFlag })
			file := filepath.Join(home, "cfg")
			eventually(t, "the first apply", func() bool { return readFile(file) == canary+"-1" })
			eventually(t, "the script", func() bool { return readFile(filepath.Join(home, "script-runs")) == "run\n" })

			c.change(canary + "-2")
			c.change(canary + "-3")
			eventually(t, "the live re-apply", func() bool { return readFile(file) == canary+"-3" })
			eventually(t, "the status to catch up", func() bool { a, cur := c.revisions(); return a == cur })
			stop()
			if got := readFile(filepath.Join(home, "script-runs")); got != "run\n" {
				t.Fatalf("startup scripts ran again: %q", got)
			}
			if !strings.Contains(logs.String(), liveMsg) {
				t.Fatal("no log line for the live re-apply")
			}
			if strings.Contains(logs.String(), pendingMsg) || strings.Contains(logs.String(), canary) {
				t.Fatal("live mode logged 'pending', or a value")
			}
		})
	}
}
