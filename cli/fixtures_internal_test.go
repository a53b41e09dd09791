package cli

import (
	"os"
	"strings"
	"testing"
)

// The example template in the repository's testdata/ loads as the README
// describes it.
func TestTestdataTemplate(t *testing.T) {
	tmpl, err := readTemplate("../testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Env["GOFLAGS"] != "-mod=mod" || len(tmpl.Scripts) != 2 || tmpl.Scripts[1].TimeoutSeconds != 600 ||
		len(tmpl.Apps) != 1 || tmpl.Apps[0].Slug != "code-server" {
		t.Fatalf("template = %+v", tmpl)
	}
}

func TestWarnExpandedHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil || home == "/" {
		t.Skip("no home directory to test with")
	}
	var b strings.Builder
	warnExpandedHome(&b, home+"/.config/tool.json")
	if !strings.Contains(b.String(), "'~/.config/tool.json'") {
		t.Errorf("no warning for a shell-expanded path: %q", b.String())
	}
	b.Reset()
	for _, p := range []string{"~/.config/tool.json", "/etc/tool.json", ""} {
		warnExpandedHome(&b, p)
	}
	if b.Len() != 0 {
		t.Errorf("warned for a path the shell did not expand: %q", b.String())
	}
}
