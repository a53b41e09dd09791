package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/courierhq/courier/client"
)

// Each lifecycle call sends its method, escaped path and body, and decodes
// the user answered.
func TestUserLifecycleCalls(t *testing.T) {
	type seen struct{ method, path, body string }
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = seen{r.Method, r.URL.EscapedPath(), string(b)}
		if r.Method == http.MethodDelete || strings.HasSuffix(r.URL.Path, "/password") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"username":"a/b","role":"auditor","status":"suspended","login_type":"oidc"}`)
	}))
	defer srv.Close()
	c, err := client.New(client.Config{URL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const user = "a/b" // escaped, so it cannot change the route
	for _, tc := range []struct {
		name string
		call func() (client.User, error)
		want seen
	}{
		{"set role", func() (client.User, error) { return c.SetUserRole(ctx, user, "auditor") },
			seen{"PUT", "/api/v2/users/a%2Fb/role", `{"role":"auditor"}`}},
		{"suspend", func() (client.User, error) { return c.SuspendUser(ctx, user) },
			seen{"PUT", "/api/v2/users/a%2Fb/status/suspend", ""}},
		{"activate", func() (client.User, error) { return c.ActivateUser(ctx, user) },
			seen{"PUT", "/api/v2/users/a%2Fb/status/activate", ""}},
		{"delete", func() (client.User, error) { return client.User{}, c.DeleteUser(ctx, user) },
			seen{"DELETE", "/api/v2/users/a%2Fb", ""}},
		{"reset password", func() (client.User, error) {
			return client.User{}, c.UpdatePassword(ctx, user, client.UpdatePasswordRequest{Password: canary})
		}, seen{"PUT", "/api/v2/users/a%2Fb/password", `{"password":"` + canary + `"}`}},
		{"own password", func() (client.User, error) {
			return client.User{}, c.UpdatePassword(ctx, client.Me, client.UpdatePasswordRequest{OldPassword: "old", Password: canary})
		}, seen{"PUT", "/api/v2/users/me/password", `{"old_password":"old","password":"` + canary + `"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if last != tc.want {
				t.Fatalf("sent %+v, want %+v", last, tc.want)
			}
			if tc.want.method == "PUT" && !strings.HasSuffix(tc.want.path, "/password") &&
				(u.Role != "auditor" || u.Status != client.StatusSuspended || u.LoginType != client.LoginOIDC) {
				t.Fatalf("decoded %+v", u)
			}
		})
	}
}

// The password request never prints a password, however it is formatted.
func TestUpdatePasswordRequestRedacted(t *testing.T) {
	req := client.UpdatePasswordRequest{OldPassword: canary + "-old", Password: canary}
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%v %+v %#v %s", req, req, req, req)} {
		if strings.Contains(s, canary) {
			t.Fatalf("formatted request shows a password: %s", s)
		}
	}
	b, _ := json.Marshal(client.UpdatePasswordRequest{Password: "x"})
	if string(b) != `{"password":"x"}` {
		t.Fatalf("an admin's reset sends %s", b)
	}
}
