package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/courierhq/courier/client"
)

// TestUseSSO: what courier login does for each answer of authmethods.
func TestUseSSO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		asked   bool
		wantSSO bool
		wantErr bool
	}{
		{"password only", 200, `{"password":{"enabled":true},"oidc":{"enabled":false}}`, false, false, false},
		{"both, not asked", 200, `{"password":{"enabled":true},"oidc":{"enabled":true,"name":"X"}}`, false, false, false},
		{"both, asked", 200, `{"password":{"enabled":true},"oidc":{"enabled":true,"name":"X"}}`, true, true, false},
		{"sso only", 200, `{"password":{"enabled":false},"oidc":{"enabled":true,"name":"X"}}`, false, true, false},
		{"asked, no sso", 200, `{"password":{"enabled":true},"oidc":{"enabled":false}}`, true, false, true},
		{"older server (401)", 401, `{"message":"unauthenticated"}`, false, false, false},
		{"older server, asked", 401, `{"message":"unauthenticated"}`, true, false, true},
		{"not Courier's answer", 200, `{"id":"x","username":"authmethods"}`, false, false, false},
		{"garbage", 200, `not json`, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v2/users/authmethods" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := client.New(client.Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			sso, err := useSSO(context.Background(), c, tc.asked)
			if (err != nil) != tc.wantErr || sso != tc.wantSSO {
				t.Fatalf("useSSO = %v, %v; want sso %v, error %v", sso, err, tc.wantSSO, tc.wantErr)
			}
		})
	}
}
