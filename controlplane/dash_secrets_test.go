package controlplane

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/courierhq/courier/inject"
)

// storedValue is alice's stored value of name (the raw value: these
// servers run without an encryption key).
func storedValue(t *testing.T, ts *testServer, userID, name string) string {
	t.Helper()
	s, err := ts.store.GetSecret(context.Background(), userID, name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return string(s.Value)
}

// Create, list, edit (with and without a value), a failed edit and delete:
// the canary is stored but never comes back in a page (the server's
// cleanup scans every body), the form keeps what was typed but the value.
func TestDashSecretsLifecycle(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	b := ts.browser()
	b.login("alice")

	page := wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, "0</strong> of 50 secrets · <strong>0</strong> of 200 KiB · <strong>0</strong> of 24 KiB for env") {
		t.Fatalf("empty usage line missing: %s", page)
	}
	wantPage(t, b.get("/account/secrets/new"), 200)

	// Create from the textarea (CRLF from the browser stored as LF).
	r := b.postMultipart("/account/secrets/new", map[string]string{"name": "api-key", "description": "for tools",
		"env_name": "API_KEY", "file_path": "~/.config/tool/key", "value": canary + "\r\nline2"}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account/secrets" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if got := storedValue(t, ts, p.aliceID, "api-key"); got != canary+"\nline2" {
		t.Fatalf("stored %q", got)
	}
	// Create from an uploaded file, byte for byte.
	upload := []byte(canary + "-file\r\n")
	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "cfg", "file_path": "/etc/tool.json", "value": ""}, upload), http.StatusSeeOther)
	if got := storedValue(t, ts, p.aliceID, "cfg"); got != string(upload) {
		t.Fatalf("uploaded value stored as %q", got)
	}
	page = wantPage(t, b.get("/account/secrets"), 200)
	for _, want := range []string{`Created secret &#34;cfg&#34;`, ">api-key<", ">for tools<", "<code>API_KEY</code>", "<code>~/.config/tool/key</code>", "<code>/etc/tool.json</code>",
		"2</strong> of 50 secrets"} {
		if !strings.Contains(page, want) {
			t.Errorf("list lacks %s", want)
		}
	}
	if strings.Contains(wantPage(t, b.get("/account/secrets"), 200), "Created secret") {
		t.Error("the notice showed twice")
	}
	// Both a textarea value and a file: refused beside the value, nothing stored.
	page = wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "both", "description": "kept", "value": canary}, []byte(canary)), 400)
	if fieldError(page, "value") != "type a value or upload a file, not both" || inputValue(page, "description") != "kept" {
		t.Fatalf("both: %s", page)
	}

	// The edit page shows the metadata, not the value.
	page = wantPage(t, b.get("/account/secrets/api-key/edit"), 200)
	if inputValue(page, "env_name") != "API_KEY" || inputValue(page, "file_path") != "~/.config/tool/key" || inputValue(page, "name") != "<absent>" {
		t.Fatalf("edit page: %s", page)
	}
	// An empty value keeps the value; targets change and clear.
	wantStatus(t, b.postMultipart("/account/secrets/api-key/edit", map[string]string{"description": "", "env_name": "NEW_KEY", "file_path": "", "value": ""}, nil), http.StatusSeeOther)
	s, _ := ts.store.GetSecret(context.Background(), p.aliceID, "api-key")
	if string(s.Value) != canary+"\nline2" || s.EnvName != "NEW_KEY" || s.FilePath != "" || s.Description != "" {
		t.Fatalf("after edit: %v %q", s, s.Value)
	}
	// A new value replaces it.
	wantStatus(t, b.postMultipart("/account/secrets/api-key/edit", map[string]string{"description": "d", "env_name": "NEW_KEY", "file_path": "", "value": canary + "2"}, nil), http.StatusSeeOther)
	if got := storedValue(t, ts, p.aliceID, "api-key"); got != canary+"2" {
		t.Fatalf("after value edit %q", got)
	}
	// A failed edit: every error beside its field, the typed fields kept,
	// the value neither stored nor shown.
	page = wantPage(t, b.postMultipart("/account/secrets/api-key/edit", map[string]string{"description": "typed description",
		"env_name": "PATH", "file_path": "relative/path", "value": canary + "3"}, nil), 400)
	if !strings.Contains(fieldError(page, "env_name"), "PATH is reserved") || !strings.Contains(fieldError(page, "file_path"), "relative paths are not supported") {
		t.Fatalf("failed edit errors: env %q file %q", fieldError(page, "env_name"), fieldError(page, "file_path"))
	}
	if inputValue(page, "description") != "typed description" || inputValue(page, "env_name") != "PATH" || inputValue(page, "file_path") != "relative/path" {
		t.Fatalf("typed fields lost: %s", page)
	}
	if !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, `class="error-summary"`) {
		t.Error("the refusal is not marked for assistive technology")
	}
	if got := storedValue(t, ts, p.aliceID, "api-key"); got != canary+"2" {
		t.Fatalf("failed edit changed the value to %q", got)
	}
	// A conflict names the field: cfg's file path is taken.
	page = wantPage(t, b.postMultipart("/account/secrets/api-key/edit", map[string]string{"env_name": "NEW_KEY", "file_path": "/etc/tool.json"}, nil), http.StatusConflict)
	if !strings.Contains(fieldError(page, "file_path"), `already used by secret "cfg"`) {
		t.Fatalf("conflict: %q", fieldError(page, "file_path"))
	}

	// Delete: a confirmation that names the secret, then the delete.
	page = wantPage(t, b.get("/account/secrets/cfg/delete"), 200)
	if !strings.Contains(page, `<strong id="delete-name">cfg</strong>`) || !strings.Contains(page, "<code>/etc/tool.json</code> stays") {
		t.Fatalf("confirmation: %s", page)
	}
	if _, err := ts.store.GetSecret(context.Background(), p.aliceID, "cfg"); err != nil {
		t.Fatal("the confirmation page deleted the secret")
	}
	wantStatus(t, b.post("/account/secrets/cfg/delete", nil), http.StatusSeeOther)
	page = wantPage(t, b.get("/account/secrets"), 200)
	if strings.Contains(page, ">cfg<") || !strings.Contains(page, "Deleted secret &#34;cfg&#34;") {
		t.Fatalf("after delete: %s", page)
	}
	wantPage(t, b.post("/account/secrets/cfg/delete", nil), http.StatusNotFound)
	wantPage(t, b.get("/account/secrets/nope/edit"), http.StatusNotFound)

	// Said here as well as in the server's cleanup: no page held a value.
	if all := ts.allBodies(); !strings.Contains(all, "api-key") || strings.Contains(all, canary) {
		t.Fatal("a page held the canary value (or no page was recorded)")
	}
}

