package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// bump counts one failure against every key.
func bump(now time.Time) store.LoginCounterFunc {
	return func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		for i := range cur {
			cur[i].Failures++
			cur[i].LastAt = now
		}
		return cur, nil
	}
}

func testLoginCounters(t *testing.T, s store.Store) {
	keys := []string{"account:a", "address:192.0.2.1"}
	var seen []store.LoginCounter
	_, err := s.UpdateLoginCounters(ctx, keys, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		seen = append([]store.LoginCounter{}, cur...)
		return bump(T0)(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0].Key != keys[0] || seen[1].Key != keys[1] || seen[0].Failures != 0 || !seen[0].LastAt.IsZero() {
		t.Fatalf("absent counters seen as %+v", seen)
	}
	lock := T0.Add(time.Minute)
	_, err = s.UpdateLoginCounters(ctx, keys[:1], func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		cur[0].Failures, cur[0].LockedUntil = 10, lock
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused")
	_, err = s.UpdateLoginCounters(ctx, keys, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		seen = append([]store.LoginCounter{}, cur...)
		cur[0].Failures = 99
		return cur, refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("fn error = %v, want it returned as is", err)
	}
	if seen[0].Failures != 10 || !seen[0].LockedUntil.Equal(lock) || seen[1].Failures != 1 || !seen[1].LastAt.Equal(T0) {
		t.Fatalf("stored counters read back as %+v", seen)
	}
	// The refused update stored nothing; a zero counter is deleted.
	got, err := s.UpdateLoginCounters(ctx, keys, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		if cur[0].Failures != 10 {
			t.Errorf("refused update was stored: %+v", cur[0])
		}
		cur[0] = store.LoginCounter{Key: cur[0].Key}
		return cur, nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("reset = %+v, %v", got, err)
	}
	_, _ = s.UpdateLoginCounters(ctx, keys[:1], func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		if cur[0].Failures != 0 || !cur[0].LockedUntil.IsZero() || !cur[0].LastAt.IsZero() {
			t.Errorf("reset counter still stored: %+v", cur[0])
		}
		return nil, nil
	})
}

func testLoginCountersConcurrent(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateLoginCounters(ctx, []string{"account:x", "address:y"}, bump(T0)); err != nil {
				t.Errorf("update: %v", err)
			}
		}()
	}
	wg.Wait()
	_, _ = s.UpdateLoginCounters(ctx, []string{"account:x", "address:y"}, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		if cur[0].Failures != 40 || cur[1].Failures != 40 {
			t.Errorf("40 concurrent attempts counted as %d and %d", cur[0].Failures, cur[1].Failures)
		}
		return nil, nil
	})
}

func testPruneLoginCounters(t *testing.T, s store.Store) {
	_, _ = s.UpdateLoginCounters(ctx, []string{"old"}, bump(T0))
	_, _ = s.UpdateLoginCounters(ctx, []string{"recent"}, bump(T0.Add(time.Hour)))
	_, _ = s.UpdateLoginCounters(ctx, []string{"locked"}, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		cur[0].Failures, cur[0].LastAt, cur[0].LockedUntil = 10, T0, T0.Add(2*time.Hour)
		return cur, nil
	})
	n, err := s.PruneLoginCounters(ctx, T0.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1 (only the idle, unlocked counter)", n, err)
	}
	_, _ = s.UpdateLoginCounters(ctx, []string{"old", "recent", "locked"}, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		if cur[0].Failures != 0 || cur[1].Failures != 1 || cur[2].Failures != 10 {
			t.Errorf("after prune: %+v", cur)
		}
		return nil, nil
	})
}
