package controlplane

import (
	"strings"
	"testing"
)

// TestDashAuditPages: the audit log page lists and filters every record for
// an admin, a member sees only the records about them on their activity
// page, each row labels its cells (the narrow-screen layout) and a bad
// filter is refused with an explanation.
func TestDashAuditPages(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("deploy-key")), 201)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.bob, secretBody("bobs-key")), 201)
	ts.waitAudit(p.admin, 8)

	admin := ts.browser()
	admin.login("root")
	page := wantPage(t, admin.get("/audit"), 200)
	for _, want := range []string{`href="/audit" aria-current="page"`, "deploy-key", "bobs-key", `data-label="Actor"`,
		`<code>secret.create</code>`, `id="filters"`, `name="actor"`} {
		if !strings.Contains(page, want) {
			t.Errorf("audit page lacks %s", want)
		}
	}
	page = wantPage(t, admin.get("/audit?action=secret.*&target=bobs-key"), 200)
	if !strings.Contains(page, "bobs-key") || strings.Contains(page, "deploy-key") || strings.Contains(page, "session.login") {
		t.Errorf("filtered page shows other records")
	}
	page = wantPage(t, admin.get("/audit?outcome=maybe"), 400)
	if !strings.Contains(page, `id="outcome-error">must be success, failure or denied`) || !strings.Contains(page, `aria-describedby="outcome-error"`) {
		t.Errorf("a bad outcome is not explained beside its field: %s", page)
	}
	// A time that is not one, and until before since: each beside its
	// field, the typed values kept, no internal wording.
	page = wantPage(t, admin.get("/audit?since=yesterday"), 400)
	if !strings.Contains(page, `id="since-error">must be a time such as`) || !strings.Contains(page, `value="yesterday"`) {
		t.Errorf("a bad since is not explained beside its field: %s", page)
	}
	page = wantPage(t, admin.get("/audit?since=2026-12-05T14:11:00Z&until=2026-12-05T14:00:00Z"), 400)
	if !strings.Contains(page, `id="until-error">must be after since`) || strings.Contains(page, "bad audit filter") {
		t.Errorf("until before since is not explained beside until: %s", page)
	}

	alice := ts.browser()
	alice.login("alice")
	wantPage(t, alice.get("/audit"), 403)
	page = wantPage(t, alice.get("/account/activity"), 200)
	if !strings.Contains(page, "deploy-key") || strings.Contains(page, "bobs-key") || strings.Contains(page, `name="actor"`) {
		t.Errorf("alice's activity page shows others' records or the actor filter")
	}
	if strings.Contains(page, canary) {
		t.Fatal("a value on the activity page")
	}
}

// TestDashAuditPaging: "Older records" appears only when older records
// exist (a page that ends exactly at the oldest record links nowhere),
// keeps the filters, and every later page links back to the newest.
func TestDashAuditPaging(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	for _, n := range []string{"k1", "k2", "k3", "k4"} {
		ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody(n)), 201)
	}
	ts.waitAudit(p.admin, 8)
	admin := ts.browser()
	admin.login("root")
	older := func(page string) string {
		at := strings.Index(page, `rel="next"`)
		if at < 0 {
			return ""
		}
		i := strings.LastIndex(page[:at], `href="`)
		href := page[i+len(`href="`):]
		return strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	}
	// Four secret.create records, two a page: page one links on, page two
	// ends at the oldest and links nowhere older, but back to the newest.
	first := wantPage(t, admin.get("/audit?action=secret.create&limit=2"), 200)
	next := older(first)
	if next == "" || !strings.Contains(next, "action=secret.create") || !strings.Contains(next, "limit=2") {
		t.Fatalf("page one's Older link %q", next)
	}
	if strings.Contains(first, `rel="first"`) {
		t.Error("the first page links to the newest")
	}
	second := wantPage(t, admin.get(next), 200)
	if !strings.Contains(second, "k1") || !strings.Contains(second, "k2") || strings.Contains(second, "k4") {
		t.Fatalf("page two holds the wrong records")
	}
	if got := older(second); got != "" {
		t.Fatalf("page two links to an empty older page: %q", got)
	}
	if !strings.Contains(second, `rel="first"`) {
		t.Error("page two has no link back to the newest records")
	}
}
