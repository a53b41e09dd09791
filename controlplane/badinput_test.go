package controlplane

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// serverState is everything a refused request must leave as it was: users,
// workspaces, and every user's stored secrets (values included).
func (ts *testServer) serverState(p people) string {
	ts.t.Helper()
	ctx := ts.t.Context()
	var b strings.Builder
	us, err := ts.store.ListUsers(ctx)
	if err != nil {
		ts.t.Fatal(err)
	}
	for _, u := range us {
		fmt.Fprintf(&b, "user %s %s %s %s\n", u.ID, u.Username, u.Email, u.Role)
	}
	ws, err := ts.store.ListWorkspaces(ctx, "")
	if err != nil {
		ts.t.Fatal(err)
	}
	for _, w := range ws {
		fmt.Fprintf(&b, "workspace %s %s %s %v\n", w.ID, w.Name, w.OwnerID, w.Template)
	}
	for _, id := range []string{p.adminID, p.aliceID, p.bobID} {
		b.WriteString(ts.snapshot(id))
	}
	return b.String()
}

// TestBadInputEveryEndpoint sends every kind of broken body to every REST
// endpoint that reads one: each is a 4xx whose message names the problem,
// never quoting a value, and nothing stored changes (R12).
func TestBadInputEveryEndpoint(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	p := ts.setup()
	secrets := "/api/v2/users/me/secrets"
	ts.want(ts.do("POST", secrets, p.alice, secretBody("base", "env_name", "BASE", "file_path", "~/base")), 201)
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201)

	endpoints := []struct {
		name, method, path, token, good string
	}{
		{"first user", "POST", "/api/v2/users/first", "", `{"username":"x","email":"x@example.com","password":"` + testPassword + `"}`},
		{"login", "POST", "/api/v2/users/login", "", `{"username":"alice","password":"` + canary + `"}`},
		{"create user", "POST", "/api/v2/users", p.admin, `{"username":"carol","email":"carol@example.com","password":"` + canary + `"}`},
		{"create workspace", "POST", "/api/v2/workspaces", p.admin, `{"name":"ws","owner":"alice","template":{"env":{"A":"` + canary + `"}}}`},
		{"create secret", "POST", secrets, p.alice, `{"name":"n","value":"` + canary + `","file_path":"~/n"}`},
		{"batch", "POST", secrets + "/batch", p.alice, `{"format":"env","content":"A=` + canary + `"}`},
		{"update secret", "PATCH", secrets + "/base", p.alice, `{"value":"` + canary + `"}`},
	}
	firstKey := func(good string) string { return good[2 : 2+strings.IndexByte(good[2:], '"')] }
	faults := []struct {
		name   string
		body   func(good string) string
		status int
		msg    func(good string) string // what the message must say
	}{
		{"truncated", func(g string) string { return g[:len(g)-3] }, 400, fixed("not valid JSON")},
		{"garbage", func(string) string { return "\x01\x02<html>" }, 400, fixed("not valid JSON")},
		{"empty", func(string) string { return "" }, 400, fixed("empty")},
		{"array for object", func(g string) string { return "[" + g + "]" }, 400, fixed("must be a JSON object, not a JSON array")},
		{"number for object", func(string) string { return "42" }, 400, fixed("must be a JSON object, not a JSON number")},
		{"wrong field type", func(g string) string { return `{"` + firstKey(g) + `":{"x":1}}` }, 400, fixed("wrong JSON type")},
		{"invalid UTF-8", func(g string) string { return strings.Replace(g, `":"`, "\":\"\xff\xfe", 1) }, 400, fixed("not valid UTF-8")},
		{"lone surrogate", func(g string) string { return strings.Replace(g, `":"`, `":"\udfff`, 1) }, 400, fixed("surrogate")},
		{"raw NUL in string", func(g string) string { return strings.Replace(g, `":"`, "\":\"\x00", 1) }, 400, fixed("not valid JSON")},
		{"repeated key", func(g string) string { return `{"` + firstKey(g) + `":"x",` + g[1:] }, 400,
			func(g string) string { return `duplicate key "` + firstKey(g) + `"` }},
		{"repeated key in other case", func(g string) string { return `{"` + strings.ToUpper(firstKey(g)) + `":"x",` + g[1:] }, 400,
			fixed("duplicate key")},
		{"unknown field", func(g string) string { return `{"zzz":1,` + g[1:] }, 400, fixed(`unknown field "zzz"`)},
		{"two values", func(g string) string { return g + `{}` }, 400, fixed("exactly one")},
		{"oversize", func(g string) string { return `{"pad":"` + strings.Repeat("p", 65<<10) + `",` + g[1:] }, 413, fixed("limit")},
	}
	before := ts.serverState(p)
	for _, e := range endpoints {
		for _, f := range faults {
			t.Run(e.name+"/"+f.name, func(t *testing.T) {
				r := ts.want(ts.do(e.method, e.path, e.token, f.body(e.good)), f.status)
				if m := r.errResp(t).Message; !strings.Contains(m, f.msg(e.good)) {
					t.Fatalf("message %q does not say %q", m, f.msg(e.good))
				} else if strings.Contains(m, "controlplane.") || strings.Contains(m, "map[") || strings.Contains(m, "[]") {
					t.Fatalf("message %q shows a Go type", m)
				}
			})
		}
	}
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, `{"name":"ws","owner":"alice","template":{"env":{"K":"1","K":"2"}}}`), 400)
	ts.wantSnapshotState(p, before)

	// Names in the URL: too long, not a name, percent-encoded junk.
	for _, path := range []string{secrets + "/" + strings.Repeat("n", 65), secrets + "/%FF%FE", secrets + "/..%2Fbase",
		secrets + "/%00", "/api/v2/users/" + strings.Repeat("u", 300) + "/secrets"} {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = map[string]string{"value": canary}
			}
			r := ts.do(m, path, p.alice, body)
			if r.status < 400 || r.status >= 500 {
				t.Errorf("%s %s: status %d", m, path, r.status)
			}
		}
	}
	ts.wantSnapshotState(p, before)
}