// Every cap of R9 refused beside the field at fault, with the server's
// explanation, the typed fields kept and nothing stored.
func TestDashCapsRefusedBesideField(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Limits = inject.Limits{MaxSecrets: 3, MaxTotalBytes: 100, MaxEnvBytes: 40, MaxSecretBytes: 60}
	})
	p := ts.setup()
	b := ts.browser()
	b.login("alice")
	mk := func(name, env string, n int) {
		t.Helper()
		wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": name, "env_name": env, "value": strings.Repeat("v", n)}, nil), http.StatusSeeOther)
	}
	mk("a", "A_ENV", 30)
	mk("b", "", 50)
	page := wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, "<strong>2</strong> of 3 secrets") {
		t.Fatalf("usage: %s", page)
	}

	tests := []struct {
		name, field, want string
		fields            map[string]string
	}{
		{"per-value bytes", "value", "stored bytes per secret value cap is 60 bytes; this change would make it 61 (1 over)",
			map[string]string{"name": "c", "description": "typed", "value": strings.Repeat("x", 61)}},
		{"total bytes", "value", "stored value bytes per user cap is 100 bytes; this change would make it 110 (10 over)",
			map[string]string{"name": "c", "description": "typed", "value": strings.Repeat("x", 30)}},
		{"env bytes", "env_name", "stored env-injected value bytes per user cap is 40 bytes; this change would make it 50 (10 over)",
			map[string]string{"name": "c", "description": "typed", "env_name": "C_ENV", "value": strings.Repeat("x", 20)}},
		{"env name length", "env_name", "is 257 bytes; the env name cap is 256 bytes (1 over)",
			map[string]string{"name": "c", "description": "typed", "env_name": strings.Repeat("E", 257), "value": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := wantPage(t, b.postMultipart("/account/secrets/new", tt.fields, nil), 400)
			if got := fieldError(page, tt.field); !strings.Contains(got, tt.want) {
				t.Fatalf("beside %s: %q, want %q", tt.field, got, tt.want)
			}
			if inputValue(page, "name") != "c" || inputValue(page, "description") != "typed" || inputValue(page, "env_name") != tt.fields["env_name"] {
				t.Fatal("the typed fields were not kept")
			}
		})
	}
	mk("c", "", 10)
	t.Run("count", func(t *testing.T) {
		page := wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "d", "description": "typed", "value": "x"}, nil), 400)
		if got := fieldError(page, "name"); !strings.Contains(got, "secrets per user cap is 3 secrets; this change would make it 4 (1 over)") {
			t.Fatalf("beside name: %q", got)
		}
	})
	// An edit over a cap is refused beside its field and changes nothing.
	page = wantPage(t, b.postMultipart("/account/secrets/b/edit", map[string]string{"env_name": "B_ENV"}, nil), 400)
	if !strings.Contains(fieldError(page, "env_name"), "env-injected value bytes per user cap is 40 bytes; this change would make it 80") {
		t.Fatalf("edit over the env cap: %q", fieldError(page, "env_name"))
	}
	if s, _ := ts.store.GetSecret(context.Background(), p.aliceID, "b"); s.EnvName != "" {
		t.Fatal("the refused edit was stored")
	}
	if ss, _ := ts.store.ListSecrets(context.Background(), p.aliceID); len(ss) != 3 {
		t.Fatalf("%d secrets, want 3", len(ss))
	}
}

