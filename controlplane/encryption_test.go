package controlplane

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/seal"
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
