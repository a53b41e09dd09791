package controlplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/courierhq/courier/inject"
)

func secretBody(name string, extra ...string) map[string]string {
	b := map[string]string{"name": name, "value": canary}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i]] = extra[i+1]
	}
	return b
}

func TestSecretCRUD(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	base := "/api/v2/users/me/secrets"

	var list []SecretResponse
	r := ts.want(ts.do("GET", base, p.alice, nil), 200)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("empty list is %s, want []", r.body)
	}

	var s SecretResponse
	r = ts.want(ts.do("POST", base, p.alice, secretBody("github-token", "description", "for gh", "env_name", "GITHUB_TOKEN")), 201)
	r.json(t, &s)
	if s.Name != "github-token" || s.EnvName != "GITHUB_TOKEN" || s.Description != "for gh" || s.ID == "" || s.CreatedAt.IsZero() {
		t.Fatalf("created %+v", s)
	}
	// Every field present, "" when empty, never a value.
	var raw map[string]any
	r.json(t, &raw)
	for _, f := range []string{"created_at", "description", "env_name", "file_path", "id", "name", "updated_at", "enabled"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("field %q missing from %s", f, r.body)
		}
	}
	if len(raw) != 8 || raw["enabled"] != true {
		t.Errorf("response has %d fields, want 8, enabled true: %s", len(raw), r.body)
	}

	// The same secret by username and by ID, and via list.
	for _, u := range []string{"me", "alice", p.aliceID} {
		var got SecretResponse
		ts.want(ts.do("GET", "/api/v2/users/"+u+"/secrets/github-token", p.alice, nil), 200).json(t, &got)
		if !sameSecret(got, s) {
			t.Fatalf("get via %s = %+v, want %+v", u, got, s)
		}
	}
	ts.want(ts.do("GET", base, p.alice, nil), 200).json(t, &list)
	if len(list) != 1 || !sameSecret(list[0], s) {
		t.Fatalf("list %+v", list)
	}

	// PATCH: absent stays, "" clears, value replaces, targets rename.
	var u SecretResponse
	ts.want(ts.do("PATCH", base+"/github-token", p.alice, map[string]string{"file_path": "~/.config/gh/token"}), 200).json(t, &u)
	if u.EnvName != "GITHUB_TOKEN" || u.Description != "for gh" || u.FilePath != "~/.config/gh/token" {
		t.Fatalf("after file patch %+v", u)
	}
	ts.want(ts.do("PATCH", base+"/github-token", p.alice, map[string]string{"env_name": "GH_TOKEN", "description": ""}), 200).json(t, &u)
	if u.EnvName != "GH_TOKEN" || u.Description != "" || u.FilePath != "~/.config/gh/token" || u.ID != s.ID {
		t.Fatalf("after env rename %+v", u)
	}
	ts.want(ts.do("PATCH", base+"/github-token", p.alice, map[string]string{"value": canary + "2"}), 200).json(t, &u)
	if u.UpdatedAt.Before(s.UpdatedAt) || !u.CreatedAt.Equal(s.CreatedAt) {
		t.Fatalf("timestamps %+v", u)
	}
	ts.want(ts.do("PATCH", base+"/github-token", p.alice, map[string]string{"env_name": "", "file_path": ""}), 200).json(t, &u)
	if u.EnvName != "" || u.FilePath != "" {
		t.Fatalf("after clear %+v", u)
	}
	// The value is stored sealed (here: plainly) and never returned.
	stored, err := ts.store.GetSecret(t.Context(), p.aliceID, "github-token")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ts.sealer.Open(stored.Value, sealAD(p.aliceID, "github-token")); string(got) != canary+"2" {
		t.Fatal("stored value was not replaced")
	}

	ts.want(ts.do("DELETE", base+"/github-token", p.alice, nil), 204)
	ts.want(ts.do("GET", base+"/github-token", p.alice, nil), 404)
	ts.want(ts.do("DELETE", base+"/github-token", p.alice, nil), 404)
	ts.want(ts.do("PATCH", base+"/github-token", p.alice, map[string]string{"value": "x"}), 404)
}