func fixed(s string) func(string) string { return func(string) string { return s } }

func (ts *testServer) wantSnapshotState(p people, before string) {
	ts.t.Helper()
	if after := ts.serverState(p); after != before {
		ts.t.Fatalf("refused requests changed the stored state (%d bytes before, %d after)", len(before), len(after))
	}
}

// TestFieldLimits: every field at its limit is accepted and one byte over
// is a 400 naming the field and the limit, changing nothing.
func TestFieldLimits(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	secrets := "/api/v2/users/me/secrets"
	cases := []struct {
		field, at, over, msg string
	}{
		{"name", strings.Repeat("n", 64), strings.Repeat("n", 65), "65 bytes; the maximum is 64"},
		{"env_name", "E" + strings.Repeat("N", 255), "E" + strings.Repeat("N", 256), "257 bytes; the env name cap is 256 bytes (1 over)"},
		// 32 names of 127 bytes: the whole path at its cap, each name under
		// the 255 bytes of a name.
		{"file_path", strings.Repeat("/"+strings.Repeat("p", 127), 32), strings.Repeat("/"+strings.Repeat("p", 127), 32) + "p", "4097 bytes; the maximum is 4096"},
		{"description", strings.Repeat("d", 1024), strings.Repeat("d", 1025), "1025 bytes; the maximum is 1024"},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			body := func(v string) map[string]string {
				b := map[string]string{"name": "lim", "value": canary}
				b[c.field] = v
				return b
			}
			before := ts.snapshot(p.aliceID)
			e := ts.want(ts.do("POST", secrets, p.alice, body(c.over)), 400).errResp(t)
			if len(e.Validations) == 0 || e.Validations[0].Field != c.field || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("over the limit: %+v", e)
			}
			ts.wantSnapshot(p.aliceID, before)
			var s SecretResponse
			ts.want(ts.do("POST", secrets, p.alice, body(c.at)), 201).json(t, &s)
			if c.field != "name" {
				before = ts.snapshot(p.aliceID)
				e = ts.want(ts.do("PATCH", secrets+"/lim", p.alice, map[string]string{c.field: c.over}), 400).errResp(t)
				if !strings.Contains(e.Message, c.msg) {
					t.Fatalf("PATCH over the limit: %q", e.Message)
				}
				ts.wantSnapshot(p.aliceID, before)
			}
			ts.want(ts.do("DELETE", secrets+"/"+s.Name, p.alice, nil), http.StatusNoContent)
		})
	}
}

// TestNULInEveryField: a NUL (sent as \u0000) is refused in every text
// field with a 400 naming the field, on create and PATCH, and accepted in
// the value of a file-only secret, which is bytes.
func TestNULInEveryField(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	secrets := "/api/v2/users/me/secrets"
	ts.want(ts.do("POST", secrets, p.alice, secretBody("base", "file_path", "~/base")), 201)
	before := ts.snapshot(p.aliceID)
	for _, field := range []string{"name", "env_name", "file_path", "description"} {
		body := map[string]string{"name": "n", "value": canary}
		body[field] = "a\x00b"
		e := ts.want(ts.do("POST", secrets, p.alice, body), 400).errResp(t)
		if len(e.Validations) == 0 || e.Validations[0].Field != field {
			t.Errorf("create, NUL in %s: %+v", field, e)
		}
		if field == "name" {
			continue
		}
		e = ts.want(ts.do("PATCH", secrets+"/base", p.alice, map[string]string{field: "a\x00b"}), 400).errResp(t)
		if len(e.Validations) == 0 || e.Validations[0].Field != field {
			t.Errorf("PATCH, NUL in %s: %+v", field, e)
		}
	}
	ts.wantSnapshot(p.aliceID, before)
	ts.want(ts.do("PATCH", secrets+"/base", p.alice, map[string]string{"value": canary + "\x00"}), 200)
}

// TestOversizeSecretSaysTheCap: a secret whose body is over the request
// limit is told the per-secret cap too, which is what the client must
// meet, not only the body's.
func TestOversizeSecretSaysTheCap(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	p := ts.setup()
	e := ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "big",
		"value": strings.Repeat("v", 70<<10)}), http.StatusRequestEntityTooLarge).errResp(t)
	if !strings.Contains(e.Message, "65536-byte limit") || !strings.Contains(e.Message, fmt.Sprintf("at most %d bytes", ts.cfg.Limits.MaxSecretBytes)) {
		t.Fatalf("message %q", e.Message)
	}
}
