package controlplane

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/audit"
)

// Requests refused for the credential they presented — a garbage, an
// over-long, a revoked or an expired-session bearer token, a stale
// dashboard cookie — are counted into one session.refused record per
// source address and reason per minute; a request without a credential is
// not. The presented tokens (canaries) appear nowhere: not in the audit
// table, the export file, the answers or the log.
func TestAuditRefusedCredentialsAreTallied(t *testing.T) {
	exportFile := filepath.Join(t.TempDir(), "audit.jsonl")
	ts := newTestServer(t, func(c *Config) {
		c.AuditLogFile = exportFile
		c.LoginThrottle.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	p := ts.setup()
	revoked := ts.createToken(p.alice, map[string]any{"name": "gone"}).Token
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/gone", p.alice, nil), 204)
	loggedOut := ts.login("bob", testPassword)
	ts.want(ts.do("POST", "/api/v2/users/logout", loggedOut, nil), 204)
	before := len(ts.waitAudit(p.admin, 0))

	garbage := canary + "-bearer-garbage"
	overlong := strings.Repeat(canary, 10)
	var answers strings.Builder
	send := func(from string, set func(h http.Header)) int {
		t.Helper()
		req, err := http.NewRequest("GET", ts.URL()+"/api/v2/users/me/secrets", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", from)
		set(req.Header)
		res, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answers.Write(b)
		for k, v := range res.Header {
			answers.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		return res.StatusCode
	}
	const flood = 200
	for range flood {
		if st := send("198.51.100.7", func(h http.Header) { h.Set(HeaderSessionToken, garbage) }); st != 401 {
			t.Fatalf("garbage token: %d", st)
		}
	}
	for _, tok := range []string{revoked, loggedOut} {
		if st := send("198.51.100.7", func(h http.Header) { h.Set("Authorization", "Bearer "+tok) }); st != 401 {
			t.Fatalf("revoked credential: %d", st)
		}
	}
	if st := send("203.0.113.9", func(h http.Header) { h.Set(HeaderSessionToken, garbage) }); st != 401 {
		t.Fatalf("garbage token: %d", st)
	}
	if st := send("203.0.113.9", func(h http.Header) { h.Set(HeaderSessionToken, overlong) }); st != 401 {
		t.Fatalf("over-long token: %d", st)
	}
	if st := send("203.0.113.9", func(http.Header) {}); st != 401 { // no credential: not a refusal of one
		t.Fatalf("no token: %d", st)
	}
	// A stale dashboard cookie.
	req, _ := http.NewRequest("GET", ts.URL()+"/account/secrets", nil)
	req.AddCookie(&http.Cookie{Name: dashCookie, Value: canary + "-cookie"})
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	answers.Write(b)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("stale cookie: %d", res.StatusCode)
	}

	type key struct{ source, reason string }
	want := map[key]int{
		{"198.51.100.7", "unknown, expired or revoked token"}:         flood + 2,
		{"203.0.113.9", "unknown, expired or revoked token"}:          1,
		{"203.0.113.9", "over-long token"}:                            1,
		{"203.0.113.9", "unknown, expired or revoked session cookie"}: 1,
	}
	recs := ts.waitAudit(p.admin, before+len(want))
	got := map[key]int{}
	for _, r := range recs {
		if r.Action != actRefused {
			continue
		}
		var d struct {
			Count      int       `json:"count"`
			First      time.Time `json:"first"`
			Last       time.Time `json:"last"`
			Credential string    `json:"credential"`
		}
		if err := json.Unmarshal(r.Details, &d); err != nil {
			t.Fatal(err)
		}
		k := key{r.Source, r.Reason}
		if _, dup := got[k]; dup {
			t.Errorf("two records for %v in one minute", k)
		}
		got[k] = d.Count
		if r.Outcome != audit.Denied || r.Actor.Kind != audit.ActorAnonymous || d.First.IsZero() || d.Last.Before(d.First) ||
			r.RequestID == "" || r.Replica == "" || (d.Credential != "header" && d.Credential != "cookie") {
			t.Errorf("refusal record %+v details %s", r, r.Details)
		}
	}
	if len(got) != len(want) {
		t.Errorf("refusal records %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("refusals of %v counted %d, want %d", k, got[k], n)
		}
	}
	if len(recs)-before != len(want) {
		t.Errorf("%d records for %d refusals, want %d", len(recs)-before, flood+6, len(want))
	}

	// No presented credential, nor any 8 bytes of one, anywhere.
	dump, _ := json.Marshal(recs)
	var exported []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		exported, _ = os.ReadFile(exportFile)
		if countRecordLines(exported) >= len(recs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := countRecordLines(exported); n < len(recs) {
		t.Fatalf("export file has %d records, want %d", n, len(recs))
	}
	// The answers: to the refused requests, and of the audit API.
	apiAnswers := answers.String() + string(ts.want(ts.do("GET", "/api/v2/audit?limit=1000", p.admin, nil), 200).body) +
		string(ts.want(ts.do("GET", "/api/v2/audit?limit=1000&action=session.refused", p.admin, nil), 200).body)
	for _, tok := range []string{garbage, overlong, revoked, loggedOut, canary + "-cookie"} {
		for name, text := range map[string]string{"audit table": string(dump), "export file": string(exported), "answers": apiAnswers} {
			// Any 8 bytes of the token's tail (random for the real ones,
			// whose heads may be a fixed prefix).
			for i := len(tok) - 24; i+8 <= len(tok); i += 4 {
				if strings.Contains(text, tok[i:i+8]) {
					t.Errorf("a presented credential (...%s) is in the %s", tok[i:i+8], name)
				}
			}
		}
	}
}

// Agent connections refused for their token or protocol version are
// counted the same way, into one agent.refused record per source address
// and reason per minute: an agent retrying with a rotated token, or a
// flood of garbage tokens, leaves one record with the count, never one
// per attempt, and never the presented token.
func TestAuditAgentRefusalsAreTallied(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.LoginThrottle.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	p := ts.setup()
	before := len(ts.waitAudit(p.admin, 0))
	garbage := canary + "-agent-garbage"
	dial := func(from, token, version string) int {
		t.Helper()
		h := http.Header{proto.HeaderToken: {token}, proto.HeaderVersion: {version}, "X-Forwarded-For": {from}}
		_, res, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+proto.ConnectPath,
			&websocket.DialOptions{HTTPHeader: h})
		if err == nil || res == nil {
			t.Fatalf("a refused agent connection was accepted (%v)", err)
		}
		return res.StatusCode
	}
	const flood = 60
	for range flood {
		if st := dial("198.51.100.8", garbage, proto.Version); st != 401 {
			t.Fatalf("garbage agent token: %d", st)
		}
	}
	if st := dial("203.0.113.10", garbage, proto.Version); st != 401 {
		t.Fatalf("garbage agent token: %d", st)
	}
	type key struct{ source, reason string }
	want := map[key]int{
		{"198.51.100.8", "missing, unknown, expired or rotated agent token"}: flood,
		{"203.0.113.10", "missing, unknown, expired or rotated agent token"}: 1,
	}
	recs := ts.waitAudit(p.admin, before+len(want))
	got, records := map[key]int{}, 0
	for _, r := range recs {
		if r.Action != actAgentRefused {
			continue
		}
		records++
		var d struct {
			Count int `json:"count"`
		}
		if err := json.Unmarshal(r.Details, &d); err != nil {
			t.Fatal(err)
		}
		got[key{r.Source, r.Reason}] += d.Count
		if r.Outcome != audit.Denied || r.Actor.Kind != audit.ActorAgent {
			t.Errorf("agent refusal record %+v", r)
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("agent refusals of %v counted %d, want %d", k, got[k], n)
		}
	}
	if records != len(want) || len(recs)-before != len(want) {
		t.Errorf("%d records (%d in all) for %d refused connections, want %d", records, len(recs)-before, flood+1, len(want))
	}
	dump, _ := json.Marshal(recs)
	if strings.Contains(string(dump), garbage[len(garbage)-12:]) {
		t.Error("a presented agent token is in the audit log")
	}
}

// TestRefusedFirstUserIsAnonymous: POST /users/first once a user exists is
// recorded as a failure by an anonymous caller named by the account it
// tried, with no user ID: nobody was created, so no ID may appear as an
// actor and `audit list --actor` finds no one who did not act.
func TestRefusedFirstUserIsAnonymous(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/first", "", map[string]string{"username": "alice", "email": "alice2@example.com",
		"password": testPassword + "-x"}), http.StatusConflict)
	var got *audit.Record
	for _, r := range ts.waitAudit(p.admin, 0) {
		if r.Action == audit.ActUserCreate && r.Outcome == audit.Failure && r.Target.Name == "alice" {
			got = &r
		}
	}
	if got == nil {
		t.Fatal("no failed user.create record for the refused first user")
	}
	if got.Actor.Kind != audit.ActorAnonymous || got.Actor.ID != "" || got.Actor.Name != "alice" || got.Target.ID != "" {
		t.Fatalf("record: actor %+v, target %+v; want anonymous \"alice\" and no IDs", got.Actor, got.Target)
	}
}

// TestAuditTargetIsNeverTheOwnersPathName: a refused request under
// /users/{user}/... records no target named after {user} ("secret me",
// "token alice"): the secret or token it would have made has no such name.
func TestAuditTargetIsNeverTheOwnersPathName(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "bad name/x", "value": "v"}), 400)
	ts.want(ts.do("POST", "/api/v2/users/alice/tokens", p.alice, map[string]any{"name": "t", "lifetime": "9999d"}), 400)
	n := 0
	for _, r := range ts.waitAudit(p.admin, 0) {
		if r.Outcome != audit.Failure || (r.Action != audit.ActSecretCreate && r.Action != audit.ActTokenCreate) {
			continue
		}
		n++
		if r.Target.Name == "me" || r.Target.Name == "alice" {
			t.Errorf("%s failure names its target %q, the owner in the path", r.Action, r.Target.Name)
		}
		if r.Target.OwnerID != p.aliceID {
			t.Errorf("%s failure: owner %q, want alice", r.Action, r.Target.OwnerID)
		}
	}
	if n != 2 {
		t.Fatalf("%d failure records, want 2", n)
	}
}