func TestSecretErrors(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	p := ts.setup()
	base := "/api/v2/users/me/secrets"
	ts.want(ts.do("POST", base, p.alice, secretBody("taken", "env_name", "TAKEN_ENV", "file_path", "/tmp/taken")), 201)

	cases := []struct {
		name, method, path, ct string
		body                   any
		status                 int
		field                  string // expected first validation field, if any
		msg                    string // expected in message
	}{
		{"missing name", "POST", base, "application/json", map[string]string{"value": canary}, 400, "name", ""},
		{"missing value", "POST", base, "application/json", map[string]string{"name": "x"}, 400, "value", ""},
		{"name with slash", "POST", base, "application/json", secretBody("../etc/passwd"), 400, "name", ""},
		{"reserved env", "POST", base, "application/json", secretBody("p", "env_name", "PATH"), 400, "env_name", "reserved"},
		{"env name too long", "POST", base, "application/json", secretBody("p", "env_name", strings.Repeat("A", 257)), 400, "env_name", "256"},
		{"relative path", "POST", base, "application/json", secretBody("p", "file_path", "etc/passwd"), 400, "file_path", ""},
		{"tilde user", "POST", base, "application/json", secretBody("p", "file_path", "~root/x"), 400, "file_path", ""},
		{"path too long", "POST", base, "application/json", secretBody("p", "file_path", "/"+strings.Repeat("a", 4097)), 400, "file_path", ""},
		{"NUL in env value", "POST", base, "application/json", map[string]string{"name": "n", "value": "a\x00b", "env_name": "N"}, 400, "value", "NUL"},
		{"value too big", "POST", base, "application/json", map[string]string{"name": "n", "value": strings.Repeat("v", 24*1024+1)}, 400, "value", "over"},
		{"unknown field", "POST", base, "application/json", map[string]string{"name": "n", "value": canary, "valeu": "x"}, 400, "valeu", "unknown field"},
		{"wrong type", "POST", base, "application/json", `{"name": 5, "value": "x"}`, 400, "name", ""},
		{"two objects", "POST", base, "application/json", `{"name":"a","value":"b"}{}`, 400, "", "exactly one"},
		{"syntax error", "POST", base, "application/json", `{"name":`, 400, "", "not valid JSON"},
		{"form content type", "POST", base, "application/x-www-form-urlencoded", "name=a&value=b", 415, "", "application/json"},
		{"text content type", "PATCH", base + "/taken", "text/plain", `{"value":"x"}`, 415, "", ""},
		{"json with charset", "POST", base, "application/json; charset=utf-8", secretBody("charset"), 201, "", ""},
		{"no content type", "POST", base, "", secretBody("noct"), 201, "", ""},
		{"body too large", "POST", base, "application/json", `{"name":"big","value":"` + strings.Repeat("x", 65<<10) + `"}`, 413, "", "limit"},
		{"duplicate name", "POST", base, "application/json", secretBody("taken"), 409, "name", ""},
		{"duplicate env", "POST", base, "application/json", secretBody("other", "env_name", "TAKEN_ENV"), 409, "env_name", ""},
		{"duplicate file", "POST", base, "application/json", secretBody("other", "file_path", "/tmp/taken"), 409, "file_path", ""},
		{"empty patch", "PATCH", base + "/taken", "application/json", `{}`, 400, "", "nothing to update"},
		{"null patch", "PATCH", base + "/taken", "application/json", `{"value":null}`, 400, "", "nothing to update"},
		{"patch empty value", "PATCH", base + "/taken", "application/json", map[string]string{"value": ""}, 400, "value", ""},
		{"patch bad env", "PATCH", base + "/taken", "application/json", map[string]string{"env_name": "1BAD"}, 400, "env_name", ""},
		{"patch name field", "PATCH", base + "/taken", "application/json", map[string]string{"name": "renamed"}, 400, "name", "unknown field"},
		{"patch unknown secret", "PATCH", base + "/nope", "application/json", map[string]string{"value": "x"}, 404, "", "not found"},
		{"get unknown secret", "GET", base + "/nope", "", nil, 404, "", "not found"},
		{"unknown user", "GET", "/api/v2/users/nobody/secrets", "", nil, 404, "", "user not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ts.want(ts.doCT(c.method, c.path, p.alice, c.ct, c.body), c.status)
			if c.status < 300 {
				return
			}
			e := r.errResp(t)
			if c.field != "" && (len(e.Validations) == 0 || e.Validations[0].Field != c.field) {
				t.Fatalf("validations %+v, want field %q (message %q)", e.Validations, c.field, e.Message)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q does not contain %q", e.Message, c.msg)
			}
		})
	}
	// R12: none of the refused requests changed anything.
	var list []SecretResponse
	ts.want(ts.do("GET", base, p.alice, nil), 200).json(t, &list)
	if len(list) != 3 {
		t.Fatalf("%d secrets after refused requests, want 3 (taken, charset, noct)", len(list))
	}
}

