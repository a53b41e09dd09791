package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestEveryCommandHasExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "courier" && c.Name() != "help" && !c.Hidden && c.Example == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand())
}

func TestUpsertSSHBlock(t *testing.T) {
	block := sshConfigBlock("/usr/bin/courier", "")
	newBlock := sshConfigBlock("/opt/courier", "")
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"empty file", "", block, nil},
		{"appends after content", "Host a\n  User b", "Host a\n  User b\n\n" + block, nil},
		{"replaces in place", "Host a\n\n" + block + "Host z\n", "Host a\n\n" + newBlock + "Host z\n", nil},
		{"start without end", "x\n" + sshBlockStart + "\n", "", errSSHConfigMarkers},
		{"end before start", sshBlockEnd + "\n" + sshBlockStart + "\n", "", errSSHConfigMarkers},
		{"two blocks", block + block, "", errSSHConfigMarkers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := block
			if tc.name == "replaces in place" {
				b = newBlock
			}
			got, err := upsertSSHBlock(tc.in, b)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if err == nil {
				again, _ := upsertSSHBlock(got, b)
				if again != got {
					t.Error("second run changed the file")
				}
			}
		})
	}
}

func TestSSHConfigBlockStripsPrefixAndQuotes(t *testing.T) {
	b := sshConfigBlock("/home/o'neil/my bin/courier", "/tmp/c d")
	for _, want := range []string{
		"Host courier.*",
		`'/home/o'\''neil/my bin/courier' ssh --stdio --ssh-host-prefix courier. %h`,
		"env COURIER_CONFIG_DIR='/tmp/c d' ",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("block lacks %q:\n%s", want, b)
		}
	}
}

func TestFormatFromName(t *testing.T) {
	for in, want := range map[string]string{
		".env": "env", "prod.env": "env", ".env.local": "env", "dir/.ENV": "env",
		"s.json": "json", "s.yaml": "yaml", "S.YML": "yaml", "-": "", "secrets.txt": "", "envfile": "",
	} {
		if got := formatFromName(in); got != want {
			t.Errorf("formatFromName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{&exitStatusError{code: 3}, 3},
		{fmt.Errorf("wrapped: %w", &exitStatusError{code: 42}), 42},
		{&exitStatusError{code: 0}, 1},
		{&exitStatusError{code: 300}, 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestCellNeutralisesControlCharacters(t *testing.T) {
	if got := cell("a\x1b[31m\tb\nc"); strings.ContainsAny(got, "\x1b\t\n") {
		t.Errorf("cell = %q", got)
	}
	if cell("") != "-" {
		t.Error("empty cell not shown as -")
	}
}
