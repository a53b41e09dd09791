package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/web"
)

func TestOutcomeText(t *testing.T) {
	tests := []struct {
		in   client.Outcome
		want string
		bad  bool
	}{
		{client.Outcome{Outcome: proto.OutcomeWritten}, "written", false},
		{client.Outcome{Outcome: proto.OutcomeUnchanged}, "unchanged", false},
		{client.Outcome{Outcome: proto.OutcomeCollision, Winner: "abs-x"}, "lost a collision to abs-x (same file)", true},
		{client.Outcome{Outcome: proto.OutcomeFailed, Error: "permission denied"}, "failed: permission denied", true},
		{client.Outcome{Outcome: proto.OutcomeFileDisabled}, "file delivery disabled on this deployment", true},
		{client.Outcome{Outcome: proto.OutcomeDisabled}, "disabled: paused, not delivered", false},
		{client.Outcome{Outcome: "something-new"}, "something-new", false},
	}
	for _, tt := range tests {
		if got, bad := outcomeText(tt.in); got != tt.want || bad != tt.bad {
			t.Errorf("%+v: %q %v, want %q %v", tt.in, got, bad, tt.want, tt.bad)
		}
	}
}

func TestSplitScope(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"api", []string{"api"}},
		{" api , web-* ,,  db", []string{"api", "web-*", "db"}},
		{"a\tb", []string{"a\tb"}}, // only commas separate; the API refuses the name
	}
	for _, tt := range tests {
		if got := splitScope(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitScope(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSuggestName(t *testing.T) {
	tests := []struct {
		in   client.SecretRequirement
		want string
	}{
		{client.SecretRequirement{Env: "NPM_TOKEN"}, "npm-token"},
		{client.SecretRequirement{Env: "X", File: "~/.netrc"}, "x"},
		{client.SecretRequirement{File: "~/.config/gh/hosts.yml"}, "hosts.yml"},
		{client.SecretRequirement{File: "~/.netrc"}, "netrc"},
		{client.SecretRequirement{File: "/"}, ""},
	}
	for _, tt := range tests {
		if got := suggestName(tt.in); got != tt.want {
			t.Errorf("suggestName(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A missing secret gets a prefilled link for the owner only, with its
// fields escaped in the query.
func TestRequirementsLinkOnlyForTheOwner(t *testing.T) {
	sts := []client.SecretRequirementStatus{
		{SecretRequirement: client.SecretRequirement{Env: "NPM_TOKEN", Description: "a&b"}, Status: client.RequirementMissing},
		{SecretRequirement: client.SecretRequirement{Env: "GH"}, Status: "satisfied"},
	}
	own := requirements(sts, true)
	if !strings.HasPrefix(own[0].CreateURL, "/account/secrets/new?") || !strings.Contains(own[0].CreateURL, "description=a%26b") ||
		!strings.Contains(own[0].CreateURL, "name=npm-token") || own[1].CreateURL != "" {
		t.Fatalf("owner's rows %+v", own)
	}
	for _, row := range requirements(sts, false) {
		if row.CreateURL != "" {
			t.Fatalf("another viewer got a create link: %+v", row)
		}
	}
}

func TestFieldErrorsJoinsOneFieldsDetails(t *testing.T) {
	got := fieldErrors(Problem{Validations: []client.Validation{
		{Field: "name", Detail: "is empty"}, {Field: "value", Detail: "too large"}, {Field: "name", Detail: "is taken"}}})
	if got["name"] != "is empty; is taken" || got["value"] != "too large" || len(got) != 2 {
		t.Fatalf("fieldErrors = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	pages, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no backend": {Pages: pages, Log: zap.NewNop(), MaxBodyBytes: 1},
		"no store":   {Backend: refusingBackend{}, Pages: pages, Log: zap.NewNop(), MaxBodyBytes: 1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}

// A page behind Page sends a visitor without a valid cookie to the login
// page, and clears a stale cookie.
func TestPageRedirectsWithoutSession(t *testing.T) {
	d := &Dashboard{b: refusingBackend{}, log: zap.NewNop()}
	h := d.Page(func(w http.ResponseWriter, r *http.Request) { t.Fatal("the page ran without a session") })
	for _, cookie := range []string{"", "stale"} {
		r := httptest.NewRequest("GET", "/account/secrets", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Faccount%2Fsecrets" {
			t.Fatalf("cookie %q: %d %v", cookie, w.Code, w.Header())
		}
		// A cookie that no longer opens a session: told why on the login page.
		noticed := false
		for _, c := range w.Header().Values("Set-Cookie") {
			noticed = noticed || strings.HasPrefix(c, NoticeCookie+"=")
		}
		if noticed != (cookie != "") {
			t.Fatalf("cookie %q: notice set = %v (%v)", cookie, noticed, w.Header().Values("Set-Cookie"))
		}
		cleared := strings.Contains(w.Header().Get("Set-Cookie"), SessionCookie+"=;")
		if cleared != (cookie != "") {
			t.Fatalf("cookie %q: Set-Cookie %q", cookie, w.Header().Get("Set-Cookie"))
		}
	}
}

// refusingBackend refuses every session; its other methods are not
// called (the embedded nil Backend would panic).
type refusingBackend struct{ Backend }

func (refusingBackend) Session(ctx context.Context, tok string) (context.Context, error) {
	return nil, errors.Join(ErrNoSession, errors.New("unknown token"))
}

func (refusingBackend) RefusedCookie(http.ResponseWriter, *http.Request, error) {}

// TestLocalPath: only a path on this site is returned to after signing in.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/workspaces/dev":          "/workspaces/dev",
		"/audit?action=secret.%2A": "/audit?action=secret.%2A",
		"":                         "",
		"workspaces":               "",
		"//evil.example/x":         "",
		"/\\evil.example":          "",
		"https://evil.example/":    "",
		"/login":                   "",
		"/login/oidc":              "",
		"/logout":                  "",
		"/a\r\nSet-Cookie: x=1":    "",
		"/a\tb":                    "",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
