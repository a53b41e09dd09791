package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/identity"
)

// Create, use, list and revoke a token through the REST API; the token is
// in the create response only.
func TestAPITokensLifecycle(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "api-key", "value": canary}), 201)

	r := ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, map[string]any{"name": "ci"}), 201)
	var created CreatedAPITokenResponse
	r.json(t, &created)
	if !identity.LooksLikeToken(created.Token) || created.Name != "ci" || created.Scope != "write" || created.ID == "" ||
		created.Username != "alice" || created.UserID != p.aliceID || created.Expired || created.LastUsedAt != nil {
		t.Fatalf("created %s", r.body)
	}
	if got := created.ExpiresAt.Sub(created.CreatedAt); got != 30*24*time.Hour {
		t.Fatalf("default lifetime %v, want 30 days", got)
	}
	for _, field := range []string{`"id"`, `"name"`, `"token"`, `"scope"`, `"created_at"`, `"expires_at"`} {
		if !strings.Contains(string(r.body), field) {
			t.Errorf("create response lacks %s: %s", field, r.body)
		}
	}
	tok := created.Token

	// The token works like a session, in every header a session works in.
	var secrets []SecretResponse
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 200).json(t, &secrets)
	if len(secrets) != 1 || secrets[0].Name != "api-key" {
		t.Fatalf("secrets with the token: %+v", secrets)
	}
	var me UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200).json(t, &me)
	if me.ID != p.aliceID {
		t.Fatalf("the token acts as %+v", me)
	}
	for _, h := range []string{HeaderCourierSessionToken, "Authorization"} {
		req, _ := http.NewRequest("GET", ts.URL()+"/api/v2/users/me", nil)
		v := tok
		if h == "Authorization" {
			v = "Bearer " + tok
		}
		req.Header.Set(h, v)
		res, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("token in %s: %d", h, res.StatusCode)
		}
	}
	// A write token writes.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", tok, map[string]string{"name": "from-ci", "value": canary}), 201)

	// Listed without the token, by the session and by the token itself.
	second := ts.createToken(p.alice, map[string]any{"name": "backup", "lifetime": "12h", "scope": "read"})
	for _, who := range []string{p.alice, tok} {
		r = ts.want(ts.do("GET", "/api/v2/users/alice/tokens", who, nil), 200)
		if strings.Contains(string(r.body), tok) || strings.Contains(string(r.body), second.Token) ||
			identity.TokenPattern.Match(r.body) || strings.Contains(string(r.body), `"token"`) {
			t.Fatalf("the list shows a token: %s", r.body)
		}
		var list []APITokenResponse
		r.json(t, &list)
		if len(list) != 2 || list[0].Name != "backup" || list[1].Name != "ci" || list[0].Scope != "read" ||
			list[0].Username != "alice" || list[0].UserID != p.aliceID ||
			list[0].ExpiresAt.Sub(list[0].CreatedAt) != 12*time.Hour || list[1].ID != created.ID {
			t.Fatalf("list %s", r.body)
		}
	}

	// A name is unique per user: 409 naming the field; bob may use it.
	r = ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, map[string]any{"name": "ci"}), 409)
	if e := r.errResp(t); len(e.Validations) != 1 || e.Validations[0].Field != "name" {
		t.Fatalf("conflict %s", r.body)
	}
	ts.createToken(p.bob, map[string]any{"name": "ci"})

	// Revoked: 401 on the very next request.
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/ci", p.alice, nil), 204)
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 401)
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/ci", p.alice, nil), 404)
	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if len(list) != 1 || list[0].Name != "backup" {
		t.Fatalf("after revoke: %+v", list)
	}
	// A token may revoke itself.
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/backup", second.Token, nil), 403) // read scope: no
	third := ts.createToken(p.alice, map[string]any{"name": "self"})
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/self", third.Token, nil), 204)
	ts.want(ts.do("GET", "/api/v2/users/me", third.Token, nil), 401)

	if strings.Contains(ts.logs.String(), tok) {
		t.Fatal("the token is in the log")
	}
}

