package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example template with secrets loads as the README describes it.
func TestTestdataTemplateSecrets(t *testing.T) {
	tmpl, err := readTemplate("../testdata/template-secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Secrets) != 2 || tmpl.Secrets[0].Env != "NPM_TOKEN" || tmpl.Secrets[0].File != "~/.npmrc" ||
		!tmpl.Secrets[0].Required || tmpl.Secrets[1].Required || tmpl.OnMissingSecrets != "wait" ||
		tmpl.Secrets[0].DocsURL != "https://wiki.example.com/npm-token" {
		t.Fatalf("template = %+v", tmpl)
	}
}

// TestReadTemplateUnknownKeys: a typo anywhere in a template, YAML or
// JSON, is an error naming the key, so a required secret is never dropped
// silently.
func TestReadTemplateUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"t.yaml", "secrets:\n  - env: A\n    requried: true\n", "requried"},
		{"t2.yaml", "secret:\n  - env: A\n", "secret"},
		{"t3.yaml", "secrets:\n  - env: A\n    required: maybe\n", "maybe"},
		{"t.json", `{"secrets":[{"env":"A","docs":"x"}]}`, "docs"},
		{"t2.json", `{"on_missing":"wait"}`, "on_missing"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readTemplate(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
}
