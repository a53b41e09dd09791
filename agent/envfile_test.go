package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
)

// TestEnvFile: with Config.EnvFile the agent writes, at every apply, the
// env new processes get (template under secrets) as a script a shell can
// source: mode 0600, every byte of a hostile value kept, a renamed env
// target gone at the next apply, and no value in the log.
func TestEnvFile(t *testing.T) {
	hostile := canary + "'quote\" $HOME `id` \\ back\nnewline"
	c := newCP(t, nil)
	c.up()
	c.setSecrets(store.Secret{Name: "tok", Value: []byte(hostile), EnvName: "TOK"})
	home, logs, stop := startAgentWith(t, c, func(cfg *Config) { cfg.EnvFile = "~/.config/courier/env" })
	defer stop()
	path := filepath.Join(home, ".config", "courier", "env")
	source := func(names ...string) string {
		script := ". " + path
		for _, n := range names {
			script += `; printf '%s|' "${` + n + `-unset}"`
		}
		out, err := exec.Command("/bin/sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("sourcing the env file: %v", err)
		}
		return string(out)
	}
	eventually(t, "the env file", func() bool { _, err := os.Stat(path); return err == nil })
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600", st.Mode().Perm())
	}
	if got, want := source("TOK", "FROM_TEMPLATE"), hostile+"|t|"; got != want {
		t.Fatalf("sourced %q, want %q", got, want)
	}

	c.setSecrets(store.Secret{Name: "tok", Value: []byte(hostile), EnvName: "TOK2"})
	c.cut()
	eventually(t, "the renamed env target in the env file", func() bool {
		return strings.Contains(readFile(path), "export TOK2=")
	})
	if got := source("TOK", "TOK2"); got != "unset|"+hostile+"|" {
		t.Fatalf("after the rename: %q", got)
	}
	if strings.Contains(logs.String(), canary) {
		t.Error("a value reached the log")
	}
}

func TestEnvFileContentQuoting(t *testing.T) {
	got := string(envFileContent(map[string]string{"B": "it's", "A": ""}))
	want := "# Written by courier-agent at every apply: the env it gives new processes. Do not edit.\nexport A=''\nexport B='it'\\''s'\n"
	if got != want {
		t.Fatalf("content %q, want %q", got, want)
	}
}