// Bad input: a clear 400 naming the field, and nothing created.
func TestAPITokensBadInput(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	p := ts.setup()
	for _, c := range []struct {
		name  string
		body  any
		field string
		want  string
	}{
		{"no name", map[string]any{}, "name", "required"},
		{"empty name", map[string]any{"name": ""}, "name", "required"},
		{"long name", map[string]any{"name": strings.Repeat("n", 65)}, "name", "maximum is 64"},
		{"slash", map[string]any{"name": "../etc/passwd"}, "name", "'/'"},
		{"space", map[string]any{"name": " ci"}, "name", "white space"},
		{"control", map[string]any{"name": "c\ni"}, "name", "control"},
		{"over max", map[string]any{"name": "x", "lifetime": "91d"}, "lifetime", "maximum of 90d"},
		{"way over max", map[string]any{"name": "x", "lifetime": "99999999d"}, "lifetime", ""},
		{"bare number", map[string]any{"name": "x", "lifetime": "30"}, "lifetime", "unit"},
		{"negative", map[string]any{"name": "x", "lifetime": "-1d"}, "lifetime", ""},
		{"too short", map[string]any{"name": "x", "lifetime": "30s"}, "lifetime", "at least"},
		{"lifetime as number", map[string]any{"name": "x", "lifetime": 30}, "lifetime", ""},
		{"bad scope", map[string]any{"name": "x", "scope": "admin"}, "scope", "read"},
		{"unknown field", map[string]any{"name": "x", "expires_at": "2099-01-01T00:00:00Z"}, "expires_at", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, c.body), 400)
			e := r.errResp(t)
			if len(e.Validations) == 0 || e.Validations[0].Field != c.field || !strings.Contains(r.errResp(t).Message+e.Validations[0].Detail, c.want) {
				t.Fatalf("error %s, want field %s saying %q", r.body, c.field, c.want)
			}
		})
	}
	for _, body := range []string{"", "{", `{"name":"x"}{}`, `[]`, `{"name":"x","NAME":"y"}`} {
		ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, body), 400)
	}
	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if len(list) != 0 {
		t.Fatalf("bad input created %+v", list)
	}
}

// --max-token-lifetime caps what is asked and the default.
func TestAPITokensMaxLifetime(t *testing.T) {
	ts, _ := newTokenTestServer(t, func(c *Config) { c.MaxTokenLifetime = 7 * 24 * time.Hour })
	p := ts.setup()
	r := ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, map[string]any{"name": "x", "lifetime": "8d"}), 400)
	if !strings.Contains(string(r.body), "maximum of 7d") {
		t.Fatalf("refusal %s", r.body)
	}
	c := ts.createToken(p.alice, map[string]any{"name": "default"})
	if got := c.ExpiresAt.Sub(c.CreatedAt); got != 7*24*time.Hour {
		t.Fatalf("default lifetime under a 7d max: %v", got)
	}
	c = ts.createToken(p.alice, map[string]any{"name": "max", "lifetime": "7d"})
	if got := c.ExpiresAt.Sub(c.CreatedAt); got != 7*24*time.Hour {
		t.Fatalf("7d: %v", got)
	}
}

