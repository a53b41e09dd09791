package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

const rotateCanary = "ROTATE-CLI-CANARY-5b1e"

func rotateKey(t *testing.T) []byte {
	k := make([]byte, seal.KeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func rotateKeyFile(t *testing.T, keys ...[]byte) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServerResealAndUnseal runs the real binary over a database holding a
// plain row and a row sealed under an old key.
func TestServerResealAndUnseal(t *testing.T) {
	dir := t.TempDir()
	oldK, newK := rotateKey(t), rotateKey(t)
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "courier.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, store.User{ID: "u1", Username: "ada", Email: "ada@x", PasswordHash: []byte("h"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	kr, _ := seal.NewKeyring(oldK)
	sealed, _ := kr.Seal([]byte(rotateCanary+"-old"), seal.AD("u1", "old"))
	if err := st.CreateSecrets(ctx, "u1", []store.Secret{
		{ID: "a", Name: "plain", Value: []byte(rotateCanary + "-plain"), Format: store.FormatPlain, CreatedAt: now, UpdatedAt: now},
		{ID: "b", Name: "old", Value: sealed, Format: store.FormatSealed, CreatedAt: now, UpdatedAt: now},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	c := newCLI(t, "")
	both := rotateKeyFile(t, newK, oldK)
	r := c.ok(nil, "server", "reseal", "--data-dir", dir, "--encryption-key-file", both, "--batch-size", "1")
	if !strings.Contains(r.stdout, "resealed 2, already current 0, skipped by a concurrent change 0, failed to open 0 (of 2 values)") {
		t.Fatalf("reseal said %q", r.stdout)
	}
	r2 := c.ok(nil, "server", "reseal", "--data-dir", dir, "--encryption-key-file", both)
	if !strings.Contains(r2.stdout, "resealed 0, already current 2") {
		t.Fatalf("second reseal said %q", r2.stdout)
	}
	// Unsealing with only the old key fails for every row, says so, and
	// exits non-zero.
	r3 := c.run(nil, "server", "unseal", "--data-dir", dir, "--encryption-key-file", rotateKeyFile(t, oldK))
	if r3.code == 0 || !strings.Contains(r3.stdout, "failed to open 2") || !strings.Contains(r3.stderr, `secret "plain"`) {
		t.Fatalf("unseal with a missing key: exit %d\n%s%s", r3.code, r3.stdout, r3.stderr)
	}
	r4 := c.ok(nil, "server", "unseal", "--data-dir", dir, "--encryption-key-file", rotateKeyFile(t, newK))
	if !strings.Contains(r4.stdout, "unsealed 2") {
		t.Fatalf("unseal said %q", r4.stdout)
	}
	for _, out := range []result{r, r2, r3, r4} {
		if strings.Contains(out.all(), rotateCanary) {
			t.Fatal("a value appeared in the command's output")
		}
	}
	st, err = store.OpenSQLite(ctx, filepath.Join(dir, "courier.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, _ := st.ListSecrets(ctx, "u1")
	for _, s := range all {
		if s.Format != store.FormatPlain || string(s.Value) != rotateCanary+"-"+s.Name || !s.UpdatedAt.Equal(now.Truncate(0)) {
			t.Fatalf("after unseal: %v format %d", s, s.Format)
		}
	}
}

func TestServerResealRefusesBadInput(t *testing.T) {
	c := newCLI(t, "")
	empty := t.TempDir()
	keys := rotateKeyFile(t, rotateKey(t))
	for name, args := range map[string][]string{
		"no key file":     {"server", "reseal", "--data-dir", empty},
		"no database":     {"server", "reseal", "--data-dir", empty, "--encryption-key-file", keys},
		"bad key file":    {"server", "unseal", "--data-dir", empty, "--encryption-key-file", filepath.Join(empty, "missing")},
		"zero batch size": {"server", "reseal", "--data-dir", empty, "--encryption-key-file", keys, "--batch-size", "0"},
	} {
		if r := c.run(nil, args...); r.code == 0 || r.stderr == "" {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("a refused run created %d files in the data dir", len(entries))
	}
}

// TestServerResealOnPostgres: reseal and unseal work on a PostgreSQL store
// named by --postgres-url, and print no value.
func TestServerResealOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	st, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := st.CreateUser(ctx, store.User{ID: "u1", Username: "ada", Email: "ada@x", PasswordHash: []byte("h"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSecrets(ctx, "u1", []store.Secret{
		{ID: "a", Name: "plain", Value: []byte(rotateCanary + "-plain"), Format: store.FormatPlain, CreatedAt: now, UpdatedAt: now},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	c := newCLI(t, "")
	keys := rotateKeyFile(t, rotateKey(t))
	r := c.ok(nil, "server", "reseal", "--postgres-url", url, "--encryption-key-file", keys)
	if !strings.Contains(r.stdout, "resealed 1, already current 0") {
		t.Fatalf("reseal said %q", r.stdout)
	}
	if st, err = pgstore.Open(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetSecret(ctx, "u1", "plain")
	_ = st.Close()
	if err != nil || got.Format != store.FormatSealed || strings.Contains(string(got.Value), rotateCanary) {
		t.Fatalf("after reseal: %v, %v", got, err)
	}
	r2 := c.ok(nil, "server", "unseal", "--postgres-url", url, "--encryption-key-file", keys)
	if !strings.Contains(r2.stdout, "unsealed 1") {
		t.Fatalf("unseal said %q", r2.stdout)
	}
	for _, out := range []result{r, r2} {
		if strings.Contains(out.all(), rotateCanary) || strings.Contains(out.all(), "courier:courier@") {
			t.Fatal("a value or the URL's password appeared in the command's output")
		}
	}
}
