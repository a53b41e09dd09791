package controlplane

import (
	"os"
	"testing"

	"github.com/courierhq/courier/inject"
)

// The import examples in the repository's testdata/ parse as documented and
// every entry passes the inject rules.
func TestTestdataImportFixtures(t *testing.T) {
	envBody, err := os.ReadFile("../testdata/secrets.env")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseEnvBatch(string(envBody))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"API_KEY":      "example-not-a-real-key",
		"DATABASE_URL": "postgres://app@db.internal:5432/app?sslmode=require",
		"GREETING":     "single quotes are literal: $HOME stays",
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for _, e := range entries {
		if want[e.req.Name] != e.req.Value || e.req.EnvName != e.req.Name {
			t.Errorf("%s: value %q env %q", e.req.Name, e.req.Value, e.req.EnvName)
		}
	}
	yamlBody, err := os.ReadFile("../testdata/secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ys, err := parseYAMLBatch(string(yamlBody))
	if err != nil {
		t.Fatal(err)
	}
	if len(ys) != 2 || ys[1].req.EnvName != "SERVICE_TOKEN" || ys[0].req.FilePath != "~/.config/tool/config.json" {
		t.Fatalf("yaml entries = %+v", ys)
	}
	for _, e := range append(entries, ys...) {
		s := inject.Secret{Name: e.req.Name, Value: e.req.Value, Description: e.req.Description,
			EnvName: e.req.EnvName, FilePath: e.req.FilePath}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", e.label, err)
		}
	}
}