// A read token reads and nothing else; a write token cannot mint a token
// that outlives it.
func TestAPITokenScopes(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "api-key", "value": canary}), 201)
	read := ts.createToken(p.alice, map[string]any{"name": "ro", "scope": "read"}).Token
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", read, nil), 200)
	ts.want(ts.do("GET", "/api/v2/users/me/secrets/api-key", read, nil), 200)
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", read, nil), 200)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v2/users/me/secrets", map[string]string{"name": "new", "value": canary}},
		{"POST", "/api/v2/users/me/secrets/batch", map[string]string{"format": "env", "content": "A=" + canary}},
		{"PATCH", "/api/v2/users/me/secrets/api-key", map[string]string{"value": canary + "-2"}},
		{"DELETE", "/api/v2/users/me/secrets/api-key", nil},
		{"POST", "/api/v2/users/me/tokens", map[string]string{"name": "escalate"}},
		{"DELETE", "/api/v2/users/me/tokens/ro", nil},
		{"POST", "/api/v2/users/logout", nil},
	} {
		r := ts.want(ts.do(c.method, c.path, read, c.body), 403)
		if !strings.Contains(r.errResp(t).Message, "read scope") {
			t.Errorf("%s %s: %s", c.method, c.path, r.body)
		}
	}
	var secrets []SecretResponse
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", p.alice, nil), 200).json(t, &secrets)
	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if len(secrets) != 1 || len(list) != 1 {
		t.Fatalf("a read token changed something: %d secrets, %d tokens", len(secrets), len(list))
	}

	// A write token of one day may create tokens of up to one day.
	day := ts.createToken(p.alice, map[string]any{"name": "day", "lifetime": "1d"}).Token
	r := ts.want(ts.do("POST", "/api/v2/users/me/tokens", day, map[string]any{"name": "longer", "lifetime": "2d"}), 400)
	if e := r.errResp(t); len(e.Validations) != 1 || e.Validations[0].Field != "lifetime" || !strings.Contains(e.Message, "cannot outlive") {
		t.Fatalf("a token outliving its creator: %s", r.body)
	}
	ts.want(ts.do("POST", "/api/v2/users/me/tokens", day, map[string]any{"name": "default"}), 400) // 30d > 1d
	ts.want(ts.do("POST", "/api/v2/users/me/tokens", day, map[string]any{"name": "shorter", "lifetime": "12h"}), 201)
}

// An expired token gets 401 everywhere and is listed as expired.
func TestAPITokenExpires(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var skew atomic.Int64
	ts, _ := newTokenTestServer(t, func(c *Config) {
		c.Now = func() time.Time { return now.Add(time.Duration(skew.Load())) }
	})
	p := ts.setup()
	tok := ts.createToken(p.alice, map[string]any{"name": "short", "lifetime": "1h"}).Token
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200)
	skew.Store(int64(59 * time.Minute))
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200)
	skew.Store(int64(time.Hour))
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 401)
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 401)
	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if len(list) != 1 || !list[0].Expired {
		t.Fatalf("expired token listed as %+v", list)
	}
}

// Admins list every user's tokens and revoke them; a member sees only
// their own, and other users do not exist for them.
func TestAPITokensAdmin(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	p := ts.setup()
	aliceTok := ts.createToken(p.alice, map[string]any{"name": "ci"}).Token
	ts.createToken(p.bob, map[string]any{"name": "laptop", "scope": "read"})
	ts.createToken(p.admin, map[string]any{"name": "ops"})

	var all []APITokenResponse
	r := ts.want(ts.do("GET", "/api/v2/tokens", p.admin, nil), 200)
	r.json(t, &all)
	if identity.TokenPattern.Match(r.body) {
		t.Fatal("the admin list shows a token")
	}
	got := []string{}
	for _, tk := range all {
		got = append(got, tk.Username+"/"+tk.Name)
	}
	if strings.Join(got, " ") != "alice/ci bob/laptop root/ops" {
		t.Fatalf("all tokens: %v", got)
	}
	ts.want(ts.do("GET", "/api/v2/tokens", p.alice, nil), 403)
	ts.want(ts.do("GET", "/api/v2/tokens", aliceTok, nil), 403)

	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/alice/tokens", p.admin, nil), 200).json(t, &list)
	if len(list) != 1 || list[0].Username != "alice" {
		t.Fatalf("admin's view of alice's tokens: %+v", list)
	}
	// A member: 404 for another user, by name or ID, to list or revoke.
	for _, ref := range []string{"alice", p.aliceID} {
		ts.want(ts.do("GET", "/api/v2/users/"+ref+"/tokens", p.bob, nil), 404)
		ts.want(ts.do("DELETE", "/api/v2/users/"+ref+"/tokens/ci", p.bob, nil), 404)
	}
	// Nobody creates a token for someone else, not even an admin.
	r = ts.want(ts.do("POST", "/api/v2/users/alice/tokens", p.admin, map[string]any{"name": "mine-now"}), 403)
	if !strings.Contains(r.errResp(t).Message, "own user") {
		t.Fatalf("admin create for alice: %s", r.body)
	}
	ts.want(ts.do("POST", "/api/v2/users/alice/tokens", p.bob, map[string]any{"name": "x"}), 404)
	ts.want(ts.do("GET", "/api/v2/users/me", aliceTok, nil), 200)
	// The admin revokes alice's token: it stops at once.
	ts.want(ts.do("DELETE", "/api/v2/users/alice/tokens/ci", p.admin, nil), 204)
	ts.want(ts.do("GET", "/api/v2/users/me", aliceTok, nil), 401)
	ts.want(ts.do("DELETE", "/api/v2/users/alice/tokens/ci", p.admin, nil), 404)
	if !strings.Contains(ts.logs.String(), `"API token revoked"`) {
		t.Error("the revocation is not logged")
	}
}