func TestSecretLimits(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Limits = inject.Limits{MaxSecrets: 3, MaxTotalBytes: 100, MaxEnvBytes: 40, MaxSecretBytes: 60}
	})
	p := ts.setup()
	base := "/api/v2/users/me/secrets"
	val := func(n int) string { return strings.Repeat("v", n) }
	ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "a", "value": val(30), "env_name": "A"}), 201)

	for _, c := range []struct {
		name string
		body map[string]string
		cap  string
	}{
		{"per secret", map[string]string{"name": "b", "value": val(61)}, "stored bytes per secret value cap is 60 bytes; this change would make it 61 (1 over)"},
		{"env bytes", map[string]string{"name": "b", "value": val(20), "env_name": "B"}, "env-injected value bytes per user cap is 40 bytes; this change would make it 50 (10 over)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := ts.want(ts.do("POST", base, p.alice, c.body), 400).errResp(t)
			if !strings.Contains(e.Message, c.cap) {
				t.Fatalf("message %q does not contain %q", e.Message, c.cap)
			}
		})
	}
	// A PATCH is checked too: growing an env secret over the env cap.
	e := ts.want(ts.do("PATCH", base+"/a", p.alice, map[string]string{"value": val(41)}), 400).errResp(t)
	if !strings.Contains(e.Message, "env-injected") {
		t.Fatalf("patch over env cap: %q", e.Message)
	}
	ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "b", "value": val(60)}), 201)
	e = ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "c", "value": val(11)}), 400).errResp(t)
	if !strings.Contains(e.Message, "value bytes per user cap is 100 bytes; this change would make it 101 (1 over)") {
		t.Fatalf("total cap message %q", e.Message)
	}
	// Moving b to env would exceed the env cap.
	ts.want(ts.do("PATCH", base+"/b", p.alice, map[string]string{"env_name": "B"}), 400)
	ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "c", "value": val(1)}), 201)
	e = ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "d", "value": val(1)}), 400).errResp(t)
	if !strings.Contains(e.Message, "secrets per user cap is 3 secrets; this change would make it 4 (1 over)") {
		t.Fatalf("count cap message %q", e.Message)
	}
}

func TestFileDeliveryDisabled(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.DisableSecretFilePath = true })
	p := ts.setup()
	base := "/api/v2/users/me/secrets"
	e := ts.want(ts.do("POST", base, p.alice, secretBody("f", "file_path", "~/.netrc")), 400).errResp(t)
	if !strings.Contains(e.Message, "disabled") || e.Validations[0].Field != "file_path" {
		t.Fatalf("create: %+v", e)
	}
	ts.want(ts.do("POST", base, p.alice, secretBody("f", "env_name", "F")), 201)
	e = ts.want(ts.do("PATCH", base+"/f", p.alice, map[string]string{"file_path": "~/.netrc"}), 400).errResp(t)
	if !strings.Contains(e.Message, "disabled") {
		t.Fatalf("update: %+v", e)
	}
	ts.want(ts.do("PATCH", base+"/f", p.alice, map[string]string{"file_path": ""}), 200)
	e = ts.want(ts.do("POST", base+"/batch", p.alice, map[string]string{"format": "json",
		"content": `[{"name":"g","value":"x","file_path":"/etc/g"}]`}), 400).errResp(t)
	if !strings.Contains(e.Message, "disabled") || !strings.Contains(e.Message, `entry 1 ("g")`) {
		t.Fatalf("batch: %+v", e)
	}
}

