package pgstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// open opens a Store on url, closed when the test ends.
func open(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPostgresConformance(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.URL(t)) })
}

// TestMigrationsMirrorSQLite: every SQLite migration has a PostgreSQL
// migration with the same version number, and no more, so the two schemas
// move together.
func TestMigrationsMirrorSQLite(t *testing.T) {
	versions := func(dir string) []string {
		names, err := filepath.Glob(filepath.Join(dir, "*.sql"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no migrations in %s: %v", dir, err)
		}
		var out []string
		for _, n := range names {
			out = append(out, strings.SplitN(filepath.Base(n), "_", 2)[0])
		}
		return out
	}
	lite, pg := versions(filepath.Join("..", "migrations")), versions("migrations")
	if !slices.Equal(lite, pg) {
		t.Fatalf("SQLite migrations %v, PostgreSQL migrations %v: mirror each SQLite migration in pgstore/migrations", lite, pg)
	}
}
