package controlplane

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFirstUser(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"short password", map[string]string{"username": "ada", "email": "ada@example.com", "password": "1234567"}, 400, "password"},
		{"bad email", map[string]string{"username": "ada", "email": "not-an-email", "password": testPassword}, 400, "email"},
		{"username me", map[string]string{"username": "me", "email": "ada@example.com", "password": testPassword}, 400, "username"},
		{"username with slash", map[string]string{"username": "../etc", "email": "ada@example.com", "password": testPassword}, 400, "username"},
		{"unknown field", map[string]any{"username": "ada", "email": "ada@example.com", "password": testPassword, "admin": true}, 400, "admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ts.want(ts.do("POST", "/api/v2/users/first", "", c.body), c.status)
			e := r.errResp(t)
			if len(e.Validations) == 0 || e.Validations[0].Field != c.field {
				t.Fatalf("validations %+v, want field %q", e.Validations, c.field)
			}
		})
	}
	var u UserResponse
	ts.want(ts.do("POST", "/api/v2/users/first", "", map[string]string{
		"username": "ada", "email": "ada@example.com", "password": testPassword}), 201).json(t, &u)
	if !u.Admin || u.Username != "ada" || u.ID == "" || u.CreatedAt.IsZero() {
		t.Fatalf("first user %+v", u)
	}
	// No field but login_type (whose value may be "password") mentions a
	// password or a hash.
	var fields map[string]any
	ts.want(ts.do("GET", "/api/v2/users/me", ts.login("ada", testPassword), nil), 200).json(t, &fields)
	for k, v := range fields {
		if s := strings.ToLower(fmt.Sprint(k, v)); k != "login_type" && (strings.Contains(s, "password") || strings.Contains(s, "hash")) {
			t.Fatalf("user response field %s mentions a password", k)
		}
	}
	r := ts.want(ts.do("POST", "/api/v2/users/first", "", map[string]string{
		"username": "eve", "email": "eve@example.com", "password": testPassword}), http.StatusConflict)
	if !strings.Contains(r.errResp(t).Message, "first user already exists") {
		t.Fatalf("message %q", r.errResp(t).Message)
	}
}

func TestLoginLogout(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	for _, c := range []struct {
		name   string
		body   any
		status int
	}{
		{"wrong password", map[string]string{"username": "alice", "password": "wrong password"}, 401},
		{"unknown user", map[string]string{"username": "mallory", "password": testPassword}, 401},
		{"both username and email", map[string]string{"username": "alice", "email": "alice@example.com", "password": testPassword}, 400},
		{"neither", map[string]string{"password": testPassword}, 400},
		{"empty body", "", 400},
		{"not json", "username=alice", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts.want(ts.do("POST", "/api/v2/users/login", "", c.body), c.status).errResp(t)
		})
	}
	// Login by e-mail, case-insensitively.
	var lr LoginResponse
	ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"email": "ALICE@example.com", "password": testPassword}), 201).json(t, &lr)
	var me UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", lr.SessionToken, nil), 200).json(t, &me)
	if me.ID != p.aliceID {
		t.Fatalf("me = %+v", me)
	}
	ts.want(ts.do("POST", "/api/v2/users/logout", lr.SessionToken, nil), 204)
	ts.want(ts.do("GET", "/api/v2/users/me", lr.SessionToken, nil), 401)
	// The other session of alice is untouched.
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
}

func TestTokenHeaders(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	for _, c := range []struct {
		name, header, value string
		status              int
	}{
		{"coder header", "Coder-Session-Token", p.alice, 200},
		{"courier header", "Courier-Session-Token", p.alice, 200},
		{"bearer", "Authorization", "Bearer " + p.alice, 200},
		{"bearer lower case", "Authorization", "bearer " + p.alice, 200},
		{"basic auth", "Authorization", "Basic " + p.alice, 401},
		{"bad token", "Coder-Session-Token", "AAAA" + p.alice[4:], 401},
		{"huge token", "Coder-Session-Token", strings.Repeat("a", 5000), 401},
		{"none", "X-Nothing", "x", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL()+"/api/v2/users/me", nil)
			req.Header.Set(c.header, c.value)
			res, err := ts.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
		})
	}
}

func TestSessionExpires(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var skew atomic.Int64 // added to now, in nanoseconds
	ts := newTestServer(t, func(c *Config) {
		c.Now = func() time.Time { return now.Add(time.Duration(skew.Load())) }
		c.SessionLifetime = time.Hour
	})
	p := ts.setup()
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
	skew.Store(int64(time.Hour + time.Second))
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 401)
}

func TestUsersAdmin(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	// Non-admins may not create or list users.
	ts.want(ts.do("POST", "/api/v2/users", p.alice, map[string]any{"username": "carol", "email": "c@example.com", "password": testPassword}), 403)
	ts.want(ts.do("GET", "/api/v2/users", p.alice, nil), 403)
	ts.want(ts.do("GET", "/api/v2/users", "", nil), 401)
	// Duplicates are 409 naming the field.
	r := ts.want(ts.do("POST", "/api/v2/users", p.admin, map[string]any{"username": "ALICE", "email": "x@example.com", "password": testPassword}), 409)
	if e := r.errResp(t); len(e.Validations) != 1 || e.Validations[0].Field != "username" {
		t.Fatalf("conflict %+v", e)
	}
	var created UserResponse
	ts.want(ts.do("POST", "/api/v2/users", p.admin, map[string]any{"username": "carol", "email": "c@example.com", "password": testPassword, "admin": true}), 201).json(t, &created)
	if !created.Admin {
		t.Fatal("admin flag lost")
	}
	var all []UserResponse
	ts.want(ts.do("GET", "/api/v2/users", p.admin, nil), 200).json(t, &all)
	if len(all) != 4 {
		t.Fatalf("%d users, want 4", len(all))
	}
	// GET /users/{user}: me, ID, username; others hidden from non-admins.
	for _, c := range []struct {
		name, token, ref string
		status           int
		wantID           string
	}{
		{"me", p.alice, "me", 200, p.aliceID},
		{"own id", p.alice, p.aliceID, 200, p.aliceID},
		{"own username", p.alice, "alice", 200, p.aliceID},
		{"other by name", p.alice, "bob", 404, ""},
		{"other by id", p.alice, p.bobID, 404, ""},
		{"admin other", p.admin, "bob", 200, p.bobID},
		{"admin unknown", p.admin, "nobody", 404, ""},
		{"admin unknown id", p.admin, "00000000-0000-0000-0000-000000000000", 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.want(ts.do("GET", "/api/v2/users/"+c.ref, c.token, nil), c.status)
			if c.wantID != "" {
				var u UserResponse
				r.json(t, &u)
				if u.ID != c.wantID {
					t.Fatalf("got %+v", u)
				}
			}
		})
	}
}
