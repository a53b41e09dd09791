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
		"sso_cli":       &SSOCLI{Username: evil, Listener: "127.0.0.1:9", ContinueURL: "http://127.0.0.1:9/cb?code=c"},
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