// Uses are recorded in memory and written in one batch: many requests
// cost no write until the recorder flushes, and the last use (time and
// client address) is then listed. Uses since the last flush are written
// at shutdown.
func TestAPITokenLastUseIsCoalesced(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var skew atomic.Int64
	ts, counter := newTokenTestServer(t, func(c *Config) {
		c.Now = func() time.Time { return now.Add(time.Duration(skew.Load())) }
	})
	p := ts.setup()
	tok := ts.createToken(p.alice, map[string]any{"name": "ci"}).Token
	other := ts.createToken(p.alice, map[string]any{"name": "other"}).Token
	for i := range 25 {
		skew.Store(int64(time.Duration(i) * time.Second))
		ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 200)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", other, nil), 200)
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200) // a session: no use to record
	if calls, _ := counter.counts(); calls != 0 {
		t.Fatalf("%d writes for 26 requests before the flush, want 0", calls)
	}
	var list []APITokenResponse
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if list[0].LastUsedAt != nil {
		t.Fatalf("a use was written before the flush: %+v", list[0])
	}
	if err := ts.api.uses.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, uses := counter.counts(); calls != 1 || uses != 2 {
		t.Fatalf("flush: %d writes of %d uses, want 1 of 2", calls, uses)
	}
	ts.want(ts.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if list[0].Name != "ci" || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(now.Add(24*time.Second)) ||
		list[0].LastUsedAddr != "127.0.0.1" {
		t.Fatalf("last use of ci: %+v", list[0])
	}
	// A use, then shutdown: written by the server's last flush.
	skew.Store(int64(time.Hour))
	ts.want(ts.do("GET", "/api/v2/users/me", other, nil), 200)
	if err := ts.Server.Close(); err != nil {
		t.Fatal(err)
	}
	if calls, _ := counter.counts(); calls != 2 {
		t.Fatalf("%d writes after shutdown, want 2", calls)
	}
}

// A user holds at most identity.MaxTokensPerUser tokens: the next create
// is a 400 saying what to do, and a revoke makes room.
func TestAPITokensPerUserCap(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	p := ts.setup()
	for i := range identity.MaxTokensPerUser {
		ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, map[string]any{"name": "t" + strconv.Itoa(i), "lifetime": "1h"}), 201)
	}
	r := ts.want(ts.do("POST", "/api/v2/users/me/tokens", p.alice, map[string]any{"name": "one-more"}), 400)
	if !strings.Contains(r.errResp(t).Message, "revoke one") {
		t.Fatalf("over the cap: %s", r.body)
	}
	ts.createToken(p.bob, map[string]any{"name": "bob-is-not-capped-by-alice"})
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/t0", p.alice, nil), 204)
	ts.createToken(p.alice, map[string]any{"name": "one-more"})
}
