// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the server named by $COURIER_TEST_POSTGRES_URL, dropped when the
// test ends. Without that variable a test skips, saying how to start a
// server, or fails when $CI is "true" (CI must not skip it).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/faultproxy"
)

// EnvURL is the environment variable naming the test server.
const EnvURL = "COURIER_TEST_POSTGRES_URL"

// ServerURL returns $COURIER_TEST_POSTGRES_URL, skipping the test when it is
// unset (failing it under CI=true).
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	const how = "needs PostgreSQL: run `export " + EnvURL + "=$(.ci/postgres.sh)` (Debian's postgresql package) and run the tests again"
	if os.Getenv("CI") == "true" {
		t.Fatalf("$%s is not set under CI; .ci/run starts the server: %s", EnvURL, how)
	}
	t.Skip(how)
	return ""
}

// URL creates an empty schema for the test and returns a connection URL
// whose search_path selects it. The schema is dropped at the end of the
// test.
func URL(t testing.TB) string {
	t.Helper()
	base := ServerURL(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "courier_test_" + hex.EncodeToString(b)
	exec(t, base, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { exec(t, base, `DROP SCHEMA `+schema+` CASCADE`) })
	return WithParam(t, base, "search_path", schema)
}

// WithParam returns the connection URL (or key=value string) raw with one
// more parameter.
func WithParam(t testing.TB, raw, key, value string) string {
	t.Helper()
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return raw + " " + key + "=" + value
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("$%s is not a URL", EnvURL) // the error would show the password
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// URLThroughProxy is URL with the test's connections made through a fault
// proxy (internal/faultproxy) in front of the server, so that the test can
// refuse or cut them as a database outage would. It returns the proxied
// URL, the direct one (for reads past the outage) and the proxy, which is
// closed at the end of the test.
func URLThroughProxy(t testing.TB) (proxied, direct string, px *faultproxy.Proxy) {
	t.Helper()
	direct = URL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal("the test PostgreSQL URL does not parse (give it as postgres://…)")
	}
	px, err = faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	u.Host = px.Addr()
	return u.String(), direct, px
}
