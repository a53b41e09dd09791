package controlplane

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// envTestStore set to "postgres" runs this package's in-process server
// tests on PostgreSQL (a schema per data dir, in the server named by
// $COURIER_TEST_POSTGRES_URL) instead of SQLite. .ci/run runs the package
// both ways.
const envTestStore = "COURIER_TEST_STORE"

// pgSchemas maps a test's data dir to its PostgreSQL URL, so that a server
// restarted on the same data dir finds the same data.
var pgSchemas sync.Map

// useTestStore points c at PostgreSQL when $COURIER_TEST_STORE asks for it
// and c does not name a database already.
func useTestStore(t testing.TB, c *Config) {
	t.Helper()
	if os.Getenv(envTestStore) != "postgres" || c.PostgresURL != "" {
		return
	}
	if u, ok := pgSchemas.Load(c.DataDir); ok {
		c.PostgresURL = u.(string)
		return
	}
	dir := c.DataDir
	c.PostgresURL = pgtest.URL(t)
	pgSchemas.Store(dir, c.PostgresURL)
	t.Cleanup(func() { pgSchemas.Delete(dir) })
}

// openTestStore opens the store a test server on dir uses.
func openTestStore(t *testing.T, dir string) store.Store {
	t.Helper()
	cfg := Config{DataDir: dir}
	useTestStore(t, &cfg)
	st, err := OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
