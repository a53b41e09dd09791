package controlplane

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDashboardBinaryValues: a file uploaded in the dashboard is stored
// byte for byte whatever it holds; with an env target, or given an env
// target later, a binary value is refused beside the value field; a name
// that is not UTF-8 is refused. Nothing refused is stored.
func TestDashboardBinaryValues(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	b := ts.browser()
	b.login("alice")

	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "keytab", "file_path": "~/.keytab"},
		[]byte(binCanary)), http.StatusSeeOther)
	if got := ts.storedValue(p.aliceID, "keytab"); got != binCanary {
		t.Fatalf("uploaded %d bytes, stored %d", len(binCanary), len(got))
	}
	before := ts.snapshot(p.aliceID)
	page := wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "envbin", "env_name": "ENV_BIN"},
		[]byte(binCanary)), http.StatusBadRequest)
	if e := fieldError(page, "value"); !strings.Contains(e, "can only be delivered as a file") {
		t.Fatalf("binary value with env: value error %q", e)
	}
	page = wantPage(t, b.postMultipart("/account/secrets/keytab/edit", map[string]string{"description": "", "env_name": "KEYTAB",
		"file_path": "~/.keytab", "value": ""}, nil), http.StatusBadRequest)
	if e := fieldError(page, "value"); !strings.Contains(e, "can only be delivered as a file") {
		t.Fatalf("env target on a binary secret: value error %q", e)
	}
	wantPage(t, b.post("/account/secrets/new", url.Values{"name": {"bad\xffname"}, "value": {canary}}), http.StatusBadRequest)
	ts.wantSnapshot(p.aliceID, before)
}
