package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

// TestPostgresAuditTamper edits the audit table behind the store's back
// and expects audit.Verify to name the record.
func TestPostgresAuditTamper(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.RunAuditTamper(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		url := pgtest.URL(t)
		return open(t, url), func(t *testing.T, q string) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}
