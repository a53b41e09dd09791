package controlplane

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// TestEncryptionAtRest runs with a key file: values are stored sealed (never
// the plaintext), open with the owner+name additional data, and the caps
// count the sealed (stored) bytes.
func TestEncryptionAtRest(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "courier.key")
	if err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) {
		c.EncryptionKeyFile = keyFile
		c.Limits.MaxSecretBytes = 100
	})
	p := ts.setup()
	base := "/api/v2/users/me/secrets"
	ts.want(ts.do("POST", base, p.alice, secretBody("enc", "env_name", "ENC")), 201)

	stored, err := ts.store.GetSecret(t.Context(), p.aliceID, "enc")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.Value, []byte(canary)) {
		t.Fatal("the value is stored in plaintext")
	}
	if len(stored.Value) != inject.StoredSize(len(canary), true) {
		t.Fatalf("stored %d bytes, want %d", len(stored.Value), inject.StoredSize(len(canary), true))
	}
	if got, err := ts.sealer.Open(stored.Value, sealAD(p.aliceID, "enc")); err != nil || string(got) != canary {
		t.Fatalf("open: %v", err)
	}
	if _, err := ts.sealer.Open(stored.Value, sealAD(p.bobID, "enc")); err == nil {
		t.Fatal("a value opened under another owner's additional data")
	}
	// 80 raw bytes are 113 stored: over the 100-byte per-secret cap.
	e := ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "big", "value": strings.Repeat("v", 80)}), 400).errResp(t)
	if !strings.Contains(e.Message, "cap is 100 bytes; this change would make it 113 (13 over)") {
		t.Fatalf("message %q", e.Message)
	}
	ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "fits", "value": strings.Repeat("v", 100-inject.SealOverhead)}), 201)
	// No unencrypted warning with a key.
	if strings.Contains(ts.logs.String(), "stored unencrypted") {
		t.Fatal("unencrypted warning logged although a key is configured")
	}
}

// TestWrongKeyStopsTheStart: a server given a valid key that opens none of
// the stored sealed values refuses to start, saying what is wrong, rather
// than serve every workspace an empty set; the right key starts it again.
func TestWrongKeyStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right.key"), filepath.Join(dir, "wrong.key")
	for _, f := range []string{right, wrong} {
		if err := seal.GenerateKeyFile(f); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.BcryptCost = "127.0.0.1:0", t.TempDir(), 4
	useTestStore(t, &cfg)
	cfg.EncryptionKeyFile = right
	srv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u := store.User{ID: "6f1c1b1e-0c0e-4d52-9d1e-3e8f8f0b7a01", Username: "kim", Email: "kim@example.com", CreatedAt: time.Now()}
	if err := srv.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sealed, err := srv.sealer.Seal([]byte(canary), sealAD(u.ID, "enc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.store.CreateSecrets(ctx, u.ID, []store.Secret{{ID: "7a0e6c52-1d2b-4f3a-8c4d-5e6f7a8b9c0d", UserID: u.ID,
		Name: "enc", Value: sealed, Format: store.FormatSealed, Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.EncryptionKeyFile = wrong
	if srv, err := New(cfg, nil); err == nil {
		_ = srv.Close()
		t.Fatal("a key that opens nothing was accepted")
	} else if !errors.Is(err, errKeyOpensNothing) || !strings.Contains(err.Error(), "--encryption-key-file") || strings.Contains(err.Error(), canary) {
		t.Fatalf("err = %v", err)
	}
	cfg.EncryptionKeyFile = right
	srv, err = New(cfg, nil)
	if err != nil {
		t.Fatalf("the right key: %v", err)
	}
	_ = srv.Close()
}
