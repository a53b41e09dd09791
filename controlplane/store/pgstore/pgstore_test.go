package pgstore_test

import (
	"context"
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
func open(t *testing.T, url string) *pgstore.Store {
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
