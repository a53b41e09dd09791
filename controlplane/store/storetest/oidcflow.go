package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

func flowKey(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// testOIDCFlows: a flow is consumed once, only by its kind and key, not
// after it expires; expired flows are pruned by the next create.
func testOIDCFlows(t *testing.T, s store.Store) {
	f := store.OIDCFlow{KeyHash: flowKey("state-1"), Kind: "login", Data: []byte(`{"nonce":"n"}`),
		CreatedAt: T0, ExpiresAt: T0.Add(10 * time.Minute)}
	if err := s.CreateOIDCFlow(ctx, f); err != nil {
		t.Fatal(err)
	}
	var ce *store.ConflictError
	if err := s.CreateOIDCFlow(ctx, f); !errors.As(err, &ce) {
		t.Fatalf("second create of one key = %v, want a conflict", err)
	}
	for _, tc := range []struct {
		name, kind string
		key        []byte
	}{
		{"other kind", "cli", f.KeyHash},
		{"other key", "login", flowKey("state-2")},
		{"empty key", "login", nil},
		{"kind with NUL", "login\x00", f.KeyHash},
		{"kind case", "LOGIN", f.KeyHash},
	} {
		if _, err := s.ConsumeOIDCFlow(ctx, tc.kind, tc.key, T0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: consume = %v, want ErrNotFound", tc.name, err)
		}
	}
	got, err := s.ConsumeOIDCFlow(ctx, "login", f.KeyHash, T0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, f.Data) || got.Kind != "login" || !got.ExpiresAt.Equal(f.ExpiresAt) || !got.CreatedAt.Equal(T0) {
		t.Fatalf("consumed %+v, want %+v", got, f)
	}
	if _, err := s.ConsumeOIDCFlow(ctx, "login", f.KeyHash, T0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second consume = %v, want ErrNotFound (single use)", err)
	}

	// Expired: refused, and gone afterwards.
	old := store.OIDCFlow{KeyHash: flowKey("old"), Kind: "login", Data: []byte("x"), CreatedAt: T0, ExpiresAt: T0.Add(time.Minute)}
	if err := s.CreateOIDCFlow(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeOIDCFlow(ctx, "login", old.KeyHash, T0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consume at expiry = %v, want ErrNotFound", err)
	}
	// A create prunes what expired before it: the pruned key can be
	// created again without a conflict.
	stale := store.OIDCFlow{KeyHash: flowKey("stale"), Kind: "login", Data: []byte("x"), CreatedAt: T0, ExpiresAt: T0.Add(time.Minute)}
	if err := s.CreateOIDCFlow(ctx, stale); err != nil {
		t.Fatal(err)
	}
	later := store.OIDCFlow{KeyHash: flowKey("later"), Kind: "login", Data: []byte("y"), CreatedAt: T0.Add(time.Hour), ExpiresAt: T0.Add(2 * time.Hour)}
	if err := s.CreateOIDCFlow(ctx, later); err != nil {
		t.Fatal(err)
	}
	stale.CreatedAt, stale.ExpiresAt = T0.Add(time.Hour), T0.Add(2*time.Hour)
	if err := s.CreateOIDCFlow(ctx, stale); err != nil {
		t.Fatalf("create over a pruned flow: %v", err)
	}

	// Racing consumers: exactly one wins.
	race := store.OIDCFlow{KeyHash: flowKey("race"), Kind: "cli", Data: []byte("z"), CreatedAt: T0, ExpiresAt: T0.Add(3 * time.Hour)}
	if err := s.CreateOIDCFlow(ctx, race); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ConsumeOIDCFlow(ctx, "cli", race.KeyHash, T0.Add(time.Hour))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("consume: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing consumers won, want 1", wins)
	}
}