// TestSecretAuthorization runs every secret route as owner, other user,
// admin, no token, bad token and revoked token.
func TestSecretAuthorization(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	revoked := ts.login("alice", testPassword)
	ts.want(ts.do("POST", "/api/v2/users/logout", revoked, nil), 204)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("s", "env_name", "S")), 201)

	type route struct {
		name, method, path string
		body               func(i int) any
		ok                 int
	}
	base := "/api/v2/users/alice/secrets"
	routes := []route{
		{"list", "GET", base, nil, 200},
		{"get", "GET", base + "/s", nil, 200},
		{"create", "POST", base, func(i int) any { return secretBody(fmt.Sprintf("new%d", i)) }, 201},
		{"batch", "POST", base + "/batch", func(i int) any {
			return map[string]string{"format": "env", "content": fmt.Sprintf("BATCH_%d=%s\n", i, canary)}
		}, 201},
		{"update", "PATCH", base + "/s", func(int) any { return map[string]string{"description": "d"} }, 200},
		{"delete", "DELETE", base + "/s", nil, 204},
	}
	callers := []struct {
		name, token string
		// status for read routes and write routes; 0 means the route's ok.
		read, write int
	}{
		{"owner", p.alice, 0, 0},
		{"other user", p.bob, 404, 404},
		{"admin", p.admin, 0, 403},
		{"no token", "", 401, 401},
		{"bad token", "not-a-real-token", 401, 401},
		{"revoked token", revoked, 401, 401},
	}
	i := 0
	for _, c := range callers {
		for _, rt := range routes {
			t.Run(c.name+"/"+rt.name, func(t *testing.T) {
				i++
				want := c.write
				if rt.method == "GET" {
					want = c.read
				}
				if want == 0 {
					want = rt.ok
				}
				if rt.name == "delete" && c.name == "owner" {
					defer func() { ts.want(ts.do("POST", base, p.alice, secretBody("s", "env_name", "S")), 201) }()
				}
				var body any
				if rt.body != nil {
					body = rt.body(i)
				}
				r := ts.want(ts.do(rt.method, rt.path, c.token, body), want)
				if want >= 400 {
					r.errResp(t)
				}
			})
		}
	}
	// Admin reads show metadata only.
	var got SecretResponse
	ts.want(ts.do("GET", base+"/s", p.admin, nil), 200).json(t, &got)
	if got.Name != "s" {
		t.Fatalf("admin read %+v", got)
	}
}

// TestConcurrentCreatesRespectCaps fires 100 parallel creates at one user;
// the count cap (50) and byte cap hold because the check runs inside the
// store's write transaction.
func TestConcurrentCreatesRespectCaps(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Limits = inject.DefaultLimits()
		c.Limits.MaxTotalBytes = 40 * 1000 // 40 secrets of 1000 bytes
	})
	p := ts.setup()
	for _, tc := range []struct {
		name, user, token string
		size, want        int
	}{
		{"count cap", "alice", p.alice, 10, 50},
		{"byte cap", "bob", p.bob, 1000, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statuses := make(chan int, 100)
			start := make(chan struct{})
			done := make(chan struct{})
			for i := range 100 {
				go func() {
					defer func() { done <- struct{}{} }()
					<-start
					b, _ := json.Marshal(map[string]string{"name": fmt.Sprintf("s%03d", i), "value": strings.Repeat("v", tc.size)})
					req, _ := http.NewRequest("POST", ts.URL()+"/api/v2/users/me/secrets", strings.NewReader(string(b)))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(HeaderSessionToken, tc.token)
					res, err := ts.client.Do(req)
					if err != nil {
						statuses <- -1
						return
					}
					res.Body.Close()
					statuses <- res.StatusCode
				}()
			}
			close(start)
			for range 100 {
				<-done
			}
			close(statuses)
			created := 0
			for s := range statuses {
				switch s {
				case 201:
					created++
				case 400:
				default:
					t.Errorf("unexpected status %d", s)
				}
			}
			var list []SecretResponse
			ts.want(ts.do("GET", "/api/v2/users/me/secrets", tc.token, nil), 200).json(t, &list)
			if created != tc.want || len(list) != tc.want {
				t.Fatalf("created %d, stored %d, want exactly %d", created, len(list), tc.want)
			}
		})
	}
}

// sameSecret compares metadata, timestamps by instant.
func sameSecret(a, b SecretResponse) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description &&
		a.EnvName == b.EnvName && a.FilePath == b.FilePath &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}
