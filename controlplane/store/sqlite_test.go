package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openTemp(t *testing.T) store.Store {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "courier.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLiteConformance(t *testing.T) { storetest.Run(t, openTemp) }

func TestSQLiteReopenKeepsDataAndMigrationsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "courier.db")
	s, err := store.OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{ID: "u1", Username: "dev", Email: "dev@x", PasswordHash: []byte("h"), CreatedAt: storetest.T0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{{ID: "s1", Name: "k", Value: []byte("sealed"), CreatedAt: storetest.T0, UpdatedAt: storetest.T0}}, nil); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	for range 2 {
		s, err = store.OpenSQLite(ctx, path, nil)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		got, err := s.GetSecret(ctx, "u1", "k")
		if err != nil || string(got.Value) != "sealed" {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		_ = s.Close()
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "courier.db")
	s, err := store.OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
}

// TestSQLiteConcurrentReadersAndWriters opens many pooled connections while
// writes are under way: every new connection runs the pragmas, which must
// wait for locks rather than fail.
func TestSQLiteConcurrentReadersAndWriters(t *testing.T) {
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(ctx, store.User{ID: "u", Username: "u", Email: "u@x", CreatedAt: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- s.CreateSecrets(ctx, "u", []store.Secret{{ID: fmt.Sprint(i), Name: fmt.Sprint("n", i), Value: []byte("v"),
				CreatedAt: storetest.T0, UpdatedAt: storetest.T0}}, nil)
		}()
		go func() {
			defer wg.Done()
			_, err := s.ListSecrets(ctx, "u")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent access failed: %v", err)
		}
	}
}

func TestSecretStringHidesValue(t *testing.T) {
	const canary = "CANARY-store-string"
	s := store.Secret{Name: "n", Value: []byte(canary)}
	u := store.SecretUpdate{Value: []byte(canary)}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v %#v", s, s), fmt.Sprint([]store.Secret{s}), fmt.Sprintf("%v %+v", u, u)} {
		if strings.Contains(out, canary) {
			t.Fatalf("formatting leaks the value: %s", out)
		}
	}
}

// TestMigration0002KeepsExistingSecretsEnabled opens a database made by
// migration 0001 alone: its secrets must come out enabled.
func TestMigration0002KeepsExistingSecretsEnabled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "courier.db")
	init, err := os.ReadFile(filepath.Join("migrations", "0001_init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		string(init),
		`INSERT INTO schema_migrations VALUES (1, 0)`,
		`INSERT INTO users VALUES ('u1', 'dev', 'dev@x', x'00', 0, 0)`,
		`INSERT INTO secrets(id, user_id, name, value, created_at, updated_at) VALUES ('s1', 'u1', 'old', x'76', 0, 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = db.Close()
	s, err := store.OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetSecret(ctx, "u1", "old")
	if err != nil || !got.Enabled {
		t.Fatalf("secret from before migration 0002 = %v, %v; want enabled", got, err)
	}
}
