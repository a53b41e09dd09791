package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/agent/proto"
)

func TestVersion(t *testing.T) {
	c := newCLI(t, "")
	r := c.ok(nil, "version", "-o", "json")
	var v struct{ Version, Go, Protocol string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "dev" || v.Protocol != proto.Version || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version = %+v", v)
	}
}

func TestConfigSSHIsIdempotentAndKeepsOtherHosts(t *testing.T) {
	c := newCLI(t, "")
	path := filepath.Join(c.home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	mine := "Host github.com\n  User git\n"
	if err := os.WriteFile(path, []byte(mine), 0o640); err != nil {
		t.Fatal(err)
	}
	c.ok(nil, "config-ssh")
	first, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(first), mine) {
		t.Errorf("existing hosts not kept:\n%s", first)
	}
	if !strings.Contains(string(first), "Host courier.*") ||
		!strings.Contains(string(first), "ssh --stdio --ssh-host-prefix courier. %h") {
		t.Errorf("block missing:\n%s", first)
	}
	r := c.ok(nil, "config-ssh")
	second, _ := os.ReadFile(path)
	if string(second) != string(first) || !strings.Contains(r.stdout, "up to date") {
		t.Errorf("second run changed the file or said so: %q", r.stdout)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %o", fi.Mode().Perm())
	}
}

func TestCompletionAndHelp(t *testing.T) {
	c := newCLI(t, "")
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := c.ok(nil, "completion", shell); !strings.Contains(r.stdout, "courier") {
			t.Errorf("%s completion lacks the command name", shell)
		}
	}
	if r := c.ok(nil, "secret", "create", "--help"); !strings.Contains(r.stdout, "Examples:") {
		t.Errorf("help has no examples:\n%s", r.stdout)
	}
}
