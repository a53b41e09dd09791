package cli

import "testing"

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
