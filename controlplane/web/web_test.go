package web

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKiB(t *testing.T) {
	for n, want := range map[int]string{0: "0", 1: "0.1", 1024: "1", 41062: "40.1", 41001: "40.1", 200 * 1024: "200", 24*1024 + 1: "24.1"} {
		if got := KiB(n); got != want {
			t.Errorf("KiB(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWhen(t *testing.T) {
	if When(time.Time{}) != "never" {
		t.Fatal("zero time")
	}
	at := time.Date(2026, 11, 25, 10, 4, 5, 0, time.FixedZone("x", 3600))
	if got := When(at); got != "2026-11-25 09:04:05 UTC" {
		t.Fatalf("When = %q", got)
	}
}

// Every page renders with the layout, escapes what it is given and carries
// the security headers.
func TestRenderEveryPage(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert(1)</script>`
	bodies := map[string]any{
		"login":         &Login{Login: evil, Error: "no"},
		"secrets":       &Secrets{Rows: []SecretRow{{Name: evil, Enabled: true}}},
		"secret_form":   &SecretForm{Name: evil, Errors: map[string]string{"name": evil}, Message: "m"},
		"secret_delete": &DeleteSecret{Name: evil},
		"workspaces":    &Workspaces{Rows: []WorkspaceRow{{ID: "i", Name: evil}}},
		"workspace":     &Workspace{Name: evil, Applied: true, Outcomes: []Outcome{{Secret: evil, Outcome: "written"}}},
		"problem":       &Problem{Status: 404, Message: evil},
		// Issue 19 part 2: API tokens.
		"tokens":        &Tokens{Rows: []TokenRow{{Name: evil, Scope: "read"}}, Form: TokenForm{Name: evil, Lifetime: evil, Errors: map[string]string{"name": evil}, Message: "m"}},
		"token_created": &TokenCreated{Name: evil, Token: evil},
		"token_revoke":  &RevokeToken{Name: evil},
		"sso_cli":       &SSOCLI{Username: evil, Listener: "127.0.0.1:9", ContinueURL: "http://127.0.0.1:9/cb?code=c"},
		"users": &Users{Manage: true, Roles: []string{"admin", "member"},
			Rows: []UserRow{{Username: evil, Role: "member", Status: "active"}, {Username: "x", Status: "suspended", Self: true}}},
		"user_delete":  &DeleteUser{Username: evil},
		"user_secrets": &UserSecrets{Username: evil, Rows: []SecretRow{{Name: evil}}},
		"password":     &PasswordForm{Message: evil, Errors: map[string]string{"password": evil}},
		// issue 19 part 4
		"workspace_token":  &WorkspaceToken{Name: evil, Token: "t"},
		"workspace_delete": &DeleteWorkspace{Name: evil},
		// Issue 20: the audit log.
		"audit": &Audit{Action: "/audit", All: true, Filter: AuditFilter{Actor: evil}, Error: evil, Older: "/audit?before=1",
			Rows: []AuditRow{{Seq: 1, Actor: evil, Target: evil, Details: evil, Reason: evil}}},
	}
	if len(bodies) != len(r.pages) {
		t.Fatalf("%d pages parsed, %d tested", len(r.pages), len(bodies))
	}
	for name, body := range bodies {
		w := httptest.NewRecorder()
		if err := r.Render(w, 200, name, &Page{Title: "T", User: "u", Body: body}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := w.Body.String()
		if strings.Contains(out, evil) || !strings.Contains(out, "&lt;script&gt;") {
			t.Errorf("%s: input not escaped", name)
		}
		if w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", name, w.Header())
		}
	}
	if err := r.Render(httptest.NewRecorder(), 200, "nope", &Page{}); !errors.Is(err, ErrUnknownPage) {
		t.Fatalf("unknown page: %v", err)
	}
}

func TestDOMID(t *testing.T) {
	cases := map[string]string{
		"k":          "toggle-k",
		"bad name!":  "toggle-bad_20name_21",
		"paused-one": "toggle-paused-one",
		"a_b":        "toggle-a_5fb",
		"ünï":        "toggle-_c3_bcn_c3_af",
		`"><script>`: "toggle-_22_3e_3cscript_3e",
		"":           "toggle-",
	}
	seen := map[string]string{}
	for in, want := range cases {
		got := DOMID("toggle-", in)
		if got != want {
			t.Errorf("DOMID(%q) = %q, want %q", in, got, want)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("%q and %q share id %q", in, prev, got)
		}
		seen[got] = in
	}
	// "_" is always an escape: these two must differ.
	if DOMID("", "a_20") == DOMID("", "a ") {
		t.Error("an escaped and a literal name share an id")
	}
}

func TestSecretFormSummaryInFormOrder(t *testing.T) {
	f := &SecretForm{Errors: map[string]string{"value": "v", "env_name": "e", "name": "n", "zzz": "z", "file_path": "f"}}
	var got []string
	for _, e := range f.Summary() {
		got = append(got, e.ID+"="+e.Label)
	}
	want := []string{"name=Name", "env_name=Environment variable", "file_path=File path", "value=Value", "zzz=zzz"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("summary %v, want %v", got, want)
	}
}

// Issue 19 part 2: the token form's summary follows the form's order.
func TestTokenFormSummaryInFormOrder(t *testing.T) {
	f := &TokenForm{Errors: map[string]string{"scope": "s", "zzz": "z", "lifetime": "l", "name": "n"}}
	var got []string
	for _, e := range f.Summary() {
		got = append(got, e.ID+"="+e.Label)
	}
	want := []string{"name=Name", "lifetime=Lifetime", "scope-write=Scope", "zzz=zzz"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("summary %v, want %v", got, want)
	}
}
