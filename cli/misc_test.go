package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/agent/proto"
	couriercli "github.com/courierhq/courier/cli"
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

// TestUnknownSubcommandIsAnError walks every command group: an argument
// that names no subcommand fails with a non-zero exit and says so (cobra
// would print the group's help and exit 0).
func TestUnknownSubcommandIsAnError(t *testing.T) {
	c := newCLI(t, "")
	var groups [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		for _, sub := range cmd.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			p := append(append([]string(nil), path...), sub.Name())
			if sub.HasSubCommands() {
				groups = append(groups, p)
			}
			walk(sub, p)
		}
	}
	walk(couriercli.NewRootCommand(), nil)
	if len(groups) < 4 {
		t.Fatalf("only %d command groups found: %v", len(groups), groups)
	}
	for _, g := range groups {
		t.Run(strings.Join(g, " "), func(t *testing.T) {
			r := c.run(nil, append(g, "frobnicate")...)
			if r.code == 0 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
				t.Fatalf("exit %d, stderr %q: want an error naming the unknown command", r.code, r.stderr)
			}
		})
	}
	if r := c.run(nil, "secret", "lst"); r.code == 0 || !strings.Contains(r.stderr, "Did you mean this?\n\tlist") {
		t.Errorf("no suggestion for a typo: exit %d, %q", r.code, r.stderr)
	}
	if r := c.run(nil, "workspaces"); r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("a bare group should print its help and exit 0: exit %d", r.code)
	}
}
