package inject

import (
	"strings"
	"testing"
)

func TestCheckRequirements(t *testing.T) {
	secrets := []Secret{
		{Name: "npm", EnvName: "NPM_TOKEN"},
		{Name: "rc", FilePath: "/home/coder/.npmrc"},
		{Name: "gh", EnvName: "GH_TOKEN", Disabled: true},
		{Name: "prod", EnvName: "PROD_TOKEN", NotInScope: true},
		{Name: "kube", FilePath: "~/.kube/config"},
	}
	tests := []struct {
		name string
		req  Requirement
		home string
		want string
	}{
		{"env met", Requirement{Env: "NPM_TOKEN"}, "", RequirementMet},
		{"env missing", Requirement{Env: "OTHER"}, "", RequirementMissing},
		{"env case matters", Requirement{Env: "npm_token"}, "", RequirementMissing},
		{"paused", Requirement{Env: "GH_TOKEN"}, "", RequirementPaused},
		{"not in scope is missing", Requirement{Env: "PROD_TOKEN"}, "", RequirementMissing},
		{"file as written", Requirement{File: "~/.kube/config"}, "", RequirementMet},
		{"file cleaned", Requirement{File: "~/.kube//config"}, "", RequirementMet},
		{"tilde vs absolute without home", Requirement{File: "~/.npmrc"}, "", RequirementMissing},
		{"tilde vs absolute with home", Requirement{File: "~/.npmrc"}, "/home/coder", RequirementMet},
		{"both met", Requirement{Env: "NPM_TOKEN", File: "~/.kube/config"}, "", RequirementMet},
		{"both, one paused", Requirement{Env: "GH_TOKEN", File: "~/.kube/config"}, "", RequirementPaused},
		{"both, one missing", Requirement{Env: "GH_TOKEN", File: "~/none"}, "", RequirementMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckRequirements([]Requirement{tt.req}, secrets, tt.home)
			if len(got) != 1 || got[0].Status != tt.want {
				t.Fatalf("CheckRequirements(%s) = %+v, want %s", tt.req.Label(), got, tt.want)
			}
		})
	}
	sts := CheckRequirements([]Requirement{{Env: "A", Required: true}, {Env: "B"}, {Env: "NPM_TOKEN", Required: true}}, secrets, "")
	if b := Blocking(sts); len(b) != 1 || b[0].Env != "A" {
		t.Fatalf("Blocking = %+v, want only the required missing A", b)
	}
}

func TestValidateRequirements(t *testing.T) {
	tests := []struct {
		name  string
		reqs  []Requirement
		field string // "" = valid
		want  string
	}{
		{"valid", []Requirement{{Env: "NPM_TOKEN", File: "~/.npmrc", Description: "d", DocsURL: "https://wiki.example.com/x", Required: true}}, "", ""},
		{"http ok", []Requirement{{Env: "A", DocsURL: "http://example.com"}}, "", ""},
		{"no target", []Requirement{{Description: "x"}}, "secrets[0].env", "needs env, file or both"},
		{"bad env", []Requirement{{Env: "1BAD"}}, "secrets[0].env", ""},
		{"relative file", []Requirement{{File: "../etc/passwd"}}, "secrets[0].file", "relative"},
		{"tilde user", []Requirement{{File: "~root/x"}}, "secrets[0].file", "~user"},
		{"javascript url", []Requirement{{Env: "A", DocsURL: "javascript:alert(1)"}}, "secrets[0].docs_url", "http:// or https://"},
		{"ftp url", []Requirement{{Env: "A", DocsURL: "ftp://example.com/x"}}, "secrets[0].docs_url", "http:// or https://"},
		{"relative url", []Requirement{{Env: "A", DocsURL: "/wiki/x"}}, "secrets[0].docs_url", "http:// or https://"},
		{"no host", []Requirement{{Env: "A", DocsURL: "https:///x"}}, "secrets[0].docs_url", "host"},
		{"space in url", []Requirement{{Env: "A", DocsURL: "https://a b"}}, "secrets[0].docs_url", "white space"},
		{"duplicate env", []Requirement{{Env: "A"}, {Env: "A"}}, "secrets[1].env", "secrets[0]"},
		{"duplicate file", []Requirement{{File: "~/x"}, {File: "~//x"}}, "secrets[1].file", "secrets[0]"},
		{"long description", []Requirement{{Env: "A", Description: strings.Repeat("d", MaxDescriptionBytes+1)}}, "secrets[0].description", ""},
		{"too many", make([]Requirement, MaxRequirements+1), "secrets", "maximum is 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := ValidateRequirements(tt.reqs)
			if tt.field == "" {
				if es != nil {
					t.Fatalf("ValidateRequirements = %v, want nil", es)
				}
				return
			}
			msg, ok := es.Fields()[tt.field]
			if !ok || !strings.Contains(msg, tt.want) {
				t.Fatalf("ValidateRequirements = %v, want %s containing %q", es, tt.field, tt.want)
			}
		})
	}
}

func TestPlanNotInScope(t *testing.T) {
	p, err := NewPlan(Manifest{Home: "/home/coder"}, []Secret{
		{Name: "prod", EnvName: "PROD", FilePath: "~/prod", NotInScope: true},
		{Name: "dev", Value: "v", EnvName: "DEV"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Env["PROD"]; ok || len(p.Files) != 0 {
		t.Fatalf("an out-of-scope secret was planned: env %v files %d", p.Env, len(p.Files))
	}
	if o := p.outcomes["prod"]; o.Outcome != OutcomeNotInScope || o.Path != "" {
		t.Fatalf("outcome = %+v, want not_in_scope with no path (its file is left behind, R7)", o)
	}
}
