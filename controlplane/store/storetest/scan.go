package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

func testValueFormat(t *testing.T, s store.Store) {
	u := mkUser(t, s, "vera")
	a, b := mkSecret("a", "", ""), mkSecret("b", "", "")
	a.Format = store.FormatSealed
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetSecret(ctx, u.ID, "a")
	if got.Format != store.FormatSealed {
		t.Fatalf("format = %d, want sealed", got.Format)
	}
	got, _ = s.GetSecret(ctx, u.ID, "b")
	if got.Format != store.FormatUnknown {
		t.Fatalf("format = %d, want unknown", got.Format)
	}
	counts, err := s.CountSecretsByFormat(ctx)
	if err != nil || len(counts) != 2 || counts[store.FormatSealed] != 1 || counts[store.FormatUnknown] != 1 {
		t.Fatalf("CountSecretsByFormat = %v, %v", counts, err)
	}
	desc := "d"
	got, _ = s.UpdateSecret(ctx, u.ID, "a", store.SecretUpdate{Description: &desc, Format: store.FormatPlain}, nil)
	if got.Format != store.FormatSealed {
		t.Fatalf("an update without a value changed the format to %d", got.Format)
	}
	got, _ = s.UpdateSecret(ctx, u.ID, "a", store.SecretUpdate{Value: []byte("p"), Format: store.FormatPlain}, nil)
	if again, _ := s.GetSecret(ctx, u.ID, "a"); got.Format != store.FormatPlain || again.Format != store.FormatPlain {
		t.Fatalf("value update: format %d, stored %d; want plain", got.Format, again.Format)
	}
}

func testScanSecrets(t *testing.T, s store.Store) {
	seen := map[string]int{}
	for i := range 3 {
		u := mkUser(t, s, fmt.Sprint("scan", i))
		var secs []store.Secret
		for j := range 7 {
			secs = append(secs, mkSecret(fmt.Sprint("s", j), "", ""))
		}
		if err := s.CreateSecrets(ctx, u.ID, secs, nil); err != nil {
			t.Fatal(err)
		}
		for _, sec := range secs {
			seen[sec.ID] = 0
		}
	}
	after, batches := "", 0
	for {
		batch, err := s.ScanSecrets(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		batches++
		if len(batch) > 5 {
			t.Fatalf("batch of %d, limit 5", len(batch))
		}
		for _, sec := range batch {
			if sec.ID <= after {
				t.Fatalf("scan not ordered by ID: %s after %s", sec.ID, after)
			}
			if string(sec.Value) != "v-"+sec.Name || sec.UserID == "" {
				t.Fatalf("scanned %v", sec)
			}
			seen[sec.ID]++
			after = sec.ID
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("secret %s scanned %d times", id, n)
		}
	}
	if batches != 5 {
		t.Fatalf("21 secrets in %d batches of 5, want 5", batches)
	}
}

func testSwapSecretValue(t *testing.T, s store.Store) {
	u := mkUser(t, s, "walt")
	sec := mkSecret("k", "K", "")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{sec}, nil); err != nil {
		t.Fatal(err)
	}
	ok, err := s.SwapSecretValue(ctx, sec.ID, []byte("stale"), []byte("x"), store.FormatSealed)
	if err != nil || ok {
		t.Fatalf("swap with a stale old value = %v, %v; want no swap", ok, err)
	}
	ok, err = s.SwapSecretValue(ctx, sec.ID, sec.Value, []byte("sealed-now"), store.FormatSealed)
	if err != nil || !ok {
		t.Fatalf("swap = %v, %v", ok, err)
	}
	got, _ := s.GetSecret(ctx, u.ID, "k")
	if string(got.Value) != "sealed-now" || got.Format != store.FormatSealed || !got.UpdatedAt.Equal(T0) || got.EnvName != "K" {
		t.Fatalf("after swap: %v format %d updated %v", got, got.Format, got.UpdatedAt)
	}
	// A concurrent update between read and swap wins.
	_, _ = s.UpdateSecret(ctx, u.ID, "k", store.SecretUpdate{Value: []byte("newer"), UpdatedAt: T0.Add(time.Minute)}, nil)
	if ok, _ := s.SwapSecretValue(ctx, sec.ID, []byte("sealed-now"), []byte("resealed"), store.FormatSealed); ok {
		t.Fatal("swap replaced a value updated after it was read")
	}
	if got, _ := s.GetSecret(ctx, u.ID, "k"); string(got.Value) != "newer" {
		t.Fatalf("concurrent update lost: %q", got.Value)
	}
	if ok, err := s.SwapSecretValue(ctx, "no-such-id", nil, []byte("x"), store.FormatPlain); ok || err != nil {
		t.Fatalf("swap of a missing secret = %v, %v", ok, err)
	}
}
