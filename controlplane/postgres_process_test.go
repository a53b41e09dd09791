package controlplane

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// listNames lists the caller's secrets through the REST API.
func listNames(t *testing.T, url, token string) []string {
	t.Helper()
	st, b := request(t, "GET", url+"/api/v2/users/me/secrets", token, nil)
	if st != 200 {
		t.Fatalf("list: %d %s", st, b)
	}
	var list []SecretResponse
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name+"="+s.EnvName)
	}
	return names
}

// TestServerOnPostgres runs `courier server` processes on one PostgreSQL
// database: secrets created through the REST API are listed, survive a
// SIGKILL and restart (with the old session token), and are seen by a
// second server on the same database at once. The URL comes once from
// $COURIER_POSTGRES_URL and once from --postgres-url; the SQLite data dir
// is never created, and neither the password nor a value reaches the logs.
func TestServerOnPostgres(t *testing.T) {
	pgURL := pgtest.URL(t)
	unused := filepath.Join(t.TempDir(), "must-not-exist")
	logs := &syncBuffer{}
	p := startServerWith(t, logs, []string{"COURIER_POSTGRES_URL=" + pgURL}, "--data-dir", unused)
	token := firstUserToken(t, p.url)
	for i := range 3 {
		name := fmt.Sprint("pg-secret-", i)
		if st, b := request(t, "POST", p.url+"/api/v2/users/me/secrets", token, secretBody(name, "env_name", fmt.Sprint("PG_", i))); st != 201 {
			t.Fatalf("create %s: %d %s", name, st, b)
		}
	}
	// A clash on the env name is refused by the database-backed rule.
	if st, b := request(t, "POST", p.url+"/api/v2/users/me/secrets", token, secretBody("clash", "env_name", "PG_0")); st != 409 {
		t.Fatalf("duplicate env name: %d %s", st, b)
	}
	want := "[pg-secret-0=PG_0 pg-secret-1=PG_1 pg-secret-2=PG_2]"
	if got := fmt.Sprint(listNames(t, p.url, token)); got != want {
		t.Fatalf("list = %s, want %s", got, want)
	}
	p.kill()

	p2 := startServerWith(t, logs, nil, "--data-dir", unused, "--postgres-url", pgURL)
	if got := fmt.Sprint(listNames(t, p2.url, token)); got != want {
		t.Fatalf("after restart: list = %s, want %s", got, want)
	}
	// A second server on the same database serves the same user at once.
	p3 := startServerWith(t, logs, []string{"COURIER_POSTGRES_URL=" + pgURL}, "--data-dir", unused)
	if st, b := request(t, "DELETE", p3.url+"/api/v2/users/me/secrets/pg-secret-1", token, nil); st != 204 {
		t.Fatalf("delete through the second server: %d %s", st, b)
	}
	if got := fmt.Sprint(listNames(t, p2.url, token)); got != "[pg-secret-0=PG_0 pg-secret-2=PG_2]" {
		t.Fatalf("first server after a delete on the second: %s", got)
	}
	p2.kill()
	p3.kill()

	if _, err := os.Stat(unused); !os.IsNotExist(err) {
		t.Fatalf("the SQLite data dir was created (%v): the server did not use PostgreSQL", err)
	}
	out := logs.String()
	if !strings.Contains(out, "opened PostgreSQL store") {
		t.Fatalf("no PostgreSQL store in the log:\n%s", out)
	}
	for _, leak := range []string{canary, pgURL, "courier:courier@"} {
		if strings.Contains(out, leak) {
			t.Fatalf("the log contains %q", leak)
		}
	}
}
