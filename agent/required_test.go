package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// requiredTemplate asks for NEED (required) and ~/.opt (recommended), and
// runs a script that records the env it saw.
func requiredTemplate(live bool, onMissing string) store.Template {
	return store.Template{
		Scripts:          []proto.Script{{Name: "proof", Script: `echo "need=$NEED" >> ~/proof`}},
		Secrets:          []proto.SecretRequirement{{Env: "NEED", Required: true}, {File: "~/.opt"}},
		LiveFiles:        live,
		OnMissingSecrets: onMissing,
	}
}

func (c *cp) state() string {
	c.t.Helper()
	ws, err := c.st.WorkspaceByID(context.Background(), "w")
	if err != nil {
		c.t.Fatal(err)
	}
	return ws.State
}

// addNeed creates the required secret and tells connected agents.
func (c *cp) addNeed() {
	c.t.Helper()
	sec := store.Secret{ID: "need", Name: "need", EnvName: "NEED", Value: []byte(canary), Enabled: true}
	if err := c.st.CreateSecrets(context.Background(), "u", []store.Secret{sec}, nil); err != nil {
		c.t.Fatal(err)
	}
	c.srv.SecretsChanged(context.Background(), notify.Batch{Users: []string{"u"}})
}

const waitMsg = "required secrets are missing; the startup scripts wait until they exist"

// TestWaitingForSecretsLiveFiles: with a required secret missing, the
// scripts do not run, the state is waiting_for_secrets (with the missing
// name in the control plane's log), the wait is logged once across a
// reconnect, and with live files the scripts start as soon as the secret
// is created. A recommended secret does not block. No value in any log.
func TestWaitingForSecretsLiveFiles(t *testing.T) {
	c := newCPTemplate(t, requiredTemplate(true, ""))
	c.up()
	home, logs, _ := startAgent(t, c)
	proof := filepath.Join(home, "proof")
	eventually(t, "waiting_for_secrets", func() bool { return c.state() == proto.StateWaitingForSecrets })
	if !strings.Contains(c.log.String(), `"missing":["NEED"]`) {
		t.Errorf("the control plane was not told what is missing:\n%s", c.log.String())
	}
	// A reconnect applies again and still waits, without a second log line.
	c.cut()
	eventually(t, "the reconnect", func() bool { return strings.Count(logs.String(), "connected to the control plane") >= 2 })
	eventually(t, "the second report", func() bool { return strings.Count(c.log.String(), proto.StateWaitingForSecrets) >= 2 })
	if _, err := os.Stat(proof); err == nil {
		t.Fatalf("a startup script ran while a required secret was missing: %q", readFile(proof))
	}
	if n := strings.Count(logs.String(), waitMsg); n != 1 {
		t.Errorf("the wait was logged %d times, want once", n)
	}
	c.addNeed()
	eventually(t, "the startup script", func() bool { return readFile(proof) != "" })
	if got := readFile(proof); got != "need="+canary+"\n" {
		t.Fatalf("the script saw %q", got)
	}
	eventually(t, "ready", func() bool { return c.state() == proto.StateReady })
	for name, text := range map[string]string{"agent log": logs.String(), "control plane log": c.log.String()} {
		if strings.Contains(text, canary) {
			t.Errorf("the value leaked into the %s", name)
		}
	}
}

// TestWaitingForSecretsUntilReconnect: without live files a created
// secret is only announced (pending); the scripts start at the reconnect.
func TestWaitingForSecretsUntilReconnect(t *testing.T) {
	c := newCPTemplate(t, requiredTemplate(false, proto.OnMissingWait))
	c.up()
	home, logs, _ := startAgent(t, c)
	proof := filepath.Join(home, "proof")
	eventually(t, "waiting_for_secrets", func() bool { return c.state() == proto.StateWaitingForSecrets })
	c.addNeed()
	eventually(t, "the change announced", func() bool { return strings.Contains(logs.String(), pendingMsg) })
	if _, err := os.Stat(proof); err == nil {
		t.Fatal("without live files the scripts started before a reconnect")
	}
	c.cut()
	eventually(t, "the startup script after the reconnect", func() bool { return readFile(proof) == "need="+canary+"\n" })
	eventually(t, "ready", func() bool { return c.state() == proto.StateReady })
}

// TestOnMissingSecretsStart: on_missing_secrets start runs the scripts
// anyway, with a warning naming what is missing.
func TestOnMissingSecretsStart(t *testing.T) {
	c := newCPTemplate(t, requiredTemplate(false, proto.OnMissingStart))
	c.up()
	home, logs, _ := startAgent(t, c)
	eventually(t, "the startup script", func() bool { return readFile(filepath.Join(home, "proof")) == "need=\n" })
	eventually(t, "ready", func() bool { return c.state() == proto.StateReady })
	if !strings.Contains(logs.String(), "on_missing_secrets is start") || !strings.Contains(logs.String(), `"missing":["NEED"]`) {
		t.Errorf("no warning naming the missing secret:\n%s", logs.String())
	}
}

// TestSecretScopedAway: a secret moved out of the workspace's scope is
// treated like a deleted one: no env, its file stays (R7) and is listed
// as left behind, and the apply report says not_in_scope.
func TestSecretScopedAway(t *testing.T) {
	c := newCP(t, []proto.Script{{Name: "noop", Script: "true"}})
	c.setSecrets(store.Secret{Name: "tok", Value: []byte(canary), EnvName: "TOK", FilePath: "~/.tok", Workspaces: []string{"de?"}})
	c.up()
	envFile := filepath.Join(t.TempDir(), "env")
	home, _, _ := startAgentWith(t, c, func(cfg *Config) { cfg.EnvFile = envFile })
	file := filepath.Join(home, ".tok")
	eventually(t, "the file written", func() bool { return readFile(file) == canary })
	eventually(t, "TOK in the env file while in scope", func() bool { return strings.Contains(readFile(envFile), "TOK=") })
	other := []string{"prod"}
	if _, err := c.st.UpdateSecret(context.Background(), "u", "tok", store.SecretUpdate{Workspaces: &other}, nil); err != nil {
		t.Fatal(err)
	}
	c.cut()
	eventually(t, "the not_in_scope report", func() bool {
		st, err := c.st.AgentStatus(context.Background(), "w")
		if err != nil || st.LastApply == nil || len(st.LastApply.Outcomes) != 1 {
			return false
		}
		o := st.LastApply.Outcomes[0]
		return o.Outcome == proto.OutcomeNotInScope && len(st.LastApply.LeftBehind) == 1 && st.LastApply.LeftBehind[0] == file
	})
	if readFile(file) != canary {
		t.Fatal("the file of a secret scoped away was changed or removed (R7)")
	}
	if env := readFile(envFile); strings.Contains(env, "TOK=") {
		t.Fatalf("the env file still sets TOK: %q", env)
	}
}