// The default per-value cap with a file upload one byte over 24 KiB, and
// an upload larger than the request limit: both explained beside the
// value, the fields before it kept.
func TestDashUploadTooLarge(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	ts.setup()
	b := ts.browser()
	b.login("alice")
	over := []byte(strings.Repeat("z", 24*1024+1))
	page := wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "big", "env_name": "BIG"}, over), 400)
	if got := fieldError(page, "value"); got != "is 24577 bytes; the per-secret cap is 24576 bytes (1 over)" {
		t.Fatalf("beside value: %q", got)
	}
	if inputValue(page, "name") != "big" || inputValue(page, "env_name") != "BIG" {
		t.Fatal("typed fields lost")
	}
	page = wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "huge", "description": "kept"}, []byte(strings.Repeat("z", 100<<10))), http.StatusRequestEntityTooLarge)
	if got := fieldError(page, "value"); !strings.Contains(got, "larger than the 65536-byte request limit") {
		t.Fatalf("beside value: %q", got)
	}
	if inputValue(page, "name") != "huge" || inputValue(page, "description") != "kept" {
		t.Fatal("typed fields lost")
	}
}

// Pausing: the list's toggle, the forms' checkbox, and a create unticked.
func TestDashEnabledToggle(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	b := ts.browser()
	b.login("alice")
	enabled := func(name string) bool {
		t.Helper()
		s, err := ts.store.GetSecret(context.Background(), p.aliceID, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.Enabled
	}
	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "k", "env_name": "K", "value": canary, "enabled_present": "1", "enabled": "true"}, nil), http.StatusSeeOther)
	if !enabled("k") {
		t.Fatal("created ticked, stored paused")
	}
	page := wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, `<span class="state ok">yes</span>`) || !strings.Contains(page, `id="toggle-k">Pause`) {
		t.Fatalf("list: %s", page)
	}
	// The toggle pauses and changes nothing else.
	wantStatus(t, b.post("/account/secrets/k/enabled", url.Values{"enabled": {"false"}}), http.StatusSeeOther)
	s, _ := ts.store.GetSecret(context.Background(), p.aliceID, "k")
	if s.Enabled || s.EnvName != "K" || string(s.Value) != canary {
		t.Fatalf("after pause: %v", s)
	}
	page = wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, `<span class="state off">paused</span>`) || !strings.Contains(page, "Paused secret &#34;k&#34;") {
		t.Fatalf("list after pause: %s", page)
	}
	// The edit form shows it unticked; ticking it enables.
	page = wantPage(t, b.get("/account/secrets/k/edit"), 200)
	if strings.Contains(page, `aria-describedby="enabled-hint" checked`) {
		t.Fatal("a paused secret's form is ticked")
	}
	wantStatus(t, b.postMultipart("/account/secrets/k/edit", map[string]string{"env_name": "K", "enabled_present": "1", "enabled": "true"}, nil), http.StatusSeeOther)
	if !enabled("k") {
		t.Fatal("ticking did not enable")
	}
	// Unticked on the form (the checkbox is then absent) pauses.
	wantStatus(t, b.postMultipart("/account/secrets/k/edit", map[string]string{"env_name": "K", "enabled_present": "1"}, nil), http.StatusSeeOther)
	if enabled("k") {
		t.Fatal("unticking did not pause")
	}
	// Created unticked: stored paused.
	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "p", "value": "v", "enabled_present": "1"}, nil), http.StatusSeeOther)
	if enabled("p") {
		t.Fatal("created unticked, stored enabled")
	}
	// Nonsense is refused and changes nothing; the toggle needs a value.
	wantPage(t, b.post("/account/secrets/p/enabled", url.Values{"enabled": {"maybe"}}), 400)
	wantPage(t, b.post("/account/secrets/p/enabled", nil), 400)
	if enabled("p") {
		t.Fatal("a refused toggle changed the secret")
	}
}

// TestDashNoticeOnlyOnTheRedirectsPage: a notice left by a create is shown
// by the page the redirect leads to, not by a form's refusal rendered in
// between (a double submit), which must not say "Created" beside
// "Nothing was saved".
func TestDashNoticeOnlyOnTheRedirectsPage(t *testing.T) {
	ts := newTestServer(t)
	ts.setup()
	b := ts.browser()
	b.login("alice")
	form := map[string]string{"name": "dup", "value": "v"}
	wantStatus(t, b.postMultipart("/account/secrets/new", form, nil), http.StatusSeeOther) // redirect not followed
	page := wantPage(t, b.postMultipart("/account/secrets/new", form, nil), http.StatusConflict)
	if strings.Contains(page, "Created secret") {
		t.Fatal("the refusal shows the first create's notice")
	}
	if !strings.Contains(wantPage(t, b.get("/account/secrets"), 200), "Created secret") {
		t.Fatal("the notice was spent by the refusal")
	}
}
