package inject

import (
	"strings"
	"testing"
)

func TestValidateScope(t *testing.T) {
	tests := []struct {
		name  string
		scope []string
		want  string // "" = valid
	}{
		{"all", nil, ""},
		{"literals and globs", []string{"api", "web-*", "db-?", "[ab]x", `lit\*`}, ""},
		{"unclosed class", []string{"web-["}, "not a valid glob"},
		{"trailing escape", []string{`web\`}, "not a valid glob"},
		{"empty entry", []string{"api", ""}, "is empty"},
		{"slash", []string{"alice/api"}, "'/'"},
		{"traversal", []string{"../etc"}, "'/'"},
		{"control", []string{"a\x00b"}, "control characters"},
		{"space", []string{" api"}, "white space"},
		{"too long", []string{strings.Repeat("a", MaxScopeEntryBytes+1)}, "the maximum is 128"},
		{"too many", make([]string, MaxScopeEntries+1), "the maximum is 64"},
		{"bad utf8", []string{"\xff"}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateScope(tt.scope)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateScope(%q) = %v, want nil", tt.scope, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), FieldWorkspaces+":") {
				t.Fatalf("ValidateScope(%q) = %v, want an error on %s containing %q", tt.scope, err, FieldWorkspaces, tt.want)
			}
		})
	}
}

func TestInScope(t *testing.T) {
	tests := []struct {
		scope []string
		name  string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"api"}, "api", true},
		{[]string{"api"}, "api2", false},
		{[]string{"api"}, "API", false},
		{[]string{"web-*"}, "web-1", true},
		{[]string{"web-*"}, "web", false},
		{[]string{"api", "web-*"}, "web-x", true},
		{[]string{"web-["}, "web-[", false}, // malformed matches nothing
	}
	for _, tt := range tests {
		if got := InScope(tt.scope, tt.name); got != tt.want {
			t.Errorf("InScope(%q, %q) = %t, want %t", tt.scope, tt.name, got, tt.want)
		}
	}
}

func TestScopesOverlap(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		want bool
	}{
		{"all and all", nil, nil, true},
		{"all and one", nil, []string{"api"}, true},
		{"same literal", []string{"api"}, []string{"web", "api"}, true},
		{"disjoint literals", []string{"api"}, []string{"web"}, false},
		{"glob matches literal", []string{"web-*"}, []string{"web-1"}, true},
		{"glob misses literal", []string{"web-*"}, []string{"api"}, false},
		{"literal then glob", []string{"api"}, []string{"a*"}, true},
		{"two globs", []string{"api-*"}, []string{"web-*"}, true},
		{"escaped star is a glob", []string{`web\*`}, []string{"web*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScopesOverlap(tt.a, tt.b); got != tt.want {
				t.Errorf("ScopesOverlap(%q, %q) = %t, want %t", tt.a, tt.b, got, tt.want)
			}
			if got := ScopesOverlap(tt.b, tt.a); got != tt.want {
				t.Errorf("ScopesOverlap is not symmetric for %q, %q", tt.a, tt.b)
			}
		})
	}
}

func TestNormalizeScope(t *testing.T) {
	if got := NormalizeScope([]string{"b", "a", "b"}); strings.Join(got, ",") != "b,a" {
		t.Fatalf("NormalizeScope = %q, want [b a]", got)
	}
	if got := NormalizeScope([]string{}); got != nil {
		t.Fatalf("NormalizeScope(empty) = %q, want nil", got)
	}
}
