package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const canary = "CANARY-client-5b1d"

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name, url, token string
		ok               bool
	}{
		{"https", "https://courier.example.com", "", true},
		{"path prefix", "http://127.0.0.1:8080/courier/", "t", true},
		{"empty", "", "", false},
		{"no scheme", "courier.example.com", "", false},
		{"ftp", "ftp://x", "", false},
		{"credentials", "https://u:p@x", "", false},
		{"query", "https://x/?a=b", "", false},
		{"fragment", "https://x/#f", "", false},
		{"no host", "https:///path", "", false},
		{"token with newline", "https://x", "a\nb", false},
		{"token header injection", "https://x", "t\r\nX-Evil: 1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := client.Config{URL: tc.url, Token: tc.token}.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%t", err, tc.ok)
			}
			if err != nil && !errors.Is(err, client.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if _, err := client.New(client.Config{URL: tc.url, Token: tc.token}); (err == nil) != tc.ok {
				t.Errorf("New() = %v, want ok=%t", err, tc.ok)
			}
		})
	}
}

// recorder answers every request with status and body and remembers the
// last request.
type recorder struct {
	status  int
	body    string
	path    string
	token   string
	reqBody string
}

func (rec *recorder) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.path = r.URL.EscapedPath()
		rec.token = r.Header.Get(client.SessionTokenHeader)
		b, _ := io.ReadAll(r.Body)
		rec.reqBody = string(b)
		w.WriteHeader(rec.status)
		_, _ = io.WriteString(w, rec.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	rec := &recorder{status: 200, body: `{"name":"x"}`}
	srv := rec.server(t)
	c, err := client.New(client.Config{URL: srv.URL + "/", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ name, want string }{
		{"plain", "/api/v2/users/me/secrets/plain"},
		{"../../users", "/api/v2/users/me/secrets/..%2F..%2Fusers"},
		{"a b?c#d", "/api/v2/users/me/secrets/a%20b%3Fc%23d"},
		{"%2F", "/api/v2/users/me/secrets/%252F"},
	} {
		if _, err := c.Secret(ctx, client.Me, tc.name); err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		if rec.path != tc.want {
			t.Errorf("name %q requested %s, want %s", tc.name, rec.path, tc.want)
		}
	}
	if rec.token != "tok" {
		t.Errorf("token header = %q", rec.token)
	}
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		sentinel error
		want     []string
		absent   []string
	}{
		{"validation", 400, `{"message":"Invalid secret.","validations":[{"field":"env_name","detail":"is reserved"},{"field":"value","detail":"too big"}]}`,
			client.ErrBadRequest, []string{"Invalid secret.", "\n  - env_name: is reserved", "\n  - value: too big"}, nil},
		{"not found", 404, `{"message":"Secret not found."}`, client.ErrNotFound, []string{"Secret not found."}, nil},
		{"unauthorized", 401, `{"message":"You must be logged in."}`, client.ErrUnauthorized, []string{"logged in"}, nil},
		{"conflict", 409, `{"message":"taken"}`, client.ErrConflict, []string{"taken"}, nil},
		{"html from a proxy", 502, `<html>bad gateway</html>`, nil, []string{"Bad Gateway", "bad gateway"}, nil},
		{"terminal escapes stripped", 400, "{\"message\":\"bad\\u001b[2J\"}", client.ErrBadRequest, []string{"bad"}, []string{"\x1b"}},
		{"huge non-JSON body truncated", 500, strings.Repeat("x", 10000), nil, []string{"..."}, []string{strings.Repeat("x", 600)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{status: tc.status, body: tc.body}
			srv := rec.server(t)
			c, _ := client.New(client.Config{URL: srv.URL, Token: "tok"})
			_, err := c.CreateSecret(context.Background(), client.Me, client.CreateSecretRequest{Name: "n", Value: canary})
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
				t.Fatalf("err = %v, want *client.Error %d", err, tc.status)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v) false", tc.sentinel)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, a := range append(tc.absent, canary, "tok") {
				if strings.Contains(msg, a) {
					t.Errorf("error %q contains %q", msg, a)
				}
			}
			if !strings.Contains(rec.reqBody, canary) {
				t.Error("value was not sent")
			}
		})
	}
}

func TestUpdateSendsOnlyChangedFields(t *testing.T) {
	rec := &recorder{status: 200, body: `{"name":"k"}`}
	srv := rec.server(t)
	c, _ := client.New(client.Config{URL: srv.URL, Token: "tok"})
	empty := ""
	if _, err := c.UpdateSecret(context.Background(), client.Me, "k", client.UpdateSecretRequest{EnvName: &empty}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(rec.reqBody), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["env_name"] != "" {
		t.Errorf("PATCH body = %s, want only env_name: \"\"", rec.reqBody)
	}
}

func TestRequestStringsHideValues(t *testing.T) {
	v := canary
	for _, s := range []any{
		client.CreateSecretRequest{Name: "n", Value: canary},
		client.UpdateSecretRequest{Value: &v},
		client.BatchSecretsRequest{Format: "env", Content: "A=" + canary},
		client.LoginRequest{Username: "u", Password: canary},
		client.CreateUserRequest{Username: "u", Password: canary},
		client.CreatedWorkspace{AgentToken: canary},
	} {
		for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
			if out := sprintf(f, s); strings.Contains(out, canary) {
				t.Errorf("%s of %T leaks: %s", f, s, out)
			}
		}
	}
}

func TestThrottledLoginSaysWhenToRetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "90")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":"too many failed logins; try again later"}`))
	}))
	defer srv.Close()
	c, _ := client.New(client.Config{URL: srv.URL})
	_, err := c.Login(context.Background(), client.LoginRequest{Username: "a", Password: "wrong-password"})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrTooManyRequests) || apiErr.RetryAfter != 90*time.Second {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "(Retry-After: 1m30s)") {
		t.Fatalf("message %q does not say when to retry", err.Error())
	}
}
